using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cuda;
using LlavaNative.Model;
using LlavaNative.Model.Chat;
using LlavaNative.Model.Generation;
using LlavaNative.Model.Language;
using LlavaNative.Model.Llava;
using LlavaNative.TestSupport.Llava;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// <see cref="LlavaSession"/> and <see cref="LlavaConversation"/> on the CUDA backend (<see cref="ComputeBackend.Cuda"/>
/// with the weights on <c>device</c>) against the same model on the CPU backend: the tiny random LLaVA of the session
/// tests (llama decoder dim 64, 2 layers, synthetic 512-token vocabulary; tiny CLIP tower, 16 rows per image), prompts of
/// text and two images, sessions with MaxBatch 8 so every image goes through in two batches. Shared by the xunit tests
/// (host emulator; a GPU when present) and tools/device/GpuCheck.
/// <para>
/// Logits must agree within <see cref="RelativeTolerance"/> · max(1, max|logit|) (float32 summation order, as
/// <see cref="GpuDecoderChecks"/>); token streams (greedy generation, conversation replies) must be identical —
/// with random weights the top-2 margins are far above that tolerance.
/// </para>
/// </summary>
public static class GpuSessionChecks
{
    /// <summary>Max |Δ logit| allowed, relative to max(1, the largest |logit| of the row).</summary>
    public const double RelativeTolerance = 1e-4;

    private const int Context = 96, MaxBatch = 8, GreedyTokens = 8;

    public static IReadOnlyList<(string Name, Func<IGpuDevice, int, GpuCheckResult> Run)> All { get; } =
    [
        ("session: text + 2 images, logits and greedy", Prompt),
        ("session: ReplaceWith, Truncate (prefix reuse)", PrefixReuse),
        ("conversation: two turns with an image", Conversation),
        ("session: seeded top-k sampling (device candidates)", TopKSampling),
    ];

    /// <summary>
    /// A CPU and a CUDA model of the tiny LLaVA (the CUDA one encodes images on the GPU too), the CUDA one with F32
    /// activations throughout (no tensor cores), so the two differ by float summation order only.
    /// </summary>
    public static (LlavaModel Cpu, LlavaModel Gpu) OpenPair(IGpuDevice device, ComputeThreadPool pool)
    {
        string text = RandomModels.GetPath(LlavaFixtures.LlamaSynthetic), mmproj = LlavaFixtures.ClipMmproj();
        var cpu = LlavaModel.LoadGguf(text, mmproj, pool, new ModelLoadOptions { Backend = ComputeBackend.Cpu });
        try
        {
            var gpu = LlavaModel.LoadGguf(text, mmproj, pool, new ModelLoadOptions { Backend = ComputeBackend.Cuda, GpuDevice = device, GpuTensorCores = false });
            if (gpu.Backend.Kind != ComputeBackend.Cuda || gpu.EncoderBackend != ComputeBackend.Cuda)
            {
                gpu.Dispose();
                throw new InvalidOperationException($"the CUDA model runs its decoder on {gpu.Backend.Kind} and its image encoder on {gpu.EncoderBackend}");
            }
            return (cpu, gpu);
        }
        catch
        {
            cpu.Dispose();
            throw;
        }
    }

    private static LlavaSessionOptions SessionOptions => new() { ContextSize = Context, MaxBatch = MaxBatch };

    private static LlavaImage Png(int seed) => LlavaImage.FromBytes(LlavaFixtures.RandomPng(seed), $"image{seed}.png");

    /// <summary>
    /// "describe &lt;image&gt; then &lt;image&gt; briefly" appended to both sessions: last-position logits, then every
    /// position's logits of the same prompt in fresh sessions (<see cref="LlavaSession.Append"/> with a buffer), then
    /// 8 greedy tokens (the device argmax path) and 8 tokens with a repetition penalty (logits brought back and
    /// sampled on the host), and the logits after them.
    /// </summary>
    public static GpuCheckResult Prompt(IGpuDevice device, int seed)
    {
        using var pool = new ComputeThreadPool(2);
        var (cpuModel, gpuModel) = OpenPair(device, pool);
        using var _ = cpuModel;
        using var __ = gpuModel;
        var tally = new Tally("session: text + 2 images, logits and greedy");
        var images = new[] { Png(seed), Png(seed + 100) };
        const string Text = "describe <image> then <image> briefly";
        int vocab = cpuModel.Decoder.Config.VocabSize, generated = 0;

        using (var cpu = cpuModel.CreateSession(SessionOptions))
        using (var gpu = gpuModel.CreateSession(SessionOptions))
        {
            if (gpu.Backend != ComputeBackend.Cuda) tally.Fail($"the GPU session runs on {gpu.Backend}");
            cpu.AppendPrompt(Text, images);
            gpu.AppendPrompt(Text, images);
            tally.Same("positions after the prompt", gpu.History.ToArray(), cpu.History.ToArray());
            tally.Logits("prompt's last position", gpu.Logits, cpu.Logits, vocab);

            var greedy = new GenerationOptions { MaxTokens = GreedyTokens, Sampling = SamplingOptions.Greedy };
            tally.Same("greedy tokens (device argmax)", Tokens(gpu.Generate(greedy)), Tokens(cpu.Generate(greedy)));
            tally.Same("history after greedy", gpu.History.ToArray(), cpu.History.ToArray());
            var penalised = greedy with { Sampling = SamplingOptions.Greedy with { RepeatPenalty = 1.3f } };
            tally.Same("greedy tokens with a repetition penalty (host sampler)", Tokens(gpu.Generate(penalised)), Tokens(cpu.Generate(penalised)));
            tally.Logits("logits after generating", gpu.Logits, cpu.Logits, vocab);
            tally.Counted("generated", gpu.Stats.GeneratedTokens, cpu.Stats.GeneratedTokens);
            tally.Counted("prompt positions", gpu.Stats.PromptPositions, cpu.Stats.PromptPositions);
            generated = gpu.Stats.GeneratedTokens;
        }

        using (var cpu = cpuModel.CreateSession(SessionOptions))
        using (var gpu = gpuModel.CreateSession(SessionOptions))
        {
            var prompt = cpuModel.ComposeText(Text, images);
            int positions = prompt.PositionCount(cpuModel.ImageTokenCount);
            var expected = new float[positions * vocab];
            var actual = new float[positions * vocab];
            cpu.Append(prompt, expected);
            gpu.Append(prompt, actual);
            tally.Logits("every position's logits", actual, expected, vocab);
            tally.Logits("last logits after an all-logits append", gpu.Logits, cpu.Logits, vocab);
        }
        return tally.Result($"{Text} (2 × 16 image rows, batches of {MaxBatch}); {generated} tokens generated, greedy then penalised");
    }

    /// <summary>
    /// On the GPU session: ReplaceWith an edited prompt (the second image and the question changed) and Truncate then
    /// re-append must leave what a fresh one-pass evaluation leaves — on the GPU and on the CPU.
    /// </summary>
    public static GpuCheckResult PrefixReuse(IGpuDevice device, int seed)
    {
        using var pool = new ComputeThreadPool(2);
        var (cpuModel, gpuModel) = OpenPair(device, pool);
        using var _ = cpuModel;
        using var __ = gpuModel;
        var tally = new Tally("session: ReplaceWith, Truncate (prefix reuse)");
        int vocab = cpuModel.Decoder.Config.VocabSize;
        var a = Png(seed);
        var b = Png(seed + 100);
        var c = Png(seed + 200);

        (int[] History, float[] Logits) Fresh(LlavaModel model, LlavaPrompt prompt)
        {
            using var fresh = model.CreateSession(SessionOptions);
            fresh.Append(prompt);
            return (fresh.History.ToArray(), fresh.Logits.ToArray());
        }

        using var gpu = gpuModel.CreateSession(SessionOptions);
        var first = gpuModel.ComposeText("look at <image> and <image> now", [a, b]);
        gpu.Append(first);
        gpu.Generate(new GenerationOptions { MaxTokens = 4, Sampling = SamplingOptions.Greedy }).ToList();

        var edited = gpuModel.ComposeText("look at <image> and <image> again, slowly", [a, c]);
        int kept = gpu.ReplaceWith(edited);
        if (kept <= 1 + gpuModel.ImageTokenCount) tally.Fail($"ReplaceWith kept {kept} positions, fewer than BOS, 'look at' and the first image");
        var (gpuHistory, gpuFresh) = Fresh(gpuModel, edited);
        var (cpuHistory, cpuFresh) = Fresh(cpuModel, edited);
        tally.Same("history after ReplaceWith", gpu.History.ToArray(), cpuHistory);
        tally.Same("fresh GPU history", gpuHistory, cpuHistory);
        tally.Logits("ReplaceWith vs fresh GPU evaluation", gpu.Logits, gpuFresh, vocab);
        tally.Logits("ReplaceWith vs fresh CPU evaluation", gpu.Logits, cpuFresh, vocab);

        // Cut inside the second image, then append the rest of the prompt again as chunks.
        int cut = kept + 5;
        gpu.Truncate(cut);
        if (gpu.Position != cut || !gpu.Logits.IsEmpty) tally.Fail($"after Truncate({cut}): position {gpu.Position}, logits {(gpu.Logits.IsEmpty ? "empty" : "present")}");
        gpu.Append(edited.SkipPositions(cut, gpuModel.ImageTokenCount));
        tally.Same("history after Truncate + append", gpu.History.ToArray(), cpuHistory);
        tally.Logits("Truncate + append vs fresh CPU evaluation", gpu.Logits, cpuFresh, vocab);
        return tally.Result($"ReplaceWith kept {kept} positions; Truncate({cut}) inside the second image, then the rest re-appended");
    }

    /// <summary>Two user turns (the first with an image) through <see cref="LlavaConversation"/>: replies must be identical.</summary>
    public static GpuCheckResult Conversation(IGpuDevice device, int seed)
    {
        using var pool = new ComputeThreadPool(2);
        var (cpuModel, gpuModel) = OpenPair(device, pool);
        using var _ = cpuModel;
        using var __ = gpuModel;
        var tally = new Tally("conversation: two turns with an image");
        var options = new GenerationOptions { MaxTokens = 6, Sampling = SamplingOptions.Greedy };
        using var cpuSession = cpuModel.CreateSession(SessionOptions with { ContextSize = 160 });
        using var gpuSession = gpuModel.CreateSession(SessionOptions with { ContextSize = 160 });
        var template = cpuModel.ChooseChatTemplate()!;
        var cpu = new LlavaConversation(cpuSession, template, "Be brief.");
        var gpu = new LlavaConversation(gpuSession, template, "Be brief.");
        string[] turns = ["what is this?", "and the colours?"];
        for (int t = 0; t < turns.Length; t++)
        {
            var images = t == 0 ? new[] { Png(seed) } : [];
            var cpuAppend = cpu.AddUserMessage(turns[t], images);
            var gpuAppend = gpu.AddUserMessage(turns[t], images);
            if (cpuAppend != gpuAppend) tally.Fail($"turn {t}: cache update {gpuAppend} on the GPU, {cpuAppend} on the CPU");
            string cpuReply = string.Concat(cpu.GenerateReply(options).Select(p => p.Text));
            string gpuReply = string.Concat(gpu.GenerateReply(options).Select(p => p.Text));
            if (cpuReply != gpuReply) tally.Fail($"turn {t}: GPU replied '{gpuReply}', CPU '{cpuReply}'");
        }
        tally.Same("conversation positions", gpuSession.History.ToArray(), cpuSession.History.ToArray());
        tally.Logits("logits at the end", gpuSession.Logits, cpuSession.Logits, cpuModel.Decoder.Config.VocabSize);
        return tally.Result($"{turns.Length} turns, {options.MaxTokens} greedy tokens each; {gpuSession.Position} positions");
    }

    /// <summary>
    /// A text + image prompt, then seeded sampling on both sessions: top-k 40 with top-p, min-p and a repetition
    /// penalty (the GPU session selects the 40 candidates on the device, <see cref="GpuSampler"/>), then greedy with
    /// a repetition penalty and the end-of-generation tokens banned (device top-1). The token streams must be
    /// identical: the draw uses the same seed, and the logits differ only by float summation order (≤ 1e-4 of their
    /// scale), far below the gaps that decide the candidates and the draw for these random weights.
    /// </summary>
    public static GpuCheckResult TopKSampling(IGpuDevice device, int seed)
    {
        using var pool = new ComputeThreadPool(2);
        var (cpuModel, gpuModel) = OpenPair(device, pool);
        using var _ = cpuModel;
        using var __ = gpuModel;
        var tally = new Tally("session: seeded top-k sampling (device candidates)");
        int vocab = cpuModel.Decoder.Config.VocabSize;
        using var cpu = cpuModel.CreateSession(SessionOptions);
        using var gpu = gpuModel.CreateSession(SessionOptions);
        var images = new[] { Png(seed) };
        cpu.AppendPrompt("tell a story about <image>", images);
        gpu.AppendPrompt("tell a story about <image>", images);
        var topK = new GenerationOptions
        {
            MaxTokens = 12,
            Sampling = new SamplingOptions { Temperature = 1.1f, TopK = 40, TopP = 0.97f, MinP = 0.02f, RepeatPenalty = 1.2f, Seed = (ulong)(seed + 5) },
        };
        int[] cpuTokens = Tokens(cpu.Generate(topK)), gpuTokens = Tokens(gpu.Generate(topK));
        tally.Same("top-k 40 sampled tokens", gpuTokens, cpuTokens);
        if (cpuTokens.Distinct().Count() < 3) tally.Fail($"the sampled stream [{string.Join(",", cpuTokens)}] is too uniform to show anything");
        var penalisedGreedy = new GenerationOptions { MaxTokens = 6, IgnoreEndOfGeneration = true, Sampling = SamplingOptions.Greedy with { RepeatPenalty = 1.5f } };
        tally.Same("greedy with a penalty and banned end tokens (device top-1)", Tokens(gpu.Generate(penalisedGreedy)), Tokens(cpu.Generate(penalisedGreedy)));
        tally.Same("history after sampling", gpu.History.ToArray(), cpu.History.ToArray());
        tally.Logits("logits after sampling", gpu.Logits, cpu.Logits, vocab);
        return tally.Result($"{cpuTokens.Length} tokens top-k 40 (T 1.1, p 0.97, min-p 0.02, penalty 1.2, seed {seed + 5}), then 6 penalised greedy");
    }

    private static int[] Tokens(IEnumerable<GeneratedPiece> pieces) => pieces.Where(p => p.TokenId >= 0).Select(p => p.TokenId).ToArray();

    /// <summary>Worst logit difference (absolute and relative to the row's scale) and failures over a run.</summary>
    private sealed class Tally(string name)
    {
        private double _maxAbs, _maxScaled, _diff2, _ref2;
        private string _worst = "";
        private readonly List<string> _failures = [];

        public void Logits(string where, ReadOnlySpan<float> actual, ReadOnlySpan<float> expected, int vocab)
        {
            if (actual.Length != expected.Length || expected.IsEmpty)
            {
                Fail($"{where}: {actual.Length} logits on the GPU, {expected.Length} on the CPU");
                return;
            }
            for (int row = 0; row < expected.Length / vocab; row++)
            {
                var e = expected.Slice(row * vocab, vocab);
                var a = actual.Slice(row * vocab, vocab);
                double scale = 1;
                foreach (float x in e) scale = Math.Max(scale, Math.Abs(x));
                for (int i = 0; i < vocab; i++)
                {
                    double d = Math.Abs(a[i] - (double)e[i]);
                    if (!double.IsFinite(d)) { Fail($"{where}: position {row} token {i} is {a[i]} (CPU {e[i]})"); return; }
                    _diff2 += d * d;
                    _ref2 += (double)e[i] * e[i];
                    _maxAbs = Math.Max(_maxAbs, d);
                    if (d / scale > _maxScaled)
                    {
                        _maxScaled = d / scale;
                        _worst = $"{where}, position {row}, token {i}: GPU {a[i]:R}, CPU {e[i]:R} (row scale {scale:0.00})";
                    }
                }
            }
        }

        public void Same(string where, int[] actual, int[] expected)
        {
            if (!actual.AsSpan().SequenceEqual(expected))
                Fail($"{where}: GPU [{string.Join(",", actual)}], CPU [{string.Join(",", expected)}]");
        }

        public void Counted(string what, int actual, int expected)
        {
            if (actual != expected) Fail($"{what}: {actual} on the GPU, {expected} on the CPU");
        }

        public void Fail(string message) => _failures.Add(message);

        public GpuCheckResult Result(string what)
        {
            bool passed = _failures.Count == 0 && _maxScaled <= RelativeTolerance;
            string detail = $"{what}; max |Δ|/max(1,|logit|max) {_maxScaled:0.00e+00}";
            if (!passed) detail += $"; worst {_worst}" + (_failures.Count > 0 ? "; " + string.Join("; ", _failures) : "");
            return new GpuCheckResult(name, passed, _maxAbs, _ref2 > 0 ? Math.Sqrt(_diff2 / _ref2) : Math.Sqrt(_diff2),
                $"max|Δ logit| ≤ {RelativeTolerance:0e0}·max(1, max|logit|) vs the CPU session", detail);
        }
    }
}
