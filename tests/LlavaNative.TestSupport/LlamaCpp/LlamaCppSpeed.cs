using System.Diagnostics;

namespace LlavaNative.TestSupport.LlamaCpp;

/// <summary>Medians and individual runs of one <see cref="LlamaCppSpeed.Measure"/> (tokens per second).</summary>
public sealed record LlamaCppSpeedResult(
    double? PromptTokensPerSecond, double[] PromptRuns,
    double? GenerationTokensPerSecond, double[] GenerationRuns,
    string FlashAttention, int Threads);

/// <summary>
/// llama.cpp speed measured through the P/Invoke binding the way tools/llama-bench does it, with llama.cpp's
/// default settings for speed — unlike <see cref="LlamaCppModel"/>, which is set up for numerical comparisons
/// (1 thread, F32 KV cache, flash attention off, no weight repacking):
/// model loaded with llama_model_default_params (weight repacking into interleaved layouts ON);
/// context from llama_context_default_params (KV cache F16, flash attention AUTO as llama-bench's default,
/// n_batch 2048 / n_ubatch 512) with the given thread count; pp = clear memory, one llama_decode of P random
/// tokens (output of the last one only, as llama_batch_get_one); tg = clear memory, N single-token decodes,
/// each followed by llama_synchronize; one warm-up of each (the tg warm-up is one token, as llama-bench), then
/// the median of <c>reps</c> runs.
/// </summary>
public static unsafe class LlamaCppSpeed
{
    public static LlamaCppSpeedResult Measure(string path, int threads, int nPrompt, int nGen, int reps, int seed = 1234)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(threads, 1);
        ArgumentOutOfRangeException.ThrowIfLessThan(reps, 1);
        if (nPrompt < 0 || nGen < 0 || nPrompt + nGen == 0)
            throw new ArgumentException("nothing to measure: nPrompt and nGen are both 0");
        if (nPrompt > 2048)
            throw new ArgumentException("nPrompt above n_batch 2048 would need several decodes");
        if (!File.Exists(path))
            throw new FileNotFoundException($"model file {path} does not exist", path);

        LlamaNative.EnsureInitialized();
        LlamaModelParams mp = LlamaNative.llama_model_default_params(); // use_extra_bufts = 1 (checked at start-up)
        byte[] name = LlamaNative.Utf8Z(path);
        nint model;
        fixed (byte* n = name)
            model = LlamaNative.llama_model_load_from_file(n, mp);
        if (model == 0)
            throw new InvalidOperationException($"llama.cpp could not load {path}{LlamaNative.RecentLog()}");
        nint ctx = 0;
        try
        {
            LlamaContextParams cp = LlamaNative.llama_context_default_params(); // KV F16, flash attention AUTO
            cp.NCtx = (uint)(nPrompt + nGen);
            cp.NThreads = threads;
            cp.NThreadsBatch = threads;
            ctx = LlamaNative.llama_init_from_model(model, cp);
            if (ctx == 0)
                throw new InvalidOperationException($"llama_init_from_model failed for {path}{LlamaNative.RecentLog()}");
            nint memory = LlamaNative.llama_get_memory(ctx);
            int vocabSize = LlamaNative.llama_vocab_n_tokens(LlamaNative.llama_model_get_vocab(model));
            var random = new Random(seed);
            var tokens = new int[Math.Max(nPrompt, 1)];

            void Decode(int count)
            {
                int rc;
                fixed (int* t = tokens)
                    rc = LlamaNative.llama_decode(ctx, new LlamaBatch { NTokens = count, Token = t });
                if (rc != 0)
                    throw new InvalidOperationException($"llama_decode returned {rc} for {count} tokens{LlamaNative.RecentLog()}");
            }
            double Prompt()
            {
                LlamaNative.llama_memory_clear(memory, 0);
                for (int i = 0; i < nPrompt; i++)
                    tokens[i] = random.Next(vocabSize);
                var sw = Stopwatch.StartNew();
                Decode(nPrompt);
                LlamaNative.llama_synchronize(ctx);
                return nPrompt / sw.Elapsed.TotalSeconds;
            }
            double Generate(int count)
            {
                LlamaNative.llama_memory_clear(memory, 0);
                tokens[0] = random.Next(vocabSize);
                var sw = Stopwatch.StartNew();
                for (int i = 0; i < count; i++)
                {
                    Decode(1);
                    LlamaNative.llama_synchronize(ctx);
                    tokens[0] = random.Next(vocabSize);
                }
                return count / sw.Elapsed.TotalSeconds;
            }

            double[] ppRuns = [], tgRuns = [];
            if (nPrompt > 0)
            {
                Prompt();
                ppRuns = Enumerable.Range(0, reps).Select(_ => Prompt()).ToArray();
            }
            if (nGen > 0)
            {
                Generate(1);
                tgRuns = Enumerable.Range(0, reps).Select(_ => Generate(nGen)).ToArray();
            }
            return new LlamaCppSpeedResult(
                nPrompt > 0 ? Median(ppRuns) : null, ppRuns,
                nGen > 0 ? Median(tgRuns) : null, tgRuns,
                FlashAttention: cp.FlashAttnType == LlamaNative.FlashAttnAuto ? "auto" : cp.FlashAttnType.ToString(),
                Threads: threads);
        }
        finally
        {
            if (ctx != 0)
                LlamaNative.llama_free(ctx);
            LlamaNative.llama_model_free(model);
        }
    }

    public static double Median(double[] values)
    {
        double[] sorted = values.Order().ToArray();
        int h = sorted.Length / 2;
        return sorted.Length % 2 == 1 ? sorted[h] : (sorted[h - 1] + sorted[h]) / 2;
    }
}
