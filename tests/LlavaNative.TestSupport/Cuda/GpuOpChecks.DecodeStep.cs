using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// The kernels of a decode step whose position is read from device memory (so it can be captured once into a graph):
/// rope_f32_at, kv_append_f32 and attention_decode_f32, launched through <see cref="CudaOps"/> with the position written
/// by <see cref="CudaOps.DecodeStepBegin"/>, against the CPU ops at that position; then the three captured into one graph
/// and replayed at positions written between replays.
/// </summary>
public static unsafe partial class GpuOpChecks
{
    private static void AddDecodeStepChecks(List<(string, Func<IGpuDevice, int, GpuCheckResult>)> all)
    {
        all.Add(("rope at device position normal", (d, seed) => RopeAtCheck(d, RopeMode.Normal, seed)));
        all.Add(("rope at device position neox", (d, seed) => RopeAtCheck(d, RopeMode.Neox, seed)));
        all.Add(("kv append at device position", KvAppendCheck));
        all.Add(("attention decode at device position gqa", (d, seed) => AttentionDecodeCheck(d, headDim: 40, seed)));
        all.Add(("attention decode at device position d128", (d, seed) => AttentionDecodeCheck(d, headDim: 128, seed)));
        all.Add(("decode step graph replayed at new positions", DecodeStepGraphCheck));
    }

    private const int TablePositions = 50; // rows of the angle table and of the caches in these checks

    /// <summary>The angle tables [positions, ropeDims/2] from position 0, as GpuDecoderState uploads them.</summary>
    private static (float[] Cos, float[] Sin) AngleTable(int positions, int ropeDims)
    {
        var cos = new float[positions * ropeDims / 2];
        var sin = new float[cos.Length];
        fixed (float* pc = cos, ps = sin) Rope.ComputeAngles(0, positions, ropeDims, 10000f, pc, ps);
        return (cos, sin);
    }

    /// <summary>
    /// Partial rotary dims (16 of 24), 5 heads plus 8 floats after them that must stay untouched; positions 0, 17 and 49
    /// (the table's last row), against Rope.Apply with ComputeAngles at that position alone. The tolerance is rope_f32's.
    /// </summary>
    public static GpuCheckResult RopeAtCheck(IGpuDevice device, RopeMode mode, int seed)
    {
        var rng = new Random(seed);
        const int heads = 5, headDim = 24, ropeDims = 16, n = heads * headDim + 8;
        var (cos, sin) = AngleTable(TablePositions, ropeDims);
        using var ops = new CudaOps(device);
        using var dc = device.Upload<float>(cos);
        using var ds = device.Upload<float>(sin);
        using var dp = device.Allocate(4);
        var parts = new List<(float[], double[])>();
        foreach (int position in new[] { 0, 17, TablePositions - 1 })
        {
            float[] x = Normal(rng, n);
            var expected = (float[])x.Clone();
            var c1 = new float[ropeDims / 2];
            var s1 = new float[ropeDims / 2];
            fixed (float* pc = c1, ps = s1, pe = expected)
            {
                Rope.ComputeAngles(position, 1, ropeDims, 10000f, pc, ps);
                Rope.Apply(pe, heads, headDim, ropeDims, mode, pc, ps);
            }
            using var dx = device.Upload<float>(x);
            ops.DecodeStepBegin(dp, position, default, 0);
            ops.RopeAt(dx, dc, ds, dp, heads, headDim, ropeDims, mode);
            parts.Add((device.Download<float>(dx), ToDouble(expected)));
        }
        return Concat($"rope at device position {mode}", parts, 1e-6, 1e-5);
    }

    /// <summary>
    /// Rows 0, 23 and 49 of [50, 72] caches written from scratch rows (positions from device memory); every other row
    /// must keep its earlier contents: bit-exact against the same writes done on the host.
    /// </summary>
    public static GpuCheckResult KvAppendCheck(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int kvDim = 72;
        float[] k = Normal(rng, TablePositions * kvDim), v = Normal(rng, TablePositions * kvDim);
        using var ops = new CudaOps(device);
        using var dk = device.Upload<float>(k);
        using var dv = device.Upload<float>(v);
        using var dp = device.Allocate(4);
        foreach (int position in new[] { 23, 0, TablePositions - 1 })
        {
            float[] kRow = Normal(rng, kvDim), vRow = Normal(rng, kvDim);
            kRow.CopyTo(k, position * kvDim);
            vRow.CopyTo(v, position * kvDim);
            using var dkr = device.Upload<float>(kRow);
            using var dvr = device.Upload<float>(vRow);
            ops.DecodeStepBegin(dp, position, default, 0);
            ops.KvAppend(dkr, dvr, dk, dv, dp, kvDim);
        }
        float[] got = [.. device.Download<float>(dk), .. device.Download<float>(dv)];
        float[] want = [.. k, .. v];
        return Compare("kv append at device position", got, ToDouble(want), 0, 0, "bit-exact");
    }

    /// <summary>
    /// One query token, 6 heads over 2 KV heads, KV rows padded by 4 floats, caches of 50 rows whose rows past the
    /// position are NaN (a kernel reading one key too many fails); positions 0, 9 and 49, against the CPU's scalar
    /// attention with StartPos = position; attention_f32's tolerance.
    /// </summary>
    public static GpuCheckResult AttentionDecodeCheck(IGpuDevice device, int headDim, int seed)
    {
        var rng = new Random(seed);
        const int heads = 6, kvHeads = 2;
        int kvStride = kvHeads * headDim + 4;
        float scale = 1.0f / MathF.Sqrt(headDim);
        using var ops = new CudaOps(device);
        using var dp = device.Allocate(4);
        var parts = new List<(float[], double[])>();
        foreach (int position in new[] { 0, 9, TablePositions - 1 })
        {
            int keys = position + 1;
            float[] q = Normal(rng, heads * headDim, 1.5);
            float[] k = Normal(rng, keys * kvStride, 1.5);
            float[] v = Normal(rng, keys * kvStride);
            var expected = new float[heads * headDim];
            fixed (float* pq = q, pk = k, pv = v, pe = expected)
            {
                var problem = new Attention.Problem
                {
                    Q = pq, K = pk, V = pv, Output = pe, Tokens = 1, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                    KvStride = kvStride, StartPos = position, KeyCount = keys, Causal = true, Scale = scale,
                };
                Attention.ComputeScalar(in problem);
            }
            using var dq = device.Upload<float>(q);
            using var dk = Output(device, TablePositions * kvStride); // NaN past the keys
            using var dv = Output(device, TablePositions * kvStride);
            device.Upload<float>(dk.Pointer, k);
            device.Upload<float>(dv.Pointer, v);
            using var dout = Output(device, expected.Length);
            ops.DecodeStepBegin(dp, position, default, 0);
            ops.AttentionDecode(dq, dk, dv, dout, heads, kvHeads, headDim, kvStride, dp, scale);
            parts.Add((device.Download<float>(dout), ToDouble(expected)));
        }
        return Concat($"attention decode at device position d{headDim}", parts, 1e-5, 1e-5);
    }

    /// <summary>
    /// rope_f32_at on q and k, kv_append_f32 and attention_decode_f32 captured once into a graph (4 query heads over 2 KV
    /// heads, head dim 32, full rotary), then replayed for positions 0 … 5 and, after a "truncation", 2 … 4 again with new
    /// rows: the step's inputs (q, k, v rows and the position) are written before each replay. Against the same step on
    /// the CPU (Rope.Apply at the position, the rows appended, scalar attention over keys 0 … position).
    /// </summary>
    public static GpuCheckResult DecodeStepGraphCheck(IGpuDevice device, int seed)
    {
        if (!device.SupportsGraphs) throw new NotSupportedException($"{device.Name} does not capture graphs");
        var rng = new Random(seed);
        const int heads = 4, kvHeads = 2, headDim = 32, ropeDims = 32, qDim = heads * headDim, kvDim = kvHeads * headDim;
        float scale = 1.0f / MathF.Sqrt(headDim);
        var (cos, sin) = AngleTable(TablePositions, ropeDims);
        var kCache = new float[TablePositions * kvDim];
        var vCache = new float[TablePositions * kvDim];
        using var ops = new CudaOps(device);
        using var dc = device.Upload<float>(cos);
        using var ds = device.Upload<float>(sin);
        using var dp = device.Allocate(4);
        using var dq = device.Allocate(qDim * 4L);
        using var dkRow = device.Allocate(kvDim * 4L);
        using var dvRow = device.Allocate(kvDim * 4L);
        using var dkCache = Output(device, kCache.Length);
        using var dvCache = Output(device, vCache.Length);
        using var dout = Output(device, qDim);

        void Step()
        {
            ops.RopeAt(dq, dc, ds, dp, heads, headDim, ropeDims, RopeMode.Neox);
            ops.RopeAt(dkRow, dc, ds, dp, kvHeads, headDim, ropeDims, RopeMode.Neox);
            ops.KvAppend(dkRow, dvRow, dkCache, dvCache, dp, kvDim);
            ops.AttentionDecode(dq, dkCache, dvCache, dout, heads, kvHeads, headDim, kvDim, dp, scale);
        }
        // Once directly (every kernel used before the capture, as the driver needs), at position 0, then captured.
        var parts = new List<(float[], double[])>();
        int[] positions = [0, 1, 2, 3, 4, 5, 2, 3, 4];
        IGpuGraph? graph = null;
        try
        {
            foreach (int position in positions)
            {
                float[] q = Normal(rng, qDim, 1.5), k = Normal(rng, kvDim, 1.5), v = Normal(rng, kvDim);
                device.Upload<float>(dq.Pointer, q);
                device.Upload<float>(dkRow.Pointer, k);
                device.Upload<float>(dvRow.Pointer, v);
                ops.DecodeStepBegin(dp, position, default, 0);
                if (graph == null && position == 0) Step();
                else
                {
                    if (graph == null)
                    {
                        device.BeginCapture();
                        Step();
                        graph = device.EndCapture();
                    }
                    graph.Launch();
                }
                var expected = new float[qDim];
                var angleC = new float[ropeDims / 2];
                var angleS = new float[ropeDims / 2];
                fixed (float* pq = q, pk = k, pc = angleC, ps = angleS, pkc = kCache, pvc = vCache, pe = expected)
                {
                    Rope.ComputeAngles(position, 1, ropeDims, 10000f, pc, ps);
                    Rope.Apply(pq, heads, headDim, ropeDims, RopeMode.Neox, pc, ps);
                    Rope.Apply(pk, kvHeads, headDim, ropeDims, RopeMode.Neox, pc, ps);
                    k.CopyTo(kCache, position * kvDim);
                    v.CopyTo(vCache, position * kvDim);
                    var problem = new Attention.Problem
                    {
                        Q = pq, K = pkc, V = pvc, Output = pe, Tokens = 1, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                        KvStride = kvDim, StartPos = position, KeyCount = position + 1, Causal = true, Scale = scale,
                    };
                    Attention.ComputeScalar(in problem);
                }
                parts.Add((device.Download<float>(dout), ToDouble(expected)));
            }
        }
        finally
        {
            graph?.Dispose();
            // A failed capture must not leave the stream capturing; the exception in flight is the one to report.
            if (device.IsCapturing)
            {
                try { device.EndCapture().Dispose(); }
                catch (Exception) { }
            }
        }
        return Concat("decode step graph replayed at new positions", parts, 1e-5, 1e-5);
    }
}
