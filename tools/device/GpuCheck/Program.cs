using System.Diagnostics;
using System.Text;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Cuda;

// GPU checks for a device machine: every CUDA kernel against the CPU ops, the GPU decoder end to end against the
// CPU decoder and the GPU image encoder against the CPU one (the checks the xunit tests run, shared through
// LlavaNative.TestSupport), a captured-graph replay, and mat-vec / attention / decoder tok/s / image encoder timings. Prints a report and writes it to --out DIR (report.txt) when given.
// Exit code: 0 all checks passed, 1 a check failed, 2 no GPU.
// --emulator runs the same checks on the host emulator (g++ needed), to try a published build before a device run.
//   GpuCheck [--out DIR] [--seeds N] [--no-bench] [--emulator]
// Issue 7's LLaVA-7B benchmark (--bench-llava FOLDER …) is LlavaBenchCommand.cs.
if (LlavaNative.Tools.GpuCheck.LlavaBenchCommand.Handles(args)) return LlavaNative.Tools.GpuCheck.LlavaBenchCommand.Run(args);
string? outDir = null;
int seeds = 3;
bool bench = true, emulate = false;
for (int i = 0; i < args.Length; i++)
{
    switch (args[i])
    {
        case "--out": outDir = args[++i]; break;
        case "--seeds": seeds = int.Parse(args[++i], System.Globalization.CultureInfo.InvariantCulture); break;
        case "--no-bench": bench = false; break;
        case "--emulator": emulate = true; break;
        default: Console.Error.WriteLine($"unknown argument {args[i]}; usage: GpuCheck [--out DIR] [--seeds N] [--no-bench] [--emulator]"); return 2;
    }
}

var report = new StringBuilder();
void Say(string line)
{
    Console.WriteLine(line);
    report.AppendLine(line);
}
void Save()
{
    if (outDir == null) return;
    Directory.CreateDirectory(outDir);
    File.WriteAllText(Path.Combine(outDir, "report.txt"), report.ToString());
}

if (emulate)
{
    var emulator = LlavaNative.TestSupport.Cuda.Emulator.CudaEmulator.Shared(out string why);
    if (emulator == null) { Say("no emulator: " + why); Save(); return 2; }
    using var emulated = new LlavaNative.TestSupport.Cuda.Emulator.EmulatedGpuDevice(emulator);
    Say($"device   {emulated.Name} ({emulator.LibraryPath})");
    int emulatedFailures = RunChecks(emulated, seeds, Say);
    Say(emulatedFailures == 0 ? "ALL CHECKS PASSED" : $"{emulatedFailures} CHECK RUNS FAILED");
    Save();
    return emulatedFailures == 0 ? 0 : 1;
}

CudaDevice device;
var open = Stopwatch.StartNew();
try { device = CudaDevice.Open(); }
catch (Exception e) when (e is CudaUnavailableException or CudaException)
{
    Say("no GPU: " + e.Message);
    Save();
    return 2;
}
using (device)
{
    Say($"device   {device.Name}");
    Say($"driver   CUDA {device.DriverVersion / 1000}.{device.DriverVersion % 1000 / 10}, NVRTC {device.NvrtcVersion.Major}.{device.NvrtcVersion.Minor}, opened in {open.ElapsedMilliseconds} ms");
    Say($"cache    {CudaModuleCache.DefaultDirectory()}");

    // Compile every unit once up front, so the checks below do not include NVRTC time; report it.
    var compile = Stopwatch.StartNew();
    foreach (string kernel in KernelSources.Kernels.Keys) device.Kernel(kernel);
    Say($"modules  {KernelSources.Units.Count()} units, {KernelSources.Kernels.Count} kernels loaded in {compile.ElapsedMilliseconds} ms (NVRTC or the disk cache)");
    Say("");

    int failed = RunChecks(device, seeds, Say);

    Say("");
    GpuCheckResult graph = GraphReplayCheck(device);
    Say(graph.ToString());
    if (!graph.Passed) failed++;

    if (bench && failed == 0)
    {
        Say("");
        Benchmarks(device, Say);
        KQuantDp4aTimings(device, Say);
    }
    Say("");
    Say(failed == 0 ? "ALL CHECKS PASSED" : $"{failed} CHECK RUNS FAILED");
    Save();
    return failed == 0 ? 0 : 1;
}

// Every check of GpuOpChecks, GpuDp4aChecks (integer prefill mat-mul), GpuDecodeDp4aChecks (integer decode mat-vec), GpuDp4aKChecks (K-quant dp4a mat-mul / mat-vec) and GpuSamplingChecks (device top-k and sampler vs the host), then the end-to-end checks of GpuDecoderChecks, GpuVisionChecks and GpuSessionChecks
// (LlavaSession / LlavaConversation on the Cuda backend vs the CPU backend), for seeds 1…seeds;
// prints seed 1 and every failure; returns the failure count.
static int RunChecks(IGpuDevice device, int seeds, Action<string> say)
{
    int failed = 0;
    foreach (var (name, run) in GpuOpChecks.All.Concat(GpuDp4aChecks.All).Concat(GpuDecodeDp4aChecks.All).Concat(GpuDp4aKChecks.All).Concat(GpuSamplingChecks.All).Concat(GpuDecoderChecks.All).Concat(GpuVisionChecks.All).Concat(GpuSessionChecks.All))
    {
        for (int seed = 1; seed <= seeds; seed++)
        {
            GpuCheckResult result;
            try { result = run(device, seed); }
            catch (Exception e) { result = new GpuCheckResult(name, false, double.NaN, double.NaN, "-", e.GetType().Name + ": " + e.Message); }
            if (!result.Passed || seed == 1) say($"seed {seed}  {result}");
            if (!result.Passed) failed++;
        }
    }
    return failed;
}

// A decode-like sequence (RMSNorm → Q4_0 mat-vec → SiLU-mul → argmax) captured once and replayed must give the
// same bits as launching it directly.
static GpuCheckResult GraphReplayCheck(CudaDevice device)
{
    var rng = new Random(7);
    const int dim = 2048, rows = 4096;
    long rowBytes = TensorTypeInfo.RowBytes(TensorType.Q4_0, dim);
    var w = new byte[rowBytes * rows];
    for (int r = 0; r < rows; r++) QuantTestData.RandomRow(TensorType.Q4_0, dim, rng).CopyTo(w, rowBytes * r);
    var x = new float[dim];
    var norm = new float[dim];
    var up = new float[rows];
    for (int i = 0; i < dim; i++) { x[i] = (float)(rng.NextDouble() - 0.5); norm[i] = 1 + (float)rng.NextDouble(); }
    for (int i = 0; i < rows; i++) up[i] = (float)(rng.NextDouble() - 0.5);
    using var ops = new CudaOps(device);
    using var dw = device.Upload<byte>(w);
    using var dx = device.Upload<float>(x);
    using var dn = device.Upload<float>(norm);
    using var du = device.Upload<float>(up);
    using var dh = device.Allocate(dim * 4L);
    using var dy = device.Allocate(rows * 4L);
    using var dr = device.Allocate(4);
    void Step()
    {
        ops.RmsNorm(dx, dn, dh, 1, dim, 1e-6f);
        ops.MatVec(TensorType.Q4_0, dw, dh, dy, rows, dim);
        ops.SiluMul(dy, du, rows);
        ops.ArgMax(dy, rows, dr);
    }
    Step();
    float[] direct = device.Download<float>(dy);
    int directArg = device.Download<int>(dr)[0];
    device.Fill(dy, 0xFF, dy.Bytes);
    device.Fill(dr, 0xFF, 4);
    device.BeginCapture();
    Step();
    using var graph = device.EndCapture();
    graph.Launch();
    float[] replay = device.Download<float>(dy);
    int replayArg = device.Download<int>(dr)[0];
    int differ = 0;
    for (int i = 0; i < rows; i++) if (BitConverter.SingleToInt32Bits(direct[i]) != BitConverter.SingleToInt32Bits(replay[i])) differ++;

    // Launch overhead: 200 direct steps vs 200 graph replays.
    using var timer = device.CreateTimer();
    timer.Start();
    for (int i = 0; i < 200; i++) Step();
    timer.Stop();
    float directMs = timer.ElapsedMilliseconds / 200;
    timer.Start();
    for (int i = 0; i < 200; i++) graph.Launch();
    timer.Stop();
    float graphMs = timer.ElapsedMilliseconds / 200;
    return new GpuCheckResult("graph replay = direct launches", differ == 0 && directArg == replayArg, differ, 0, "bit-exact",
        $"argmax {replayArg}/{directArg}; step {directMs * 1000:0.0} µs direct, {graphMs * 1000:0.0} µs as a graph");
}

// Mat-vec at LLaVA-7B decode shapes, attention at a 4096-token context: median of 5 timed batches; weights cycle
// over enough copies (≥ 256 MiB) that L2 (50–60 MB) cannot hold them. GB/s counts the weight bytes read.
static void Benchmarks(CudaDevice device, Action<string> say)
{
    using var ops = new CudaOps(device);
    var rng = new Random(3);
    say("mat-vec (y = W·x, F32 activations), weight bytes read per second; median of 5 batches");
    foreach (var (rows, cols) in new[] { (4096, 4096), (11008, 4096) })
    {
        foreach (TensorType type in CudaOps.WeightTypes)
        {
            long rowBytes = TensorTypeInfo.RowBytes(type, cols);
            long matrixBytes = rowBytes * rows;
            int copies = (int)Math.Max(1, Math.Min(64, (256L << 20) / matrixBytes + 1));
            var host = new byte[matrixBytes];
            var row = QuantTestData.RandomRow(type, cols, rng, realistic: true);
            for (int r = 0; r < rows; r++) row.CopyTo(host, rowBytes * r);
            var weights = new List<DeviceBuffer>();
            for (int c = 0; c < copies; c++) weights.Add(device.Upload<byte>(host));
            var xHost = new float[cols];
            for (int i = 0; i < cols; i++) xHost[i] = (float)(rng.NextDouble() - 0.5);
            using var x = device.Upload<float>(xHost);
            using var y = device.Allocate(rows * 4L);
            for (int c = 0; c < copies; c++) ops.MatVec(type, weights[c], x, y, rows, cols); // warm-up
            using var timer = device.CreateTimer();
            var times = new List<double>();
            int launches = copies * Math.Max(1, 64 / copies);
            for (int rep = 0; rep < 5; rep++)
            {
                timer.Start();
                for (int i = 0; i < launches; i++) ops.MatVec(type, weights[i % copies], x, y, rows, cols);
                timer.Stop();
                times.Add(timer.ElapsedMilliseconds / launches);
            }
            times.Sort();
            double ms = times[2];
            say($"  {type,-5} {rows,5}×{cols}  {ms * 1000,8:0.0} µs  {matrixBytes / (ms * 1e-3) / 1e9,7:0} GB/s  ({matrixBytes >> 20} MiB, {copies} copies)");
            foreach (var wbuf in weights) wbuf.Dispose();
        }
    }

    // The decode mat-vec's two paths (CudaOps.QuantizedMatMulPath): Float (matvec.cu, F32 activations) vs Dp4a
    // (matvec_dp4a.cu, the activation quantized once per call — that launch is included), to pick the default.
    say("decode mat-vec Float vs Dp4a (quantize + integer mat-vec), weight bytes read per second; median of 5 batches");
    foreach (var (rows, cols) in new[] { (4096, 4096), (11008, 4096), (4096, 11008) })
    {
        foreach (TensorType type in new[] { TensorType.Q4_0, TensorType.Q8_0 })
        {
            long rowBytes = TensorTypeInfo.RowBytes(type, cols), matrixBytes = rowBytes * rows;
            int copies = (int)Math.Max(1, Math.Min(64, (256L << 20) / matrixBytes + 1));
            var host = new byte[matrixBytes];
            var row = QuantTestData.RandomRow(type, cols, rng, realistic: true);
            for (int r = 0; r < rows; r++) row.CopyTo(host, rowBytes * r);
            var weights = new List<DeviceBuffer>();
            for (int c = 0; c < copies; c++) weights.Add(device.Upload<byte>(host));
            var xHost = new float[cols];
            for (int i = 0; i < cols; i++) xHost[i] = (float)(rng.NextDouble() - 0.5);
            using var x = device.Upload<float>(xHost);
            using var y = device.Allocate(rows * 4L);
            using var timer = device.CreateTimer();
            var line = new System.Text.StringBuilder($"  {type,-5} {rows,5}×{cols,-5}");
            foreach (var path in new[] { QuantizedMatMulPath.Float, QuantizedMatMulPath.Dp4a })
            {
                ops.QuantizedMatMulPath = path;
                for (int c = 0; c < copies; c++) ops.MatVec(type, weights[c], x, y, rows, cols); // warm-up
                var times = new List<double>();
                int launches = copies * Math.Max(1, 64 / copies);
                for (int rep = 0; rep < 5; rep++)
                {
                    timer.Start();
                    for (int i = 0; i < launches; i++) ops.MatVec(type, weights[i % copies], x, y, rows, cols);
                    timer.Stop();
                    times.Add(timer.ElapsedMilliseconds / launches);
                }
                times.Sort();
                double ms = times[2];
                line.Append($"  {path}: {ms * 1000,7:0.0} µs {matrixBytes / (ms * 1e-3) / 1e9,6:0} GB/s");
            }
            ops.QuantizedMatMulPath = QuantizedMatMulPath.Float;
            say(line.ToString());
            foreach (var wbuf in weights) wbuf.Dispose();
        }
    }

    say("prefill mat-mul (Y = X·Wᵀ, 512 tokens × 4096 → 4096), median of 5 × 5 calls: F32-FMA tiles | tensor cores "
        + "(F16/BF16 as they are, quantized expanded to F16 per call; version 2: cp.async, 128×128) | F16/BF16 version 1");
    foreach (TensorType type in CudaOps.WeightTypes)
    {
        const int rows = 4096, cols = 4096, tokens = 512;
        long rowBytes = TensorTypeInfo.RowBytes(type, cols);
        var host = new byte[rowBytes * rows];
        var row = QuantTestData.RandomRow(type, cols, rng, realistic: true);
        for (int r = 0; r < rows; r++) row.CopyTo(host, rowBytes * r);
        using var w = device.Upload<byte>(host);
        var xHost = new float[tokens * cols];
        for (int i = 0; i < xHost.Length; i++) xHost[i] = (float)(rng.NextDouble() - 0.5);
        using var x = device.Upload<float>(xHost);
        using var y = device.Allocate((long)tokens * rows * 4);
        using var timer = device.CreateTimer();
        double Time(Action call)
        {
            call(); // warm-up: module load, scratch
            var times = new List<double>();
            for (int rep = 0; rep < 5; rep++)
            {
                timer.Start();
                for (int i = 0; i < 5; i++) call();
                timer.Stop();
                times.Add(timer.ElapsedMilliseconds / 5);
            }
            times.Sort();
            return times[2];
        }
        string Rate(double ms) => $"{ms,8:0.000} ms {2.0 * rows * cols * tokens / (ms * 1e-3) / 1e12,6:0.0} TFLOP/s";
        ops.MatMulPath = MatMulPath.Float;
        string line = $"  {type,-6} float {Rate(Time(() => ops.MatMul(type, w, x, y, rows, cols, tokens, rows)))}";
        if (type != TensorType.F32)
        {
            ops.MatMulPath = MatMulPath.TensorCores;
            line += $" | tensor cores {Rate(Time(() => ops.MatMul(type, w, x, y, rows, cols, tokens, rows)))}";
        }
        if (type is TensorType.F16 or TensorType.BF16)
            line += $" | v1 {Rate(Time(() => ops.MatMulTensorCoresV1(type, w, x, y, rows, cols, tokens, rows)))}";
        ops.MatMulPath = MatMulPath.Auto;
        say(line);
    }

    // The whole GpuDecoder on random decoders: a 16-token prompt, then greedy steps with the device argmax (one int
    // copied back per step), wall clock; each step replayed from a captured CUDA graph (GpuDecoder.UseGraphs) vs the
    // same ~20 launches per layer made directly. Small models are launch-bound, so the graph figure shows the overhead.
    say("GpuDecoder decode (greedy, device argmax), wall clock after 4 warm-up steps: CUDA graph replay vs direct launches");
    foreach (var (label, spec, quantize) in new (string, RandomModelSpec, TensorType?)[]
    {
        ("tiny llama F32 (dim 64, 2 layers, vocab 512)", RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic), null),
        ("llama Q4_K (dim 256, 2 layers, vocab 512)", RandomModelSpec.Quantizable(RandomModelArchitecture.Llama), TensorType.Q4_K),
        ("llama Q4_K (dim 1024, 4 layers, ffn 2816, vocab 512)", RandomModelSpec.Quantizable(RandomModelArchitecture.Llama) with
            { EmbeddingLength = 1024, FeedForwardLength = 2816, BlockCount = 4, HeadCount = 8, KvHeadCount = 8 }, TensorType.Q4_K),
    })
    {
        var (tokensPerSecond, prefillMs) = GpuDecoderChecks.DecodeSpeed(device, spec, quantize, steps: 128, useGraphs: false);
        var (graphTokensPerSecond, _) = GpuDecoderChecks.DecodeSpeed(device, spec, quantize, steps: 128, useGraphs: true);
        say($"  {label,-52} graph {graphTokensPerSecond,8:0} tok/s ({1000 / graphTokensPerSecond:0.000} ms/token), direct {tokensPerSecond,8:0} tok/s ({1000 / tokensPerSecond:0.000} ms/token); 16-token prefill {prefillMs:0.0} ms incl. first use");
    }

    // The GPU image encoder at CLIP ViT-L/14-336 shape with LLaVA-1.5-7B's projector, random F16 weights: ms per image
    // (pixels uploaded, 577 tokens through the tower, 576 rows projected, left on the device), event-timed median of 5
    // after 2 warm-up images; tiled mat-muls and tensor cores. Only on a real GPU: the emulator would take hours.
    say("GpuImageEncoder CLIP ViT-L/14-336 + mlp2x projector (1024 → 4096 → 4096), F16 weights, ms per image, median of 5");
    foreach (int featureLayer in new[] { 23, 24 })
    {
        using var tower = GpuVisionChecks.ClipL336(TensorType.F16, featureLayer, seed: 5);
        float[] pixels = tower.Pixels(1);
        foreach (bool tensorCores in new[] { false, true })
        {
            using var encoder = new LlavaNative.Model.Vision.GpuImageEncoder(device, tower.VisionConfig, tower.Vision, tower.ProjectorConfig, tower.Projector, tensorCores);
            for (int i = 0; i < 2; i++) encoder.EncodeAndProjectOnDevice(pixels);
            using var timer = device.CreateTimer();
            var times = new List<double>();
            for (int rep = 0; rep < 5; rep++)
            {
                timer.Start();
                encoder.EncodeAndProjectOnDevice(pixels);
                timer.Stop();
                times.Add(timer.ElapsedMilliseconds);
            }
            times.Sort();
            say($"  {featureLayer} of 24 blocks run, {(tensorCores ? "tensor cores (mma.sync, version 1)" : "tiled mat-mul (CUDA cores)      ")} {times[2],9:0.00} ms/image  ({encoder.WeightBytes >> 20} MiB of weights on the device)");
        }
    }

    say("attention decode (1 token, F32 KV cache), 32 heads × 128, context 4096; bytes = K and V read");
    foreach (int kvHeads in new[] { 32, 8 })
    {
        const int heads = 32, headDim = 128, ctx = 4096;
        int kvStride = kvHeads * headDim;
        using var q = device.Allocate(heads * headDim * 4L);
        using var k = device.Allocate((long)ctx * kvStride * 4);
        using var v = device.Allocate((long)ctx * kvStride * 4);
        using var o = device.Allocate(heads * headDim * 4L);
        device.Fill(q, 0, q.Bytes);
        device.Fill(k, 0x3C, k.Bytes); // ~0.01 as floats: finite, not zero
        device.Fill(v, 0x3C, v.Bytes);
        ops.Attention(q, k, v, o, 1, heads, kvHeads, headDim, kvStride, ctx - 1, ctx, true, 0.088f);
        using var timer = device.CreateTimer();
        var times = new List<double>();
        for (int rep = 0; rep < 5; rep++)
        {
            timer.Start();
            for (int i = 0; i < 20; i++) ops.Attention(q, k, v, o, 1, heads, kvHeads, headDim, kvStride, ctx - 1, ctx, true, 0.088f);
            timer.Stop();
            times.Add(timer.ElapsedMilliseconds / 20);
        }
        times.Sort();
        double ms = times[2];
        long bytes = 2L * ctx * kvStride * 4;
        say($"  kv heads {kvHeads,2}: {ms * 1000,8:0.0} µs  {bytes / (ms * 1e-3) / 1e9,7:0} GB/s (GQA re-reads K/V per query head: {heads / kvHeads}×)");
    }

    // Prefill / vision attention: the tiled tensor-core kernel (attention_tiled_d*) against the F32 per-query kernel on
    // the same inputs. FLOPs = 4·heads·headDim·(query-key pairs visible): the two products S = Q·Kᵀ and O = P·V.
    say("attention prefill / vision: tensor-core tiled kernel vs F32 per-query kernel (one call; FLOP/s over visible pairs)");
    foreach (var (label, tokens, heads, headDim, causal) in new[]
    {
        ("CLIP-L/336 tower, bidirectional", 577, 16, 64, false),
        ("SigLIP-so400m tower, bidirectional", 729, 16, 72, false),
        ("7B prefill 576 image + 64 text, causal", 640, 32, 128, true),
    })
    {
        int stride = heads * headDim;
        using var q = device.Allocate((long)tokens * stride * 4);
        using var k = device.Allocate((long)tokens * stride * 4);
        using var v = device.Allocate((long)tokens * stride * 4);
        using var o = device.Allocate((long)tokens * stride * 4);
        device.Fill(q, 0x3C, q.Bytes); // ~0.01 as floats: finite and inside the F16 range
        device.Fill(k, 0x3C, k.Bytes);
        device.Fill(v, 0x3C, v.Bytes);
        float scale = 1 / MathF.Sqrt(headDim);
        double pairs = causal ? (double)tokens * (tokens + 1) / 2 : (double)tokens * tokens;
        double flops = 4.0 * heads * headDim * pairs;
        var ms = new Dictionary<AttentionPath, double>();
        foreach (var path in new[] { AttentionPath.F32, AttentionPath.TensorCores })
        {
            ops.Attention(q, k, v, o, tokens, heads, heads, headDim, stride, 0, tokens, causal, scale, path); // warm-up
            using var timer = device.CreateTimer();
            var times = new List<double>();
            for (int rep = 0; rep < 5; rep++)
            {
                timer.Start();
                for (int i = 0; i < 5; i++) ops.Attention(q, k, v, o, tokens, heads, heads, headDim, stride, 0, tokens, causal, scale, path);
                timer.Stop();
                times.Add(timer.ElapsedMilliseconds / 5);
            }
            times.Sort();
            ms[path] = times[2];
        }
        say($"  {label}: {tokens} tokens × {heads} heads × {headDim}: F32 {ms[AttentionPath.F32] * 1000,8:0.0} µs ({flops / (ms[AttentionPath.F32] * 1e-3) / 1e12,5:0.00} TFLOP/s), "
            + $"tensor cores {ms[AttentionPath.TensorCores] * 1000,8:0.0} µs ({flops / (ms[AttentionPath.TensorCores] * 1e-3) / 1e12,5:0.00} TFLOP/s), "
            + $"{ms[AttentionPath.F32] / ms[AttentionPath.TensorCores]:0.0}× faster");
    }
}

// K-quants on the two QuantizedMatMulPath settings, to pick the default from one run: the decode mat-vec at 4096×4096
// (weight bytes per second; copies cycled past L2 as in Benchmarks; Dp4a's time includes its Q8_K quantize launch) and a
// 640-token prefill mat-mul (TFLOP/s-equivalent: 2·rows·cols·tokens per second, quantize included); median of 5.
static void KQuantDp4aTimings(CudaDevice device, Action<string> say)
{
    const int rows = 4096, cols = 4096, tokens = 640;
    using var ops = new CudaOps(device);
    var rng = new Random(4);
    say($"K-quant decode mat-vec {rows}×{cols} and {tokens}-token prefill mat-mul: Float (dequantize, F32 activations) vs Dp4a (Q8_K activations, dp4a); median of 5");
    var xHost = new float[tokens * cols];
    for (int i = 0; i < xHost.Length; i++) xHost[i] = (float)(rng.NextDouble() - 0.5);
    using var x = device.Upload<float>(xHost);
    using var y = device.Allocate((long)tokens * rows * 4);
    using var timer = device.CreateTimer();
    foreach (var type in new[] { TensorType.Q4_K, TensorType.Q6_K })
    {
        long rowBytes = TensorTypeInfo.RowBytes(type, cols), matrixBytes = rowBytes * rows;
        int copies = (int)Math.Max(1, Math.Min(64, (256L << 20) / matrixBytes + 1));
        var host = new byte[matrixBytes];
        var row = QuantTestData.RandomRow(type, cols, rng, realistic: true);
        for (int r = 0; r < rows; r++) row.CopyTo(host, rowBytes * r);
        var weights = new List<DeviceBuffer>();
        for (int c = 0; c < copies; c++) weights.Add(device.Upload<byte>(host));
        int launches = copies * Math.Max(1, 64 / copies);
        double Median(int count, Action<int> launch)
        {
            launch(0); // warm-up: first use compiles the unit and sizes the scratch
            var times = new List<double>();
            for (int rep = 0; rep < 5; rep++)
            {
                timer.Start();
                for (int i = 0; i < count; i++) launch(i);
                timer.Stop();
                times.Add(timer.ElapsedMilliseconds / count);
            }
            times.Sort();
            return times[2];
        }
        foreach (var path in new[] { QuantizedMatMulPath.Float, QuantizedMatMulPath.Dp4a })
        {
            ops.QuantizedMatMulPath = path;
            double mv = Median(launches, i => ops.MatVec(type, weights[i % copies], x, y, rows, cols));
            double mm = Median(5, i => ops.MatMul(type, weights[i % copies], x, y, rows, cols, tokens, rows));
            say($"  {type,-5} {path,-5} decode {mv * 1000,8:0.0} µs {matrixBytes / (mv * 1e-3) / 1e9,6:0} GB/s   prefill {mm,8:0.000} ms {2.0 * rows * cols * tokens / (mm * 1e-3) / 1e12,6:0.0} TFLOP/s");
        }
        foreach (var w in weights) w.Dispose();
    }
}
