using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// The F16 KV cache kernels: kv_append_f16 / kv_store_f16 (bit-exact against the CPU's RNE rounding,
/// <see cref="Fp16.FromFloat"/>), attention_f16kv and attention_decode_f16kv against the CPU's scalar attention on the
/// same half cache (<see cref="Attention.ComputeScalar"/> with KHalf / VHalf; attention_f32's 1e-5), and the
/// tensor-core attention_tiled_f16kv_d* bit for bit against attention_tiled_d* on an F32 cache holding the widened
/// halves (which it rounds back to the same halves while staging), and within its 4u rel L2 of the CPU reference.
/// </summary>
public static unsafe partial class GpuOpChecks
{
    private static void AddHalfKvChecks(List<(string, Func<IGpuDevice, int, GpuCheckResult>)> all)
    {
        all.Add(("kv append f16 at device position + kv store f16", KvAppendF16Check));
        all.Add(("attention decode f16 cache gqa", (d, seed) => AttentionDecodeF16KvCheck(d, headDim: 40, seed)));
        all.Add(("attention decode f16 cache d128", (d, seed) => AttentionDecodeF16KvCheck(d, headDim: 128, seed)));
        all.Add(("attention f16 cache causal gqa", (d, seed) => AttentionF16KvCheck(d, tokens: 3, startPos: 9, headDim: 40, seed)));
        all.Add(("attention f16 cache F32 forced t37", (d, seed) => AttentionF16KvCheck(d, tokens: 37, startPos: 5, headDim: 72, seed)));
        foreach (var c in TiledAttentionCases.Where(c => c.Causal))
            all.Add(($"{c.Name} f16 cache", (d, seed) => TiledAttentionF16KvCheck(d, c, seed)));
    }

    private static ushort[] ToHalves(float[] x) => x.Select(Fp16.FromFloat).ToArray();

    private static float[] Widen(ushort[] h) => h.Select(Fp16.ToFloat).ToArray();

    /// <summary>A half buffer filled with 0xFFFF (NaN): a kernel reading an unwritten value fails.</summary>
    private static DeviceBuffer HalfOutput(IGpuDevice device, int halves)
    {
        var buffer = device.Allocate(halves * 2L);
        device.Fill(buffer, 0xFF, buffer.Bytes);
        return buffer;
    }

    /// <summary>
    /// Rows 0, 23 and 49 of [50, 72] half caches appended from F32 rows (positions from device memory), then rows 30…34
    /// stored by kv_store_f16 from 5 F32 rows; every other row keeps its contents: bit-exact against the host's rounding.
    /// </summary>
    public static GpuCheckResult KvAppendF16Check(IGpuDevice device, int seed)
    {
        var rng = new Random(seed);
        const int kvDim = 72;
        ushort[] k = ToHalves(Normal(rng, TablePositions * kvDim)), v = ToHalves(Normal(rng, TablePositions * kvDim));
        using var ops = new CudaOps(device);
        using var dk = device.Upload<ushort>(k);
        using var dv = device.Upload<ushort>(v);
        using var dp = device.Allocate(4);
        foreach (int position in new[] { 23, 0, TablePositions - 1 })
        {
            // × 3000: some values round past the F16 grid's coarse steps (and a few to ±inf beyond 65504).
            float[] kRow = Normal(rng, kvDim, 3000), vRow = Normal(rng, kvDim);
            ToHalves(kRow).CopyTo(k, position * kvDim);
            ToHalves(vRow).CopyTo(v, position * kvDim);
            using var dkr = device.Upload<float>(kRow);
            using var dvr = device.Upload<float>(vRow);
            ops.DecodeStepBegin(dp, position, default, 0);
            ops.KvAppendF16(dkr, dvr, dk, dv, dp, kvDim);
        }
        const int first = 30, rows = 5;
        float[] kRows = Normal(rng, rows * kvDim, 2), vRows = Normal(rng, rows * kvDim, 1e-5); // small V: subnormal halves
        ToHalves(kRows).CopyTo(k, first * kvDim);
        ToHalves(vRows).CopyTo(v, first * kvDim);
        using (var dkRows = device.Upload<float>(kRows))
        using (var dvRows = device.Upload<float>(vRows))
            ops.KvStoreF16(dkRows, dvRows, dk.Pointer.Offset(first * kvDim * 2L), dv.Pointer.Offset(first * kvDim * 2L), rows * kvDim);
        ushort[] got = [.. device.Download<ushort>(dk), .. device.Download<ushort>(dv)];
        ushort[] want = [.. k, .. v];
        int mismatches = 0, firstMismatch = -1;
        for (int i = 0; i < got.Length; i++)
            if (got[i] != want[i] && mismatches++ == 0) firstMismatch = i;
        return new GpuCheckResult("kv append f16 at device position + kv store f16", mismatches == 0, mismatches, 0, "bit-exact halves",
            mismatches == 0 ? "" : $"{mismatches} halves differ, first at [{firstMismatch}]: got 0x{got[firstMismatch]:X4}, expected 0x{want[firstMismatch]:X4}");
    }

    /// <summary>
    /// <see cref="AttentionDecodeCheck"/> on a half cache: one query token, 6 heads over 2 KV heads, rows padded by 4, caches
    /// of 50 rows NaN past the position; positions 0, 9 and 49 against the CPU's scalar attention on the same halves.
    /// </summary>
    public static GpuCheckResult AttentionDecodeF16KvCheck(IGpuDevice device, int headDim, int seed)
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
            ushort[] k = ToHalves(Normal(rng, keys * kvStride, 1.5)), v = ToHalves(Normal(rng, keys * kvStride));
            var expected = new float[heads * headDim];
            fixed (float* pq = q, pe = expected)
            fixed (ushort* pk = k, pv = v)
            {
                var problem = new Attention.Problem
                {
                    Q = pq, KHalf = pk, VHalf = pv, Output = pe, Tokens = 1, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                    KvStride = kvStride, StartPos = position, KeyCount = keys, Causal = true, Scale = scale,
                };
                Attention.ComputeScalar(in problem);
            }
            using var dq = device.Upload<float>(q);
            using var dk = HalfOutput(device, TablePositions * kvStride);
            using var dv = HalfOutput(device, TablePositions * kvStride);
            device.Upload<ushort>(dk.Pointer, k);
            device.Upload<ushort>(dv.Pointer, v);
            using var dout = Output(device, expected.Length);
            ops.DecodeStepBegin(dp, position, default, 0);
            ops.AttentionDecodeF16Kv(dq, dk, dv, dout, heads, kvHeads, headDim, kvStride, dp, scale);
            parts.Add((device.Download<float>(dout), ToDouble(expected)));
        }
        return Concat($"attention decode f16 cache d{headDim}", parts, 1e-5, 1e-5);
    }

    /// <summary>
    /// attention_f16kv (the F32 path forced) for <paramref name="tokens"/> queries after <paramref name="startPos"/> cached
    /// positions, 6 heads over 2 KV heads, causal, against the CPU's scalar attention on the same halves.
    /// </summary>
    public static GpuCheckResult AttentionF16KvCheck(IGpuDevice device, int tokens, int startPos, int headDim, int seed)
    {
        var rng = new Random(seed);
        const int heads = 6, kvHeads = 2;
        int kvStride = kvHeads * headDim, keys = startPos + tokens;
        float scale = 1.0f / MathF.Sqrt(headDim);
        float[] q = Normal(rng, tokens * heads * headDim, 1.5);
        ushort[] k = ToHalves(Normal(rng, keys * kvStride, 1.5)), v = ToHalves(Normal(rng, keys * kvStride));
        var expected = new float[q.Length];
        fixed (float* pq = q, pe = expected)
        fixed (ushort* pk = k, pv = v)
        {
            var problem = new Attention.Problem
            {
                Q = pq, KHalf = pk, VHalf = pv, Output = pe, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                KvStride = kvStride, StartPos = startPos, KeyCount = keys, Causal = true, Scale = scale,
            };
            Attention.ComputeScalar(in problem);
        }
        using var ops = new CudaOps(device);
        using var dq = device.Upload<float>(q);
        using var dk = device.Upload<ushort>(k);
        using var dv = device.Upload<ushort>(v);
        using var dout = Output(device, expected.Length);
        ops.AttentionF16Kv(dq, dk, dv, dout, tokens, heads, kvHeads, headDim, kvStride, startPos, keys, causal: true, scale, AttentionPath.F32);
        return Compare($"attention f16 cache t{tokens} d{headDim}", device.Download<float>(dout), ToDouble(expected), 1e-5, 1e-5);
    }

    /// <summary>
    /// The tensor-core kernel on a half cache (a causal <see cref="TiledAttentionCase"/>): bit-identical to the F32-cache
    /// tensor-core kernel fed the widened halves (both stage the same halves), and within rel L2 4u of the CPU's scalar
    /// attention on the halves (Q and P are still rounded to F16 by the tensor-core path).
    /// </summary>
    public static GpuCheckResult TiledAttentionF16KvCheck(IGpuDevice device, TiledAttentionCase c, int seed)
    {
        var rng = new Random(seed);
        int tokens = c.Tokens, heads = c.Heads, kvHeads = c.KvHeads, headDim = c.HeadDim, keys = c.Keys;
        int kvStride = kvHeads * headDim + 4;
        float scale = 1.0f / MathF.Sqrt(headDim);
        float[] q = Normal(rng, tokens * heads * headDim, 1.5);
        ushort[] k = ToHalves(Normal(rng, keys * kvStride, 1.5)), v = ToHalves(Normal(rng, keys * kvStride));
        var expected = new float[q.Length];
        fixed (float* pq = q, pe = expected)
        fixed (ushort* pk = k, pv = v)
        {
            var problem = new Attention.Problem
            {
                Q = pq, KHalf = pk, VHalf = pv, Output = pe, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                KvStride = kvStride, StartPos = c.StartPos, KeyCount = keys, Causal = c.Causal, Scale = scale,
            };
            Attention.ComputeScalar(in problem);
        }
        using var ops = new CudaOps(device);
        using var dq = device.Upload<float>(q);
        using var dk = device.Upload<ushort>(k);
        using var dv = device.Upload<ushort>(v);
        using var dkWide = device.Upload<float>(Widen(k));
        using var dvWide = device.Upload<float>(Widen(v));
        using var dout = Output(device, expected.Length);
        using var dWide = Output(device, expected.Length);
        ops.AttentionF16Kv(dq, dk, dv, dout, tokens, heads, kvHeads, headDim, kvStride, c.StartPos, keys, c.Causal, scale, AttentionPath.TensorCores);
        ops.Attention(dq, dkWide, dvWide, dWide, tokens, heads, kvHeads, headDim, kvStride, c.StartPos, keys, c.Causal, scale, AttentionPath.TensorCores);
        float[] actual = device.Download<float>(dout), wide = device.Download<float>(dWide);
        int differ = 0;
        for (int i = 0; i < actual.Length; i++)
            if (BitConverter.SingleToInt32Bits(actual[i]) != BitConverter.SingleToInt32Bits(wide[i])) differ++;
        var result = Compare($"{c.Name} f16 cache", actual, ToDouble(expected), 4 * HalfUnitRoundoff, 1e-1);
        string detail = $"{result.Detail} bits equal to the F32-cache tensor-core kernel: {actual.Length - differ}/{actual.Length}".Trim();
        return result with { Passed = result.Passed && differ == 0, Detail = detail };
    }
}
