using System.Diagnostics;
using System.Globalization;
using System.Text.Json;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Formats.Conversion;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>What <see cref="LlavaBenchmark.Run"/> measures and how often.</summary>
public sealed record LlavaBenchOptions
{
    /// <summary>Text tokens after the image rows in the prefill (LLaVA-1.5 prompt: 576 image rows + ~64 tokens).</summary>
    public int TextTokens { get; init; } = 64;

    /// <summary>Single-token forward passes timed per decode run (each makes the next greedy token).</summary>
    public int DecodeTokens { get; init; } = 128;

    public int EncodeReps { get; init; } = 10;
    public int PrefillReps { get; init; } = 5;
    public int DecodeReps { get; init; } = 3;

    /// <summary>Size of each buffer of the device-to-device copy that gives the bandwidth roofline.</summary>
    public long CopyBytes { get; init; } = 1L << 30;

    /// <summary>Quantized decoders built from the F16 weights as llama-quantize makes the file (<see cref="GgufOutputType"/> names).</summary>
    public string[] QuantTypes { get; init; } = ["q4_0", "q4_k_m"];

    /// <summary>
    /// Quantize layer 0's matrices once per type and use them in every layer (<see cref="LlavaBenchmark.Quantize"/>):
    /// seconds instead of minutes at 7B, same bytes per decode step. False quantizes every layer.
    /// </summary>
    public bool ReuseFirstLayerQuantization { get; init; } = true;

    /// <summary>Threads for loading and quantizing (0: all logical processors).</summary>
    public int Threads { get; init; }

    /// <summary>bench_torch.py's JSON: its timings go beside ours, its prompt ids and greedy tokens are reused / compared.</summary>
    public string? TorchJson { get; init; }

    /// <summary>
    /// A folder with bench_torch.py's <c>pixels.npy</c> [3, S, S] (the image both encode) and <c>image_features.npy</c>
    /// [rows, dim] (torch's projected rows, compared with ours). Null: deterministic pseudo-random pixels.
    /// </summary>
    public string? ReferenceFolder { get; init; }

    /// <summary>
    /// Also run the same image, prompt and greedy decode on the CPU backend and compare (image rows, last prefill
    /// logits, tokens). Minutes at 7B: meant for the tiny emulator run.
    /// </summary>
    public bool CpuCheck { get; init; }

    /// <summary><see cref="ModelLoadOptions.GpuTensorCores"/> (null: by compute capability).</summary>
    public bool? GpuTensorCores { get; init; }
}

/// <summary>One measured number: a stable key (the JSON name), what it is, the value and its unit.</summary>
public sealed record LlavaBenchValue(string Key, string Label, double Value, string Unit);

/// <summary>What <see cref="LlavaBenchmark.Run"/> found: every value, the generated tokens and the failed checks.</summary>
public sealed class LlavaBenchReport
{
    public List<LlavaBenchValue> Values { get; } = [];
    public Dictionary<string, int[]> Tokens { get; } = [];
    public List<string> Failures { get; } = [];

    public double? this[string key] => Values.FirstOrDefault(v => v.Key == key)?.Value;

    public void Add(string key, string label, double value, string unit) => Values.Add(new LlavaBenchValue(key, label, value, unit));

    public string ToJson()
    {
        using var stream = new MemoryStream();
        using (var json = new Utf8JsonWriter(stream, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            foreach (var v in Values)
            {
                if (double.IsFinite(v.Value)) json.WriteNumber(v.Key, v.Value);
                else json.WriteNull(v.Key);
            }
            json.WriteStartObject("tokens");
            foreach (var (name, ids) in Tokens)
            {
                json.WriteStartArray(name);
                foreach (int id in ids) json.WriteNumberValue(id);
                json.WriteEndArray();
            }
            json.WriteEndObject();
            json.WriteStartArray("failures");
            foreach (string f in Failures) json.WriteStringValue(f);
            json.WriteEndArray();
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(stream.ToArray());
    }
}

/// <summary>
/// Issue 7's GPU benchmark on a llava-hf folder (bench_torch.py writes a random LLaVA-1.5-7B-shaped one), through the
/// public API: <see cref="LlavaModel.Load"/> with <see cref="ComputeBackend.Cuda"/> for F16, then decoders quantized
/// from the same F16 weights as llama-quantize writes Q4_0 / Q4_K_M files (<see cref="GgufOutputType.TypeFor"/>) and
/// opened with <see cref="DecoderBackend.Open"/>. Measures, wall clock after warm-up with the device synchronised,
/// medians: device-to-device copy bandwidth; image encode (tower to the feature layer + projector, pixels uploaded,
/// rows left on the device); prefill (the image rows from the host through ForwardEmbeddings, then the text tokens,
/// last logits back on the host); greedy decode (one token per forward pass, device argmax, one int back per step),
/// and the weight bytes a decode step reads, for the bandwidth roofline. Works on any <see cref="IGpuDevice"/>: the
/// host emulator runs it on a tiny folder (tests), a GPU on the 7B one (tools/device/gpu-check.sh bench).
/// </summary>
public static unsafe class LlavaBenchmark
{
    public static LlavaBenchReport Run(IGpuDevice device, string folder, LlavaBenchOptions options, Action<string> say)
    {
        var report = new LlavaBenchReport();
        var clock = Stopwatch.StartNew();
        void Progress(string what) => say($"[{clock.Elapsed.TotalSeconds,7:0.0} s] {what}");
        using var torch = options.TorchJson is { } tj && File.Exists(tj) ? JsonDocument.Parse(File.ReadAllText(tj)) : null;

        // Each phase records its failure and the run goes on: a device call is too rare to lose every number to one error.
        bool Phase(string what, Action run)
        {
            try { run(); return true; }
            catch (Exception e)
            {
                report.Failures.Add($"{what}: {e.GetType().Name}: {e.Message}");
                Progress($"FAILED {what}: {e.GetType().Name}: {e.Message}\n{e.StackTrace}");
                return false;
            }
        }

        Phase("copy bandwidth", () => CopyBandwidth(device, options.CopyBytes, report, Progress));

        int threads = options.Threads > 0 ? options.Threads : ComputeThreadPool.DefaultThreadCount();
        using var pool = new ComputeThreadPool(threads);
        Progress($"loading {folder} (F16, Cuda backend, {threads} threads)");
        var load = Stopwatch.StartNew();
        float[]? imageRows = null;
        int[]? promptIds = null;
        LlavaModel? llava = null;
        Phase("load the folder as LlavaModel on the Cuda backend", () => llava = LlavaModel.Load(folder, null, pool, new ModelLoadOptions
            { Backend = ComputeBackend.Cuda, GpuDevice = device, Pool = pool, GpuTensorCores = options.GpuTensorCores }));
        using (llava)
        {
            if (llava is { } loaded)
            {
                var llavaModel = loaded; // non-null for the lambdas below
                report.Add("load_f16_s", "load F16 + upload + probe", load.Elapsed.TotalSeconds, "s");
                var config = llavaModel.Decoder.Config;
                promptIds = PromptIds(torch, options.TextTokens, config.VocabSize);
                var encoder = llavaModel.GpuEncoder ?? throw new InvalidOperationException("the Cuda backend has no GPU image encoder");
                Progress($"loaded in {load.Elapsed.TotalSeconds:0.0} s on {llavaModel.Backend.DeviceName}: {config.Layers} layers, dim {config.Dim}, ffn {config.FeedForward}, " +
                         $"vocab {config.VocabSize}; encoder {encoder.WeightBytes / 1e6:0.0} MB of weights, {encoder.ImageTokenCount} rows per image, tensor cores {encoder.UsesTensorCores}");
                float[] pixels = Pixels(options.ReferenceFolder, encoder.PixelCount);

                Phase("image encode", () =>
                {
                    // Rows once to the host (the prefill's input, compared with torch's), then the timed runs.
                    var rows = new float[encoder.ImageTokenCount * encoder.EmbeddingLength];
                    encoder.EncodeAndProject(pixels, rows);
                    CheckFinite("F16 image rows", rows, report);
                    imageRows = rows;
                    CompareWithTorchFeatures(options.ReferenceFolder, rows, report, Progress);
                    double encodeMs = Median(options.EncodeReps, 2, () =>
                    {
                        encoder.EncodeAndProjectOnDevice(pixels);
                        device.Synchronize();
                    });
                    report.Add("encode_ms", "image encode (tower + projector), ms per image", encodeMs, "ms");
                    Progress($"image encode {encodeMs:0.00} ms");
                });
                imageRows ??= FallbackRows(options.ReferenceFolder, encoder.ImageTokenCount, config.Dim, Progress);

                float[] rowsForPrefill = imageRows;
                int[] ids = promptIds;
                Phase("F16 prefill and decode", () =>
                {
                    var f16 = TimeDecoder("f16", llavaModel.Backend, config, rowsForPrefill, ids, options, report, Progress);
                    AddRoofline("f16", llavaModel.Decoder.Weights, config, f16, report);
                    if (options.CpuCheck)
                    {
                        Progress("CPU check (F16)");
                        float[] cpuRows = llavaModel.Encoder.EncodeAndProject(pixels);
                        report.Add("cpu_check_rows_max_abs", "image rows: max |GPU − CPU|", MaxAbsDiff(rowsForPrefill, cpuRows), "");
                        report.Add("cpu_check_rows_max", "image rows: max |CPU|", MaxAbs(cpuRows), "");
                        CpuCheck("f16", llavaModel.Decoder, rowsForPrefill, ids, options, f16, report, Progress);
                    }
                });
            }
        }

        // The F16 GPU copy is gone; the CPU model maps the same files and is the quantizer's source (and, when the
        // LlavaModel could not be opened, F16's too: the decoder alone on the Cuda backend).
        DecoderModel? source = null;
        Phase("load the decoder on the CPU", () => source = ModelLoader.Load(folder));
        using (source)
        {
            if (source is not { } cpuModel) return Finish(report, torch, Progress);
            int[] ids = promptIds ?? PromptIds(torch, options.TextTokens, cpuModel.Config.VocabSize);
            float[] rows = imageRows ?? FallbackRows(options.ReferenceFolder, 576, cpuModel.Config.Dim, Progress);
            if (llava == null)
                Phase("F16 decoder alone: prefill and decode", () =>
                {
                    using var backend = DecoderBackend.Open(cpuModel, ComputeBackend.Cuda, device, options.GpuTensorCores);
                    var f16 = TimeDecoder("f16", backend, cpuModel.Config, rows, ids, options, report, Progress);
                    AddRoofline("f16", cpuModel.Weights, cpuModel.Config, f16, report);
                });
            foreach (string name in options.QuantTypes)
            {
                var type = GgufOutputType.Parse(name);
                Phase($"{type.Name} quantize, prefill and decode", () =>
                {
                    Progress($"quantizing to {type.Name} ({threads} threads)");
                    var quantize = Stopwatch.StartNew();
                    var owned = new List<NativeBuffer>();
                    try
                    {
                        var weights = Quantize(cpuModel, type, pool, owned, options.ReuseFirstLayerQuantization);
                        double seconds = quantize.Elapsed.TotalSeconds;
                        report.Add($"quantize_{type.Name}_s", $"quantize {type.Name} on the CPU ({(options.ReuseFirstLayerQuantization ? "layer 0 reused" : "every layer")})", seconds, "s");
                        Progress($"quantized {owned.Sum(b => b.Bytes) / 1e6:0} MB in {seconds:0.0} s ({owned.Count} matrices; " +
                                 $"{(options.ReuseFirstLayerQuantization ? "layer 0's matrices reused in every layer" : "every layer")})");
                        using var model = new DecoderModel(cpuModel.Config, weights, null, cpuModel.SourcePath);
                        var open = Stopwatch.StartNew();
                        using var backend = DecoderBackend.Open(model, ComputeBackend.Cuda, device, options.GpuTensorCores);
                        Progress($"{type.Name}: uploaded and probed in {open.Elapsed.TotalSeconds:0.0} s");
                        // Fewer prefill runs than F16: the prefill targets are F16's; these are for information.
                        var timing = TimeDecoder(type.Name, backend, cpuModel.Config, rows, ids,
                            options with { PrefillReps = Math.Min(options.PrefillReps, 3) }, report, Progress);
                        AddRoofline(type.Name, weights, cpuModel.Config, timing, report);
                        if (options.CpuCheck) CpuCheck(type.Name, model, rows, ids, options, timing, report, Progress);
                        // The integer path on the same upload: activations quantized as the CPU does, dp4a products.
                        if (backend.GpuOps is { } ops && ops.QuantizedMatMulPath != QuantizedMatMulPath.Dp4a)
                        {
                            ops.QuantizedMatMulPath = QuantizedMatMulPath.Dp4a;
                            var dp4a = TimeDecoder(type.Name + "_dp4a", backend, cpuModel.Config, rows, ids,
                                options with { PrefillReps = Math.Min(options.PrefillReps, 3) }, report, Progress);
                            AddRoofline(type.Name + "_dp4a", weights, cpuModel.Config, dp4a, report);
                            ops.QuantizedMatMulPath = QuantizedMatMulPath.Float;
                        }
                    }
                    finally
                    {
                        foreach (var b in owned) b.Dispose();
                    }
                });
            }
        }
        return Finish(report, torch, Progress);
    }

    private static LlavaBenchReport Finish(LlavaBenchReport report, JsonDocument? torch, Action<string> progress)
    {
        if (torch != null) CompareTokens(torch.RootElement, report, progress);
        progress("done");
        return report;
    }

    /// <summary>Image rows for the prefill when our encoder failed: torch's (image_features.npy), else small deterministic values.</summary>
    private static float[] FallbackRows(string? referenceFolder, int rows, int dim, Action<string> progress)
    {
        string? path = referenceFolder is null ? null : Path.Combine(referenceFolder, "image_features.npy");
        if (path != null && File.Exists(path))
        {
            var (data, _) = NpyFile.ReadFloat32(path);
            if (data.Length % dim == 0)
            {
                progress($"prefill image rows: torch's ({path}), ours are not available");
                return data;
            }
        }
        progress("prefill image rows: deterministic stand-ins (neither our encoder's nor torch's are available)");
        var stand = new float[rows * dim];
        for (int i = 0; i < stand.Length; i++) stand[i] = (float)(0.05 * Math.Sin(i * 0.37));
        return stand;
    }

    /// <summary>Prefill and decode timings of one decoder, and the greedy tokens it made.</summary>
    private sealed record DecoderTiming(double PrefillMs, double DecodeMsPerToken, int[] Tokens, float[] LastPrefillLogits, long KvBytesPerPosition, int PrefillPositions);

    private static DecoderTiming TimeDecoder(string name, DecoderBackend backend, DecoderConfig config, float[] imageRows, int[] promptIds,
        LlavaBenchOptions options, LlavaBenchReport report, Action<string> progress)
    {
        int imageCount = imageRows.Length / config.Dim;
        int positions = imageCount + promptIds.Length;
        using var session = backend.CreateSession(positions + options.DecodeTokens + 1, maxBatch: Math.Max(imageCount, promptIds.Length));
        float[] lastLogits = new float[config.VocabSize];
        void Prefill()
        {
            session.Reset();
            session.ForwardEmbeddings(imageRows);
            session.Forward(promptIds).CopyTo(lastLogits); // the logits come back to the host: the device is done
        }
        double prefillMs = Median(options.PrefillReps, 1, Prefill);
        report.Add($"prefill_{name}_ms", $"{name} prefill {imageCount} image rows + {promptIds.Length} tokens", prefillMs, "ms");
        report.Add($"prefill_{name}_tok_s", $"{name} prefill tok/s", positions / (prefillMs / 1000), "tok/s");
        progress($"{name}: prefill {positions} positions {prefillMs:0.0} ms = {positions / (prefillMs / 1000):0} tok/s");
        CheckFinite($"{name} prefill logits", lastLogits, report);

        int first = ArgMax(lastLogits);
        var tokens = new int[options.DecodeTokens + 1];
        int[] one = new int[1];
        double decodeMs = Median(options.DecodeReps, 1, () =>
        {
            session.Truncate(positions);
            one[0] = first;
            tokens[0] = first;
            for (int i = 1; i <= options.DecodeTokens; i++)
            {
                one[0] = session.ForwardGreedy(one);
                tokens[i] = one[0];
            }
        });
        double msPerToken = decodeMs / options.DecodeTokens;
        report.Add($"decode_{name}_tok_s", $"{name} greedy decode tok/s ({options.DecodeTokens} tokens after {positions})", 1000 / msPerToken, "tok/s");
        report.Tokens[name] = tokens;
        progress($"{name}: decode {1000 / msPerToken:0.0} tok/s ({msPerToken:0.000} ms/token)");
        return new DecoderTiming(prefillMs, msPerToken, tokens, lastLogits, session.KvCacheBytes / session.ContextSize, positions);
    }

    /// <summary>Bytes a decode step reads: every layer matrix and the LM head once, one embedding row, and the KV cache.</summary>
    private static void AddRoofline(string name, DecoderWeights weights, DecoderConfig config, DecoderTiming timing, LlavaBenchReport report)
    {
        long weightBytes = 0;
        foreach (var l in weights.Layers)
            weightBytes += Bytes(l.Query) + Bytes(l.Key) + Bytes(l.Value) + Bytes(l.Output) + Bytes(l.Gate) + Bytes(l.Up) + Bytes(l.Down);
        weightBytes += Bytes(weights.LmHead) + weights.TokenEmbedding.RowBytes;
        // The context grows from PrefillPositions to PrefillPositions + DecodeTokens over the run: its mean.
        double meanContext = timing.PrefillPositions + timing.Tokens.Length / 2.0;
        double kvBytes = timing.KvBytesPerPosition * meanContext;
        double tokensPerSecond = 1000 / timing.DecodeMsPerToken;
        report.Add($"decode_{name}_weight_bytes", $"{name} weight bytes read per token", weightBytes, "B");
        report.Add($"decode_{name}_kv_bytes", $"{name} KV-cache bytes read per token (mean context {meanContext:0})", kvBytes, "B");
        report.Add($"decode_{name}_weight_gb_s", $"{name} weight bytes / time", weightBytes * tokensPerSecond / 1e9, "GB/s");
        report.Add($"decode_{name}_total_gb_s", $"{name} (weights + KV) bytes / time", (weightBytes + kvBytes) * tokensPerSecond / 1e9, "GB/s");
        if (report["copy_gb_s"] is { } copy && copy > 0)
            report.Add($"decode_{name}_roofline_pct", $"{name} weight GB/s as % of the copy bandwidth", 100 * weightBytes * tokensPerSecond / 1e9 / copy, "%");
    }

    private static long Bytes(WeightMatrix m) => m.RowBytes * m.Rows;

    /// <summary>
    /// The decoder's weights re-encoded as llama-quantize writes a <paramref name="type"/> file from F16 (the Q4_K_M mix
    /// included: output Q6_K, attn_v / ffn_down Q6_K in the layers use_more_bits picks); norms stay as bound.
    /// New buffers go to <paramref name="owned"/>.
    /// </summary>
    /// With <paramref name="reuseFirstLayer"/> every layer's matrix of a kind is layer 0's, quantized once per type the
    /// mix gives it (our K-quant quantizer does ~2 M weights/s per thread: all of 7B would take minutes of device
    /// time). The types, sizes and bytes a decode step reads are those of the full file and every layer still gets its
    /// own device copy (the upload does not share host pointers); only the values repeat.
    /// </summary>
    public static DecoderWeights Quantize(DecoderModel source, GgufOutputType type, ComputeThreadPool pool, List<NativeBuffer> owned, bool reuseFirstLayer = false)
    {
        var w = source.Weights;
        int layers = w.Layers.Length;
        var cache = new Dictionary<(string, TensorType), WeightMatrix>();
        WeightMatrix As(WeightMatrix m, string ggufName, bool isOutput, int layer)
        {
            ReadOnlySpan<long> ne = [m.Cols, m.Rows];
            var target = type.TypeFor(ggufName, ne, isOutput, layer, layers);
            if (target == m.Type) return m;
            string kind = layer >= 0 && reuseFirstLayer ? ggufName[(ggufName.IndexOf('.', 4) + 1)..] : ggufName; // "attn_v.weight"
            if (cache.TryGetValue((kind, target), out var done)) return done;
            var q = MatrixQuantizer.Quantize(m, target, pool, out var buffer);
            owned.Add(buffer);
            cache[(kind, target)] = q;
            return q;
        }
        var quantizedLayers = new DecoderLayerWeights[layers];
        for (int l = 0; l < layers; l++)
        {
            var s = reuseFirstLayer ? w.Layers[0] : w.Layers[l];
            string p = $"blk.{l}.";
            quantizedLayers[l] = new DecoderLayerWeights
            {
                AttentionNorm = w.Layers[l].AttentionNorm,
                Query = As(s.Query, p + "attn_q.weight", false, l),
                Key = As(s.Key, p + "attn_k.weight", false, l),
                Value = As(s.Value, p + "attn_v.weight", false, l),
                QueryBias = w.Layers[l].QueryBias, KeyBias = w.Layers[l].KeyBias, ValueBias = w.Layers[l].ValueBias,
                Output = As(s.Output, p + "attn_output.weight", false, l),
                FeedForwardNorm = w.Layers[l].FeedForwardNorm,
                Gate = As(s.Gate, p + "ffn_gate.weight", false, l),
                Up = As(s.Up, p + "ffn_up.weight", false, l),
                Down = As(s.Down, p + "ffn_down.weight", false, l),
            };
        }
        var embedding = As(w.TokenEmbedding, "token_embd.weight", w.TiedEmbeddings, -1);
        return new DecoderWeights
        {
            TokenEmbedding = embedding,
            Layers = quantizedLayers,
            OutputNorm = w.OutputNorm,
            LmHead = w.TiedEmbeddings ? embedding : As(w.LmHead, "output.weight", true, -1),
            TiedEmbeddings = w.TiedEmbeddings,
        };
    }

    /// <summary>
    /// The same image rows, prompt and greedy decode on the CPU backend (F32 weights dequantized from the GPU's): last prefill logits (max |GPU − CPU| and max
    /// |CPU|) and the tokens. A token that differs is a failure unless the CPU's top two logits at that step are
    /// within <c>1e-3 · max(1, max|logit|)</c> of each other (a near tie, which rounding may flip).
    /// </summary>
    private static void CpuCheck(string name, DecoderModel model, float[] imageRows, int[] promptIds, LlavaBenchOptions options,
        DecoderTiming gpu, LlavaBenchReport report, Action<string> progress)
    {
        int positions = imageRows.Length / model.Config.Dim + promptIds.Length;
        // The GPU kernels widen every weight to F32 and keep the activations F32; the CPU's quantized kernels round
        // the activations to Q8 (as ggml), so the reference with the GPU's arithmetic is the CPU on F32 weights.
        var owned = new List<NativeBuffer>();
        using var dequantized = new DecoderModel(model.Config, Dequantized(model.Weights, owned), null, model.SourcePath);
        try { CpuCheckOn(name, dequantized, imageRows, promptIds, positions, options, gpu, report, progress); }
        finally { foreach (var b in owned) b.Dispose(); }
    }

    private static void CpuCheckOn(string name, DecoderModel model, float[] imageRows, int[] promptIds, int positions, LlavaBenchOptions options,
        DecoderTiming gpu, LlavaBenchReport report, Action<string> progress)
    {
        using var session = DecoderBackend.Cpu(model).CreateSession(positions + options.DecodeTokens + 1, maxBatch: Math.Max(positions - promptIds.Length, promptIds.Length));
        session.ForwardEmbeddings(imageRows);
        float[] logits = session.Forward(promptIds).ToArray();
        double diff = MaxAbsDiff(gpu.LastPrefillLogits, logits), scale = Math.Max(1, MaxAbs(logits));
        report.Add($"cpu_check_{name}_logits_max_abs", $"{name} last prefill logits: max |GPU − CPU|", diff, "");
        report.Add($"cpu_check_{name}_logits_max", $"{name} last prefill logits: max |CPU|", scale, "");
        int token = ArgMax(logits), agree = 0;
        bool diverged = false;
        for (int i = 0; i < gpu.Tokens.Length && !diverged; i++)
        {
            if (token != gpu.Tokens[i])
            {
                var (top, second) = TopTwo(logits);
                if (top - second > 1e-3 * Math.Max(1, MaxAbs(logits)))
                    report.Failures.Add($"{name}: greedy token {i} is {gpu.Tokens[i]} on the GPU, {token} on the CPU (CPU margin {top - second:g3})");
                diverged = true;
                break;
            }
            agree++;
            if (i + 1 < gpu.Tokens.Length) logits = session.Forward([token]).ToArray();
            token = ArgMax(logits);
        }
        report.Add($"cpu_check_{name}_tokens_agree", $"{name} greedy tokens equal to the CPU's, of {gpu.Tokens.Length}", agree, "");
        progress($"{name}: CPU check: logits max |diff| {diff:g3} (max |logit| {scale:g3}), {agree}/{gpu.Tokens.Length} tokens equal");
    }

    /// <summary><paramref name="w"/> with every matrix widened to F32 (scalar dequantization); norms shared.</summary>
    private static DecoderWeights Dequantized(DecoderWeights w, List<NativeBuffer> owned)
    {
        WeightMatrix ToF32(WeightMatrix m)
        {
            if (m.Type == TensorType.F32) return m;
            var buffer = NativeBuffer.Floats((long)m.Rows * m.Cols);
            owned.Add(buffer);
            var kernels = QuantRegistry.ScalarKernels(m.Type);
            for (int r = 0; r < m.Rows; r++) kernels.Dequantize(m.Row(r), (float*)buffer.Pointer + (long)r * m.Cols, m.Cols);
            return new WeightMatrix(buffer.Pointer, TensorType.F32, m.Rows, m.Cols);
        }
        var embedding = ToF32(w.TokenEmbedding);
        return new DecoderWeights
        {
            TokenEmbedding = embedding,
            Layers = w.Layers.Select(l => new DecoderLayerWeights
            {
                AttentionNorm = l.AttentionNorm, Query = ToF32(l.Query), Key = ToF32(l.Key), Value = ToF32(l.Value),
                QueryBias = l.QueryBias, KeyBias = l.KeyBias, ValueBias = l.ValueBias, Output = ToF32(l.Output),
                FeedForwardNorm = l.FeedForwardNorm, Gate = ToF32(l.Gate), Up = ToF32(l.Up), Down = ToF32(l.Down),
            }).ToArray(),
            OutputNorm = w.OutputNorm,
            LmHead = w.TiedEmbeddings ? embedding : ToF32(w.LmHead),
            TiedEmbeddings = w.TiedEmbeddings,
        };
    }

    private static void CopyBandwidth(IGpuDevice device, long bytes, LlavaBenchReport report, Action<string> progress)
    {
        bytes = Math.Min(bytes, (long)int.MaxValue * 4 / 2) & ~255L;
        using var a = device.Allocate(bytes);
        using var b = device.Allocate(bytes);
        device.Fill(a, 0x3C, bytes);
        using var ops = new CudaOps(device);
        int floats = (int)(bytes / 4);
        // Bytes read + bytes written per copy, as the "copy bandwidth" figures of KINDS.md count them.
        double kernelMs = Median(10, 2, () => { ops.Copy(a, b, floats); device.Synchronize(); });
        double best = 2.0 * bytes / (kernelMs / 1000) / 1e9;
        report.Add("copy_kernel_gb_s", $"copy_f32 kernel, {bytes >> 20} MiB, read + written", best, "GB/s");
        if (device is CudaDevice cuda)
        {
            double memcpyMs = Median(10, 2, () => { cuda.Copy(b, a, bytes); cuda.Synchronize(); });
            double memcpy = 2.0 * bytes / (memcpyMs / 1000) / 1e9;
            report.Add("copy_memcpy_gb_s", $"cuMemcpyDtoD, {bytes >> 20} MiB, read + written", memcpy, "GB/s");
            best = Math.Max(best, memcpy);
        }
        report.Add("copy_gb_s", "device-to-device copy bandwidth (the roofline)", best, "GB/s");
        progress($"copy bandwidth {best:0} GB/s (read + written, {bytes >> 20} MiB buffers)");
    }

    private static float[] Pixels(string? referenceFolder, int count)
    {
        string? path = referenceFolder is null ? null : Path.Combine(referenceFolder, "pixels.npy");
        if (path != null && File.Exists(path))
        {
            var (data, _) = NpyFile.ReadFloat32(path);
            if (data.Length != count)
                throw new InvalidDataException($"{path}: {data.Length} floats, the encoder takes {count} (3 × S × S)");
            return data;
        }
        // Normalized CLIP pixels lie in about [−1.8, 2.2]: a smooth deterministic pattern in that range.
        var pixels = new float[count];
        for (int i = 0; i < count; i++) pixels[i] = (float)(2.0 * Math.Sin(i * 0.0137) * Math.Cos(i * 0.00071));
        return pixels;
    }

    private static int[] PromptIds(JsonDocument? torch, int count, int vocab)
    {
        if (torch != null && torch.RootElement.TryGetProperty("prompt_ids", out var ids) && ids.GetArrayLength() > 0)
        {
            var list = ids.EnumerateArray().Select(e => e.GetInt32()).ToArray();
            foreach (int id in list)
                if (id < 0 || id >= vocab) throw new InvalidDataException($"torch JSON prompt_ids: {id} is outside the vocabulary 0..{vocab - 1}");
            return list;
        }
        var result = new int[count];
        for (int i = 0; i < count; i++) result[i] = (int)((i * 7919L + 13) % Math.Min(vocab, 32000));
        return result;
    }

    private static void CompareWithTorchFeatures(string? referenceFolder, float[] rows, LlavaBenchReport report, Action<string> progress)
    {
        string? path = referenceFolder is null ? null : Path.Combine(referenceFolder, "image_features.npy");
        if (path == null || !File.Exists(path)) return;
        var (torch, _) = NpyFile.ReadFloat32(path);
        if (torch.Length != rows.Length)
        {
            report.Failures.Add($"{path}: {torch.Length} floats, ours {rows.Length}");
            return;
        }
        double diff = MaxAbsDiff(rows, torch), scale = MaxAbs(torch);
        double num = 0, den = 0;
        for (int i = 0; i < rows.Length; i++) { num += (rows[i] - (double)torch[i]) * (rows[i] - (double)torch[i]); den += (double)torch[i] * torch[i]; }
        report.Add("torch_rows_max_abs", "image rows: max |ours − torch|", diff, "");
        report.Add("torch_rows_max", "image rows: max |torch|", scale, "");
        report.Add("torch_rows_rel_l2", "image rows: ‖ours − torch‖ / ‖torch‖", Math.Sqrt(num / Math.Max(den, 1e-30)), "");
        progress($"image rows vs torch: max |diff| {diff:g3} (max |torch| {scale:g3}), rel L2 {Math.Sqrt(num / Math.Max(den, 1e-30)):g3}");
    }

    private static void CompareTokens(JsonElement torch, LlavaBenchReport report, Action<string> progress)
    {
        if (!torch.TryGetProperty("greedy_tokens", out var greedy) || !report.Tokens.TryGetValue("f16", out var ours)) return;
        int[] theirs = greedy.EnumerateArray().Select(e => e.GetInt32()).ToArray();
        int same = 0;
        while (same < Math.Min(ours.Length, theirs.Length) && ours[same] == theirs[same]) same++;
        report.Add("torch_tokens_common_prefix", "F16 greedy tokens equal to torch's before the first difference", same, "");
        progress($"F16 greedy tokens: the first {same} of {Math.Min(ours.Length, theirs.Length)} equal torch's (random weights: near ties diverge)");
    }

    private static void CheckFinite(string what, float[] values, LlavaBenchReport report)
    {
        foreach (float v in values)
            if (!float.IsFinite(v)) { report.Failures.Add($"{what}: not finite ({v})"); return; }
    }

    /// <summary>Median wall-clock milliseconds of <paramref name="reps"/> runs after <paramref name="warmup"/> untimed ones.</summary>
    private static double Median(int reps, int warmup, Action run)
    {
        for (int i = 0; i < warmup; i++) run();
        var times = new double[Math.Max(1, reps)];
        for (int i = 0; i < times.Length; i++)
        {
            long start = Stopwatch.GetTimestamp();
            run();
            times[i] = Stopwatch.GetElapsedTime(start).TotalMilliseconds;
        }
        Array.Sort(times);
        return times.Length % 2 == 1 ? times[times.Length / 2] : (times[times.Length / 2 - 1] + times[times.Length / 2]) / 2;
    }

    private static int ArgMax(ReadOnlySpan<float> x)
    {
        int best = 0;
        for (int i = 1; i < x.Length; i++) if (x[i] > x[best]) best = i;
        return best;
    }

    private static (float Top, float Second) TopTwo(float[] x)
    {
        float top = float.NegativeInfinity, second = float.NegativeInfinity;
        foreach (float v in x)
        {
            if (v > top) { second = top; top = v; }
            else if (v > second) second = v;
        }
        return (top, second);
    }

    private static double MaxAbs(float[] x)
    {
        double m = 0;
        foreach (float v in x) m = Math.Max(m, Math.Abs(v));
        return m;
    }

    private static double MaxAbsDiff(float[] a, float[] b)
    {
        double m = 0;
        for (int i = 0; i < a.Length; i++) m = Math.Max(m, Math.Abs(a[i] - (double)b[i]));
        return m;
    }

    /// <summary>
    /// Writes a tiny random LLaVA-1.5-shaped checkpoint into <paramref name="root"/>/model as transformers 5.x's
    /// save_pretrained lays it out (what bench_torch.py makes at 7B): <c>model.language_model.*</c>,
    /// <c>model.vision_tower.vision_model.*</c>, <c>model.multi_modal_projector.*</c>, <c>lm_head.weight</c>, F16
    /// safetensors, config.json with <c>image_token_id</c>, <c>dtype</c> and <c>rope_parameters</c> (no
    /// <c>rope_theta</c>, no <c>torch_dtype</c>), no tokenizer and no preprocessor_config.json. The decoder is a random
    /// llama of width <paramref name="dim"/> (rows multiples of 256, so every K-quant applies), the tower CLIP 56 px /
    /// patch 14 with 3 blocks and feature layer −2 (16 rows per image) and the mlp2x projector. Returns the folder.
    /// </summary>
    public static string WriteTinyFolder(string root, int dim = 256, int layers = 2)
    {
        var text = RandomModelSpec.Quantizable(RandomModelArchitecture.Llama) with
        {
            EmbeddingLength = dim, FeedForwardLength = 2 * dim, BlockCount = layers, HeadCount = dim / 64, KvHeadCount = dim / 64,
        };
        var tower = Vision.RandomVisionModel.Create(Vision.RandomVisionSpec.TinyClip with { TextHiddenSize = dim });
        var (folder, _) = Vision.RandomLlavaHfFolder.Write(tower, root, new Vision.LlavaFolderOptions
        {
            Layout = Vision.LlavaFolderLayout.LlavaHfNew,
            TextGguf = RandomModels.GetPath(text),
            DType = Model.Formats.Safetensors.SafetensorsDType.F16,
            PreprocessorConfig = false,
            ImageTokenIndex = 7,
            EditConfig = AsTransformers5Config,
        });
        return folder;
    }

    /// <summary>config.json keys as transformers 5.x writes them (aliases and the rope_parameters dict).</summary>
    private static void AsTransformers5Config(Dictionary<string, object?> config)
    {
        config["image_token_id"] = config["image_token_index"];
        config.Remove("image_token_index");
        config["dtype"] = "float16";
        config["transformers_version"] = "5.17.0";
        if (config["text_config"] is Dictionary<string, object?> text)
        {
            text["rope_parameters"] = new Dictionary<string, object?> { ["rope_theta"] = text["rope_theta"], ["rope_type"] = "default" };
            text.Remove("rope_theta");
            text.Remove("torch_dtype");
            text["dtype"] = "float16";
        }
    }

    /// <summary>
    /// The side-by-side table: ours, torch's (bench_torch.py JSON, null when absent), the speed ratio (torch time /
    /// our time: above 1 means ours is faster), issue 7's target and whether it is met.
    /// </summary>
    public static List<string> Table(LlavaBenchReport ours, JsonElement? torch)
    {
        double? T(string key) => torch is { } t && t.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Number ? v.GetDouble() : null;
        double? copy = ours["copy_gb_s"];
        double? torchRoofline = T("decode_tok_s") is { } ttok && ours["decode_f16_weight_bytes"] is { } wb && copy is { } c
            ? 100 * wb * ttok / 1e9 / c : null;
        string Met(bool? ok) => ok is null ? "—" : ok.Value ? "yes" : "NO";
        string Ratio(double? oursValue, double? torchValue, bool higherIsBetter) =>
            oursValue is { } o && torchValue is { } tv && o > 0 && tv > 0 ? (higherIsBetter ? o / tv : tv / o).ToString("0.00", CultureInfo.InvariantCulture) + "×" : "—";
        var rows = new List<string>
        {
            $"{"item",-40} {"ours",10} {"torch",10} {"speed vs torch",15} {"target",-28} met",
            $"{"device-to-device copy, GB/s (r + w)",-40} {Format(copy),10} {Format(T("copy_gb_s")),10} {"",15} {"(roofline reference)",-28} —",
        };
        void Row(string item, double? o, double? t, bool higherIsBetter, string target, bool? met) =>
            rows.Add($"{item,-40} {Format(o),10} {Format(t),10} {Ratio(o, t, higherIsBetter),15} {target,-28} {Met(met)}");
        double? encode = ours["encode_ms"], torchEncode = T("vision_ms");
        Row("image encode CLIP-L/336 + proj, ms", encode, torchEncode, false, "≤ 10 ms, faster than torch",
            encode is { } e ? e <= 10 && (torchEncode is not { } te || e < te) : null);
        double? prefill = ours["prefill_f16_tok_s"];
        Row("prefill F16 576 img + 64 txt, tok/s", prefill, T("prefill_tok_s"), true, "≥ 10000 tok/s", prefill is { } p ? p >= 10000 : null);
        double? decode = ours["decode_f16_tok_s"], torchDecode = T("decode_tok_s");
        Row("decode F16, tok/s", decode, torchDecode, true, "faster than torch", decode is { } d && torchDecode is { } td ? d > td : null);
        Row("decode F16 vs torch model.generate()", decode, T("generate_decode_tok_s"), true, "(for information)", null);
        double? roofline = ours["decode_f16_roofline_pct"];
        Row("decode F16, % of copy bandwidth", roofline, torchRoofline, true, "≥ 80 %", roofline is { } r ? r >= 80 : null);
        foreach (string q in new[] { "q4_0", "q4_k_m" })
        {
            double? tok = ours[$"decode_{q}_tok_s"];
            Row($"decode {q.ToUpperInvariant()}, tok/s", tok, null, true, "≥ 190 tok/s", tok is { } v ? v >= 190 : null);
            Row($"decode {q.ToUpperInvariant()}, % of copy bandwidth", ours[$"decode_{q}_roofline_pct"], null, true, "", null);
            double? dp4a = ours[$"decode_{q}_dp4a_tok_s"];
            Row($"decode {q.ToUpperInvariant()} dp4a path, tok/s", dp4a, null, true, "≥ 190 tok/s", dp4a is { } dv ? dv >= 190 : null);
        }
        return rows;
    }

    /// <summary>Formats a number for the table: fixed decimals by size, invariant culture.</summary>
    public static string Format(double? value) => value is not { } v || !double.IsFinite(v) ? "—"
        : v >= 100 ? v.ToString("0", CultureInfo.InvariantCulture)
        : v >= 1 ? v.ToString("0.0", CultureInfo.InvariantCulture)
        : v >= 0.01 || v == 0 ? v.ToString("0.000", CultureInfo.InvariantCulture) : v.ToString("0.0e0", CultureInfo.InvariantCulture);
}
