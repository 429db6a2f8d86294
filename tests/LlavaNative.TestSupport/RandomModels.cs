using System.Collections.Concurrent;
using System.Diagnostics;
using System.Runtime.InteropServices;
using System.Text;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.TestSupport.LlamaCpp;

namespace LlavaNative.TestSupport;

/// <summary>
/// Writes seeded, deterministic random decoders as GGUF files that llama.cpp loads (llama and qwen2), with
/// weights scaled so that the model is a sensitive test subject: unit-RMS activations everywhere, sharp
/// attention (q/k scaled by <see cref="RandomModelSpec.QkScale"/>), and logits with std ≈
/// <see cref="RandomModelSpec.LogitStd"/>. Norm weights are 1 + N(0, 0.1²) so a missing norm weight shows.
/// <see cref="GetPath"/> builds each distinct spec once per test run in a per-process temp folder.
/// </summary>
public static class RandomModels
{
    private static readonly ConcurrentDictionary<RandomModelSpec, Lazy<string>> Cache = new();
    private static readonly ConcurrentDictionary<string, Lazy<KeyValuePair<string, GgufValue>[]>> RealVocabularies = new();
    private static readonly ConcurrentDictionary<(RandomModelSpec, LlamaFtype), Lazy<string>> QuantizedCache = new();
    private static readonly Lazy<string> CacheDirectory = new(CreateCacheDirectory);

    /// <summary>Tiny llama (dim 64, 2 layers, 4/2 heads, ffn 160) with the real LLaMA SentencePiece vocabulary.</summary>
    public static string TinyLlama => GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Llama));

    /// <summary>Tiny qwen2 (dim 64, 2 layers, 4/2 heads, ffn 160, tied output) with the real Qwen2 BPE vocabulary.</summary>
    public static string TinyQwen2 => GetPath(RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2));

    /// <summary>
    /// Path of a GGUF for <paramref name="spec"/>, written on first request (thread-safe; concurrent requests for
    /// the same spec wait for one writer). Files live in a temp folder removed when the process exits.
    /// </summary>
    public static string GetPath(RandomModelSpec spec)
    {
        spec.Validate();
        return Cache.GetOrAdd(spec, s => new Lazy<string>(() =>
        {
            string path = Path.Combine(CacheDirectory.Value, FileNameFor(s));
            Write(s, path);
            return path;
        })).Value;
    }

    /// <summary>
    /// Path of the model for <paramref name="spec"/> quantized by llama.cpp's llama_model_quantize to
    /// <paramref name="ftype"/> (its usual per-tensor type mix), built once per test run like <see cref="GetPath"/>.
    /// </summary>
    public static string GetQuantizedPath(RandomModelSpec spec, LlamaFtype ftype)
    {
        string source = GetPath(spec);
        return QuantizedCache.GetOrAdd((spec, ftype), key => new Lazy<string>(() =>
        {
            string path = Path.ChangeExtension(source, $".{key.Item2}.gguf");
            string partial = path + ".partial";
            LlamaCppModel.Quantize(source, partial, key.Item2);
            File.Move(partial, path, overwrite: true);
            return path;
        })).Value;
    }

    /// <summary>Writes the model described by <paramref name="spec"/> to <paramref name="path"/>.</summary>
    public static void Write(RandomModelSpec spec, string path)
    {
        spec.Validate();
        string arch = spec.ArchitectureName;
        var w = new GgufWriter();
        w.SetString("general.architecture", arch);
        w.SetString("general.name", $"random {arch} (seed {spec.Seed})");
        w.SetUInt32("general.file_type", spec.WeightType == TensorType.F16 ? 1u : 0u); // llama_ftype ALL_F32 / MOSTLY_F16
        w.SetUInt32($"{arch}.context_length", (uint)spec.ContextLength);
        w.SetUInt32($"{arch}.embedding_length", (uint)spec.EmbeddingLength);
        w.SetUInt32($"{arch}.block_count", (uint)spec.BlockCount);
        w.SetUInt32($"{arch}.feed_forward_length", (uint)spec.FeedForwardLength);
        w.SetUInt32($"{arch}.attention.head_count", (uint)spec.HeadCount);
        w.SetUInt32($"{arch}.attention.head_count_kv", (uint)spec.KvHeadCount);
        w.SetFloat32($"{arch}.attention.layer_norm_rms_epsilon", spec.RmsEpsilon);
        w.SetFloat32($"{arch}.rope.freq_base", spec.RopeFreqBase);
        w.SetUInt32($"{arch}.rope.dimension_count", (uint)spec.HeadDim);

        int vocabSize = AddVocabulary(w, spec);

        int d = spec.EmbeddingLength, hd = spec.HeadDim, f = spec.FeedForwardLength;
        int qOut = spec.HeadCount * hd, kvOut = spec.KvHeadCount * hd;
        float unit = 1f / MathF.Sqrt(d);             // a [d -> *] projection of a unit-RMS input gives unit-std outputs
        float logit = spec.LogitStd / MathF.Sqrt(d); // the LM head maps the unit-RMS final hidden state to logits of std LogitStd

        // Shapes are ggml ne: ne[0] is the input (contiguous) dimension of a Linear, ne[1] its outputs.
        // Untied embeddings have unit std; tied ones are the LM head and so carry its scale.
        AddWeight(w, spec, "token_embd.weight", [d, vocabSize], Normal(spec.TiedOutput ? logit : 1f));
        for (int i = 0; i < spec.BlockCount; i++)
        {
            string b = $"blk.{i}.";
            AddWeight(w, spec, b + "attn_norm.weight", [d], NormWeight);
            AddWeight(w, spec, b + "attn_q.weight", [d, qOut], Normal(spec.QkScale * unit));
            AddWeight(w, spec, b + "attn_k.weight", [d, kvOut], Normal(spec.QkScale * unit));
            AddWeight(w, spec, b + "attn_v.weight", [d, kvOut], Normal(unit));
            if (spec.AttentionBias)
            {
                AddWeight(w, spec, b + "attn_q.bias", [qOut], Normal(0.5f));
                AddWeight(w, spec, b + "attn_k.bias", [kvOut], Normal(0.5f));
                AddWeight(w, spec, b + "attn_v.bias", [kvOut], Normal(0.5f));
            }
            AddWeight(w, spec, b + "attn_output.weight", [qOut, d], Normal(1f / MathF.Sqrt(qOut)));
            AddWeight(w, spec, b + "ffn_norm.weight", [d], NormWeight);
            AddWeight(w, spec, b + "ffn_gate.weight", [d, f], Normal(unit));
            AddWeight(w, spec, b + "ffn_up.weight", [d, f], Normal(unit));
            AddWeight(w, spec, b + "ffn_down.weight", [f, d], Normal(1f / MathF.Sqrt(f)));
        }
        AddWeight(w, spec, "output_norm.weight", [d], NormWeight);
        if (!spec.TiedOutput)
            AddWeight(w, spec, "output.weight", [d, vocabSize], Normal(logit));

        Directory.CreateDirectory(Path.GetDirectoryName(Path.GetFullPath(path))!);
        w.WriteTo(path);
    }

    /// <summary>Number of tokens the model for <paramref name="spec"/> has (= rows of token_embd and of the logits).</summary>
    public static int VocabularySize(RandomModelSpec spec) => spec.Vocabulary == RandomModelVocabulary.Real
        ? ((GgufArray)RealVocabulary(spec.VocabularyFileName).Single(kv => kv.Key == "tokenizer.ggml.tokens").Value.Value).Length
        : spec.SyntheticVocabularySize;

    // ---- weights ---------------------------------------------------------------------------------------------

    private delegate float Sampler(ref Rng rng);

    private static Sampler Normal(float std) => (ref Rng rng) => std * rng.NextGaussian();

    private static float NormWeight(ref Rng rng) => 1f + 0.1f * rng.NextGaussian();

    /// <summary>
    /// Adds a tensor generated while the file is written, in row-major order from an RNG seeded by (seed, name),
    /// so a tensor's values do not depend on which other tensors the file has.
    /// </summary>
    private static void AddWeight(GgufWriter w, RandomModelSpec spec, string name, long[] ne, Sampler sample)
    {
        TensorType type = ne.Length >= 2 ? spec.WeightType : TensorType.F32;
        long count = ne.Aggregate(1L, (a, b) => a * b);
        ulong seed = spec.Seed ^ Fnv1a(name);
        w.AddTensor(name, type, ne, stream =>
        {
            var rng = new Rng(seed);
            const int chunk = 1 << 16;
            var values = new float[chunk];
            var halves = type == TensorType.F16 ? new Half[chunk] : null;
            for (long done = 0; done < count; done += chunk)
            {
                int n = (int)Math.Min(chunk, count - done);
                for (int i = 0; i < n; i++)
                    values[i] = sample(ref rng);
                if (halves is null)
                    stream.Write(MemoryMarshal.AsBytes(values.AsSpan(0, n)));
                else
                {
                    for (int i = 0; i < n; i++)
                        halves[i] = (Half)values[i]; // round to nearest even, as ggml's fp32 -> fp16
                    stream.Write(MemoryMarshal.AsBytes(halves.AsSpan(0, n)));
                }
            }
        });
    }

    private static ulong Fnv1a(string s)
    {
        ulong h = 14695981039346656037UL;
        foreach (byte b in Encoding.UTF8.GetBytes(s))
            h = (h ^ b) * 1099511628211UL;
        return h;
    }

    /// <summary>SplitMix64 with Box–Muller: tiny, fast and identical on every platform and .NET version.</summary>
    private struct Rng(ulong seed)
    {
        private ulong _state = seed;
        private float _spare;
        private bool _hasSpare;

        private ulong NextUInt64()
        {
            ulong z = _state += 0x9E3779B97F4A7C15UL;
            z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9UL;
            z = (z ^ (z >> 27)) * 0x94D049BB133111EBUL;
            return z ^ (z >> 31);
        }

        /// <summary>Uniform in (0, 1].</summary>
        private double NextUnit() => ((NextUInt64() >> 11) + 1) * (1.0 / (1UL << 53));

        public float NextGaussian()
        {
            if (_hasSpare)
            {
                _hasSpare = false;
                return _spare;
            }
            double r = Math.Sqrt(-2.0 * Math.Log(NextUnit()));
            double theta = 2.0 * Math.PI * NextUnit();
            _spare = (float)(r * Math.Sin(theta));
            _hasSpare = true;
            return (float)(r * Math.Cos(theta));
        }
    }

    // ---- vocabularies ----------------------------------------------------------------------------------------

    private static int AddVocabulary(GgufWriter w, RandomModelSpec spec)
    {
        if (spec.Vocabulary == RandomModelVocabulary.Real)
        {
            foreach (var (key, value) in RealVocabulary(spec.VocabularyFileName))
                w.Set(key, value);
            return VocabularySize(spec);
        }
        AddSyntheticVocabulary(w, spec.SyntheticVocabularySize);
        return spec.SyntheticVocabularySize;
    }

    /// <summary>The <c>tokenizer.*</c> metadata of models/ggml-vocab-NAME.gguf, read once per process.</summary>
    private static KeyValuePair<string, GgufValue>[] RealVocabulary(string name) =>
        RealVocabularies.GetOrAdd(name, n => new Lazy<KeyValuePair<string, GgufValue>[]>(() =>
        {
            using GgufFile vocab = GgufFile.Open(ReferencePaths.Vocabulary(n));
            var keys = vocab.Metadata.Where(kv => kv.Key.StartsWith("tokenizer.", StringComparison.Ordinal)).ToArray();
            if (!keys.Any(kv => kv.Key == "tokenizer.ggml.tokens"))
                throw new InvalidOperationException($"{vocab.Path} has no tokenizer.ggml.tokens");
            return keys;
        })).Value;

    /// <summary>
    /// SentencePiece-style vocabulary: 0 &lt;unk&gt;, 1 &lt;s&gt;, 2 &lt;/s&gt;, 3..258 byte tokens, then "▁", the printable
    /// ASCII characters, "▁" + letters and lowercase bigrams, with scores falling in that order (earlier pieces
    /// merge first).
    /// </summary>
    private static void AddSyntheticVocabulary(GgufWriter w, int size)
    {
        var tokens = new List<string> { "<unk>", "<s>", "</s>" };
        var types = new List<int> { 2, 3, 3 }; // llama_token_type: unknown, control, control
        for (int b = 0; b < 256; b++)
        {
            tokens.Add($"<0x{b:X2}>");
            types.Add(6); // byte
        }
        var pieces = new List<string> { "\u2581" };
        for (char c = '!'; c <= '~'; c++)
            pieces.Add(c.ToString());
        for (char c = 'a'; c <= 'z'; c++)
            pieces.Add("\u2581" + c);
        for (char c = 'A'; c <= 'Z'; c++)
            pieces.Add("\u2581" + c);
        for (char a = 'a'; a <= 'z'; a++)
            for (char b = 'a'; b <= 'z'; b++)
                pieces.Add($"{a}{b}");
        foreach (string p in pieces)
        {
            if (tokens.Count == size)
                break;
            tokens.Add(p);
            types.Add(1); // normal
        }
        if (tokens.Count != size)
            throw new ArgumentException($"the synthetic vocabulary can have at most {tokens.Count} tokens");
        var scores = new float[size];
        for (int i = 259; i < size; i++)
            scores[i] = -(i - 259);

        w.SetString("tokenizer.ggml.model", "llama");
        w.SetArray("tokenizer.ggml.tokens", tokens.ToArray());
        w.SetArray("tokenizer.ggml.scores", scores);
        w.SetArray("tokenizer.ggml.token_type", types.ToArray());
        w.SetUInt32("tokenizer.ggml.unknown_token_id", 0);
        w.SetUInt32("tokenizer.ggml.bos_token_id", 1);
        w.SetUInt32("tokenizer.ggml.eos_token_id", 2);
        w.SetBool("tokenizer.ggml.add_bos_token", true);
        w.SetBool("tokenizer.ggml.add_eos_token", false);
    }

    // ---- cache folder ----------------------------------------------------------------------------------------

    private static string FileNameFor(RandomModelSpec spec)
    {
        string id = Fnv1a(spec.ToString()).ToString("x16");
        return $"{spec.ArchitectureName}-d{spec.EmbeddingLength}-l{spec.BlockCount}-{spec.Vocabulary.ToString().ToLowerInvariant()}-{spec.WeightType}-{id}.gguf";
    }

    private const string CachePrefix = "llavanative-models-";

    private static string CreateCacheDirectory()
    {
        string temp = Path.GetTempPath();
        // Folders left behind by test runs that were killed: their process no longer exists.
        foreach (string dir in Directory.EnumerateDirectories(temp, CachePrefix + "*"))
        {
            if (int.TryParse(Path.GetFileName(dir).AsSpan(CachePrefix.Length), out int pid) && !IsRunning(pid))
            {
                try { Directory.Delete(dir, recursive: true); }
                catch (IOException) { }
                catch (UnauthorizedAccessException) { }
            }
        }
        string path = Path.Combine(temp, CachePrefix + Environment.ProcessId);
        Directory.CreateDirectory(path);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(path, recursive: true); }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        };
        return path;
    }

    private static bool IsRunning(int pid)
    {
        try
        {
            using var p = Process.GetProcessById(pid);
            return !p.HasExited;
        }
        catch (ArgumentException)
        {
            return false;
        }
        catch (InvalidOperationException)
        {
            return false;
        }
    }
}
