using System.Globalization;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Language;

namespace LlavaNative.Model.Formats.Conversion;

/// <summary>What <see cref="HuggingFaceToGguf.Convert"/> wrote.</summary>
public sealed record GgufConversionSummary(
    string OutputPath, string Architecture, string Layout, int TensorCount, IReadOnlyDictionary<TensorType, int> TensorTypes,
    int IgnoredTensors, GgufTokenizerMetadata.Summary Tokenizer);

/// <summary>
/// A Hugging Face text model folder (llama or qwen2, or the text_config of a llava one; any of the plain, old
/// llava-hf or new llava-hf tensor layouts) → a GGUF text model llama.cpp loads, as its convert_hf_to_gguf.py
/// writes one:
/// <list type="bullet">
/// <item>metadata: <c>general.*</c> (architecture, name, alignment, file_type, quantization_version) and the
/// <c>{arch}.*</c> hyper-parameters (context/embedding/feed-forward length, block count, head counts, head
/// dimension when it is not hidden/heads, RoPE base and rotated dimensions, RMS eps, vocab size), then the
/// tokenizer (<see cref="GgufTokenizerMetadata"/>);</item>
/// <item>tensors under llama.cpp's names with ggml dimensions (torch <c>[out, in]</c> → <c>ne [in, out]</c>, the
/// same row-major bytes); for <c>llama</c> the q/k rows are permuted from HF's rotate_half order to the
/// adjacent pairs llama.cpp's NORM RoPE rotates (<c>w.reshape(n_head, 2, d/2, in).swapaxes(1, 2)</c>); qwen2 is
/// NEOX and keeps its order (and its q/k/v biases); a tied LM head writes no <c>output.weight</c>;</item>
/// <item>tensor types per <see cref="GgufOutputType"/>.</item>
/// </list>
/// Tensors are converted row by row from the memory-mapped safetensors into the output stream: memory use is a
/// few rows, whatever the model size. The vision tower and projector of a llava folder are not part of this
/// file (llama.cpp keeps them in a separate mmproj GGUF).
/// </summary>
public static class HuggingFaceToGguf
{
    public static GgufConversionSummary Convert(string folder, string outputPath, GgufOutputType type, string? name = null)
    {
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: folder not found (a Hugging Face model is a folder with config.json, safetensors weights and a tokenizer)");
        CheckOutputWritable(outputPath);

        var hf = HfModelConfig.Load(folder);
        var text = hf.Text;
        string arch = text.ModelType;
        if (arch == "llama" && text.RotaryDims != text.HeadDim)
            throw new HuggingFaceConfigException(hf.Path, $"partial_rotary_factor {text.PartialRotaryFactor} is not supported for llama conversion (llama.cpp permutes whole heads for its NORM RoPE)");
        var config = DecoderConfig.FromHuggingFace(text);

        using ITensorCheckpoint checkpoint = HuggingFaceCheckpoint.Open(folder); // safetensors, else pytorch_model.bin
        var names = DecoderTensorNames.DetectHuggingFace(checkpoint);
        bool tied = hf.TieWordEmbeddings || !checkpoint.TryGetTensor(names.LmHead, out TensorView _);
        // Binding checks every shape and element type the way loading does, before anything is written.
        using (DecoderWeights.Bind(checkpoint, names, config, requireAttentionBias: text.AttentionBias, tieLmHead: tied)) { }

        var writer = new GgufWriter();
        writer.SetString("general.architecture", arch);
        writer.SetString("general.type", "model");
        writer.SetString("general.name", name ?? ModelName(folder));
        writer.SetUInt32(GgufWriter.AlignmentKey, GgufWriter.DefaultAlignment);
        writer.SetUInt32($"{arch}.vocab_size", (uint)config.VocabSize);
        writer.SetUInt32($"{arch}.context_length", (uint)text.MaxPositionEmbeddings);
        writer.SetUInt32($"{arch}.embedding_length", (uint)text.HiddenSize);
        writer.SetUInt32($"{arch}.feed_forward_length", (uint)text.IntermediateSize);
        writer.SetUInt32($"{arch}.block_count", (uint)text.NumHiddenLayers);
        writer.SetUInt32($"{arch}.attention.head_count", (uint)text.NumAttentionHeads);
        writer.SetUInt32($"{arch}.attention.head_count_kv", (uint)text.NumKeyValueHeads);
        if (text.HeadDim * text.NumAttentionHeads != text.HiddenSize)
        {
            writer.SetUInt32($"{arch}.attention.key_length", (uint)text.HeadDim);
            writer.SetUInt32($"{arch}.attention.value_length", (uint)text.HeadDim);
        }
        writer.SetFloat32($"{arch}.rope.freq_base", (float)text.RopeTheta);
        writer.SetUInt32($"{arch}.rope.dimension_count", (uint)text.RotaryDims);
        writer.SetFloat32($"{arch}.attention.layer_norm_rms_epsilon", (float)text.RmsNormEps);
        writer.SetUInt32("general.file_type", type.FileType);
        if (type.IsQuantized) writer.SetUInt32("general.quantization_version", 2);

        var tokenizer = GgufTokenizerMetadata.Add(writer, folder, arch, config.VocabSize,
            configBos: text.BosTokenId, configEos: text.EosTokenIds.Length > 0 ? text.EosTokenIds[0] : null);

        var counts = new Dictionary<TensorType, int>();
        var used = new HashSet<string>(StringComparer.Ordinal);
        void Add(string ggufName, string hfName, int permuteHeads = 0, bool isOutput = false, int layer = -1)
        {
            if (!checkpoint.TryGetTensor(hfName, out TensorView info))
                throw checkpoint.Error(hfName, $"required tensor '{hfName}' is missing");
            used.Add(hfName);
            long[] ne = info.Shape.Reverse().ToArray();
            TensorType target = type.TypeFor(ggufName, ne, isOutput, layer, text.NumHiddenLayers);
            counts[target] = counts.GetValueOrDefault(target) + 1;
            writer.AddTensor(ggufName, target, ne, stream => WriteRows(info, target, permuteHeads, text.HeadDim, stream));
        }

        Add("token_embd.weight", names.TokenEmbedding, isOutput: tied);
        for (int l = 0; l < text.NumHiddenLayers; l++)
        {
            string Hf(string tensor) => names.Layer(l, tensor);
            string blk = $"blk.{l.ToString(CultureInfo.InvariantCulture)}.";
            bool permute = arch == "llama";
            Add(blk + "attn_norm.weight", Hf(names.AttentionNorm), layer: l);
            Add(blk + "attn_q.weight", Hf(names.Query), permute ? text.NumAttentionHeads : 0, layer: l);
            Add(blk + "attn_k.weight", Hf(names.Key), permute ? text.NumKeyValueHeads : 0, layer: l);
            Add(blk + "attn_v.weight", Hf(names.Value), layer: l);
            if (text.AttentionBias)
            {
                Add(blk + "attn_q.bias", Hf(names.QueryBias), layer: l);
                Add(blk + "attn_k.bias", Hf(names.KeyBias), layer: l);
                Add(blk + "attn_v.bias", Hf(names.ValueBias), layer: l);
            }
            Add(blk + "attn_output.weight", Hf(names.Output), layer: l);
            Add(blk + "ffn_norm.weight", Hf(names.FeedForwardNorm), layer: l);
            Add(blk + "ffn_gate.weight", Hf(names.Gate), layer: l);
            Add(blk + "ffn_up.weight", Hf(names.Up), layer: l);
            Add(blk + "ffn_down.weight", Hf(names.Down), layer: l);
        }
        Add("output_norm.weight", names.OutputNorm);
        if (!tied) Add("output.weight", names.LmHead, isOutput: true);
        if (tied) used.Add(names.LmHead);

        writer.WriteTo(outputPath);
        int ignored = checkpoint.TensorNames.Count(n => !used.Contains(n));
        return new GgufConversionSummary(outputPath, arch, names.Layout, writer.TensorCount, counts, ignored, tokenizer);
    }

    /// <summary>
    /// Streams one tensor: each output row is the source row (for a permuted q/k matrix, the HF row that GGUF
    /// row came from) decoded to F32 and encoded as <paramref name="target"/>.
    /// </summary>
    private static unsafe void WriteRows(TensorView info, TensorType target, int permuteHeads, int headDim, Stream output)
    {
        var sourceType = info.Type!.Value; // F32, F16 or BF16: checked by the bind
        int cols = (int)info.Shape[^1];
        long rows = info.Shape.Length == 0 ? 1 : info.ElementCount / cols;
        long sourceRowBytes = TensorTypeInfo.RowBytes(sourceType, cols);
        var row = new float[cols];
        var encoded = new byte[TensorTypeInfo.RowBytes(target, cols)];
        var decode = QuantRegistry.ScalarKernels(sourceType).Dequantize;
        fixed (float* f = row)
        fixed (byte* e = encoded)
        {
            for (long r = 0; r < rows; r++)
            {
                long source = permuteHeads > 0 ? HfRowOfPermutedRow(r, headDim) : r;
                decode(info.Data + source * sourceRowBytes, f, cols);
                WeightQuantizer.QuantizeRow(target, f, e, cols);
                output.Write(encoded);
            }
        }
    }

    /// <summary>
    /// llama.cpp's q/k permutation: GGUF row <c>h·d + 2i + j</c> (head h, pair i, member j) holds HF row
    /// <c>h·d + j·d/2 + i</c>, so HF's rotate_half pairs (i, i + d/2) become adjacent pairs.
    /// </summary>
    public static long HfRowOfPermutedRow(long ggufRow, int headDim)
    {
        long h = ggufRow / headDim;
        int r = (int)(ggufRow % headDim);
        return h * headDim + (r % 2) * (headDim / 2) + r / 2;
    }

    /// <summary>general.name: the folder's name (llama.cpp's converter also derives it from the folder).</summary>
    private static string ModelName(string folder) =>
        Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(folder)));

    /// <summary>Fails before any work when the output cannot be created (missing folder, a folder in the way, no permission).</summary>
    private static void CheckOutputWritable(string outputPath)
    {
        string full = Path.GetFullPath(outputPath);
        if (Directory.Exists(full))
            throw new IOException($"{outputPath}: is a folder; give the path of the .gguf file to write");
        string? directory = Path.GetDirectoryName(full);
        if (directory is null || !Directory.Exists(directory))
            throw new DirectoryNotFoundException($"{outputPath}: cannot write the output: folder '{directory}' does not exist");
        string probe = Path.Combine(directory, $".{Path.GetFileName(full)}.{Environment.ProcessId}.probe");
        try
        {
            using (new FileStream(probe, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1, FileOptions.DeleteOnClose)) { }
        }
        catch (Exception e) when (e is UnauthorizedAccessException or IOException)
        {
            throw new IOException($"{outputPath}: cannot write the output in '{directory}': {e.Message}", e);
        }
    }
}
