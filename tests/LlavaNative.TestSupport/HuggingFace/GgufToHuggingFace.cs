using System.Text.Json;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.Safetensors;

namespace LlavaNative.TestSupport.HuggingFace;

/// <summary>Where the decoder's tensors go in the written checkpoint.</summary>
public enum HfCheckpointLayout
{
    /// <summary>LlamaForCausalLM / Qwen2ForCausalLM: <c>model.*</c>, <c>lm_head.weight</c>; config.json of the decoder.</summary>
    CausalLM,

    /// <summary>llava-hf written by transformers &lt; 4.52: <c>language_model.model.*</c>, <c>language_model.lm_head.weight</c>.</summary>
    LlavaOld,

    /// <summary>llava-hf written by transformers ≥ 4.52: <c>model.language_model.*</c>, <c>lm_head.weight</c>.</summary>
    LlavaNew,
}

/// <summary>How <see cref="GgufToHuggingFace.Export"/> writes a folder.</summary>
public sealed record HfExportOptions
{
    public HfCheckpointLayout Layout { get; init; } = HfCheckpointLayout.CausalLM;

    /// <summary>1: one model.safetensors; more: that many shards and model.safetensors.index.json.</summary>
    public int Shards { get; init; } = 1;

    /// <summary>
    /// False: every tensor keeps its GGUF encoding bit for bit (F32, F16 or BF16). True: every tensor is
    /// written as F32 holding exactly the values the GGUF encodes (an "exact math" twin of a half-precision model).
    /// </summary>
    public bool ExpandToF32 { get; init; }
}

/// <summary>
/// Test-side converter from a GGUF decoder (llama or qwen2; F32, F16 or BF16) to a Hugging Face folder — the
/// inverse of llama.cpp's convert_hf_to_gguf.py — so the HF loader can be checked against the GGUF path and
/// llama.cpp on the same weights. What the conversion has to undo:
/// <list type="bullet">
/// <item>dimension order: GGUF <c>ne [in, out]</c> is torch <c>[out, in]</c> with the same row-major bytes, so
/// only the shape is reversed, no data is transposed;</item>
/// <item>llama q/k rows: the converter permuted them so llama.cpp's adjacent-pair RoPE matches HF rotate_half
/// (<c>w.reshape(n_head, 2, d/2, in).swapaxes(1, 2)</c>); the GGUF row <c>h·d + 2i + j</c> is HF row
/// <c>h·d + j·d/2 + i</c>. qwen2 GGUFs are not permuted.</item>
/// </list>
/// config.json gets the decoder's hyper-parameters from the GGUF metadata (wrapped in a llava config with a
/// small CLIP vision_config for the llava layouts, which also get small vision/projector tensors the decoder
/// loader must ignore).
/// </summary>
public static class GgufToHuggingFace
{
    public static void Export(string ggufPath, string folder, HfExportOptions? options = null)
    {
        options ??= new HfExportOptions();
        Directory.CreateDirectory(folder);
        using var gguf = GgufFile.Open(ggufPath);
        string arch = gguf.GetString("general.architecture");
        if (arch is not ("llama" or "qwen2")) throw new ArgumentException($"{ggufPath}: architecture {arch} is not llama or qwen2");

        int heads = gguf.GetInt32($"{arch}.attention.head_count");
        int kvHeads = gguf.GetInt32($"{arch}.attention.head_count_kv", heads);
        int dim = gguf.GetInt32($"{arch}.embedding_length");
        int headDim = dim / heads;
        var embedding = gguf.GetTensor("token_embd.weight");
        bool tied = !gguf.HasTensor("output.weight");

        string modelPrefix = options.Layout switch
        {
            HfCheckpointLayout.CausalLM => "model.",
            HfCheckpointLayout.LlavaOld => "language_model.model.",
            _ => "model.language_model.",
        };
        string lmHead = options.Layout == HfCheckpointLayout.LlavaOld ? "language_model.lm_head.weight" : "lm_head.weight";

        var writer = new SafetensorsWriter();
        writer.SetMetadata("format", "pt");
        foreach (var t in gguf.Tensors)
        {
            string name = HfName(t.Name, modelPrefix, lmHead);
            int? permuteHeads = arch == "llama" && t.Name.EndsWith(".attn_q.weight", StringComparison.Ordinal) ? heads
                : arch == "llama" && t.Name.EndsWith(".attn_k.weight", StringComparison.Ordinal) ? kvHeads
                : null;
            AddTensor(writer, t, name, permuteHeads, headDim, options.ExpandToF32);
        }
        if (options.Layout != HfCheckpointLayout.CausalLM)
            AddVisionTensors(writer, options.Layout, dim);

        if (options.Shards <= 1)
            writer.WriteTo(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName));
        else
            writer.WriteSharded(folder, options.Shards);

        File.WriteAllText(Path.Combine(folder, "config.json"), ConfigJson(gguf, arch, (int)embedding.Dimensions[1], tied, options.Layout));
    }

    /// <summary>
    /// The decoder of <paramref name="ggufPath"/> as Hugging Face tensors in F32 (dequantized, llama q/k rows
    /// un-permuted) under <paramref name="modelPrefix"/> and <paramref name="lmHead"/>, for writers that add other
    /// tensors beside it (a whole LLaVA folder). <paramref name="vocabularyRows"/> above the GGUF's rows pads the
    /// embedding (and an untied LM head) with random rows, as llava-1.5-hf's 32064-row table is padded.
    /// </summary>
    public static unsafe List<(string Name, long[] Shape, float[] Data)> DecoderTensors(string ggufPath, string modelPrefix, string lmHead, int vocabularyRows = 0)
    {
        using var gguf = GgufFile.Open(ggufPath);
        string arch = gguf.GetString("general.architecture");
        int heads = gguf.GetInt32($"{arch}.attention.head_count");
        int kvHeads = gguf.GetInt32($"{arch}.attention.head_count_kv", heads);
        int headDim = gguf.GetInt32($"{arch}.embedding_length") / heads;
        var rng = new Random(17);
        var result = new List<(string, long[], float[])>();
        foreach (var t in gguf.Tensors)
        {
            int? permuteHeads = arch == "llama" && t.Name.EndsWith(".attn_q.weight", StringComparison.Ordinal) ? heads
                : arch == "llama" && t.Name.EndsWith(".attn_k.weight", StringComparison.Ordinal) ? kvHeads
                : null;
            long cols = t.Dimensions[0], rows = t.ElementCount / cols;
            bool padded = t.Name is "token_embd.weight" or "output.weight" && vocabularyRows > rows;
            long outRows = padded ? vocabularyRows : rows;
            var data = new float[checked(outRows * cols)];
            long rowBytes = TensorTypeInfo.RowBytes(t.Type, cols);
            fixed (float* dst = data)
                for (long r = 0; r < rows; r++)
                {
                    long target = permuteHeads is null ? r : UnpermutedRow((int)r, headDim);
                    QuantRegistry.ScalarKernels(t.Type).Dequantize(t.Data + r * rowBytes, dst + target * cols, (int)cols);
                }
            for (long i = rows * cols; i < data.Length; i++) data[i] = (float)(rng.NextDouble() - 0.5) * 0.1f;
            long[] shape = t.Dimensions.Reverse().ToArray();
            if (padded) shape[0] = outRows; // [vocab, dim]
            result.Add((HfName(t.Name, modelPrefix, lmHead), shape, data));
        }
        return result;
    }

    /// <summary>
    /// The decoder's config.json fields (LlamaConfig / Qwen2Config names) from the GGUF metadata, with
    /// <paramref name="vocabularyRows"/> as vocab_size when given (else the embedding's rows).
    /// </summary>
    public static Dictionary<string, object?> TextConfig(string ggufPath, int vocabularyRows = 0)
    {
        using var gguf = GgufFile.Open(ggufPath);
        string arch = gguf.GetString("general.architecture");
        int rows = (int)gguf.GetTensor("token_embd.weight").Dimensions[1];
        return TextConfigFields(gguf, arch, Math.Max(rows, vocabularyRows), tied: !gguf.HasTensor("output.weight"));
    }

    private static Dictionary<string, object?> TextConfigFields(GgufFile gguf, string arch, int vocab, bool tied) => new()
    {
        ["model_type"] = arch,
        ["architectures"] = new[] { arch == "llama" ? "LlamaForCausalLM" : "Qwen2ForCausalLM" },
        ["vocab_size"] = vocab,
        ["hidden_size"] = gguf.GetInt32($"{arch}.embedding_length"),
        ["intermediate_size"] = gguf.GetInt32($"{arch}.feed_forward_length"),
        ["num_hidden_layers"] = gguf.GetInt32($"{arch}.block_count"),
        ["num_attention_heads"] = gguf.GetInt32($"{arch}.attention.head_count"),
        ["num_key_value_heads"] = gguf.GetInt32($"{arch}.attention.head_count_kv"),
        ["max_position_embeddings"] = gguf.GetInt32($"{arch}.context_length"),
        // float → double through the shortest decimal string: 1e-5f is written "1E-05", as Python would read it.
        ["rms_norm_eps"] = double.Parse(gguf.GetFloat32($"{arch}.attention.layer_norm_rms_epsilon").ToString("R", System.Globalization.CultureInfo.InvariantCulture), System.Globalization.CultureInfo.InvariantCulture),
        ["rope_theta"] = (double)gguf.GetFloat32($"{arch}.rope.freq_base"),
        ["hidden_act"] = "silu",
        ["tie_word_embeddings"] = tied,
        ["torch_dtype"] = "float32",
    };

    /// <summary>GGUF tensor name → Hugging Face name.</summary>
    public static string HfName(string gguf, string modelPrefix, string lmHead)
    {
        switch (gguf)
        {
            case "token_embd.weight": return modelPrefix + "embed_tokens.weight";
            case "output_norm.weight": return modelPrefix + "norm.weight";
            case "output.weight": return lmHead;
        }
        var parts = gguf.Split('.', 3); // blk, N, rest
        if (parts.Length != 3 || parts[0] != "blk") throw new ArgumentException($"unexpected GGUF tensor '{gguf}'");
        string module = parts[2] switch
        {
            "attn_norm.weight" => "input_layernorm.weight",
            "ffn_norm.weight" => "post_attention_layernorm.weight",
            "attn_q.weight" => "self_attn.q_proj.weight",
            "attn_k.weight" => "self_attn.k_proj.weight",
            "attn_v.weight" => "self_attn.v_proj.weight",
            "attn_q.bias" => "self_attn.q_proj.bias",
            "attn_k.bias" => "self_attn.k_proj.bias",
            "attn_v.bias" => "self_attn.v_proj.bias",
            "attn_output.weight" => "self_attn.o_proj.weight",
            "ffn_gate.weight" => "mlp.gate_proj.weight",
            "ffn_up.weight" => "mlp.up_proj.weight",
            "ffn_down.weight" => "mlp.down_proj.weight",
            _ => throw new ArgumentException($"unexpected GGUF tensor '{gguf}'"),
        };
        return $"{modelPrefix}layers.{parts[1]}.{module}";
    }

    /// <summary>
    /// Row index in the HF matrix of GGUF row <paramref name="ggufRow"/> of a permuted q/k weight with heads of
    /// <paramref name="headDim"/> rows: GGUF (h, i, j) [i &lt; d/2, j &lt; 2] came from HF (h, j, i).
    /// </summary>
    public static int UnpermutedRow(int ggufRow, int headDim)
    {
        int h = ggufRow / headDim, r = ggufRow % headDim;
        int i = r / 2, j = r % 2;
        return h * headDim + j * (headDim / 2) + i;
    }

    private static unsafe void AddTensor(SafetensorsWriter writer, GgufTensorInfo t, string name, int? permuteHeads, int headDim, bool expandToF32)
    {
        if (t.Type is not (TensorType.F32 or TensorType.F16 or TensorType.BF16))
            throw new ArgumentException($"tensor '{t.Name}' is {t.Type}; safetensors holds F32, F16 or BF16 only");
        long[] shape = t.Dimensions.Reverse().ToArray(); // ggml ne → torch order; same bytes
        long rowElements = t.Dimensions[0];
        long rows = t.ElementCount / rowElements;
        var dtype = expandToF32 ? SafetensorsDType.F32 : SafetensorsDTypes.FromTensorType(t.Type);
        long srcRowBytes = TensorTypeInfo.RowBytes(t.Type, rowElements);
        long dstRowBytes = rowElements * SafetensorsDTypes.ElementBytes(dtype);
        var bytes = new byte[checked(rows * dstRowBytes)];
        if (permuteHeads is { } n && rows != (long)n * headDim)
            throw new ArgumentException($"tensor '{t.Name}' has {rows} rows, expected {n} heads × {headDim}");
        fixed (byte* dst = bytes)
        {
            for (long r = 0; r < rows; r++)
            {
                long target = permuteHeads is null ? r : UnpermutedRow((int)r, headDim);
                byte* src = t.Data + r * srcRowBytes;
                byte* to = dst + target * dstRowBytes;
                if (expandToF32)
                    QuantRegistry.ScalarKernels(t.Type).Dequantize(src, (float*)to, (int)rowElements);
                else
                    Buffer.MemoryCopy(src, to, dstRowBytes, srcRowBytes);
            }
        }
        writer.AddTensor(name, dtype, shape, bytes);
    }

    /// <summary>A few small CLIP/projector tensors, so a llava checkpoint is not just a renamed decoder.</summary>
    private static void AddVisionTensors(SafetensorsWriter writer, HfCheckpointLayout layout, int textDim)
    {
        string tower = layout == HfCheckpointLayout.LlavaOld ? "vision_tower." : "model.vision_tower.";
        string projector = layout == HfCheckpointLayout.LlavaOld ? "multi_modal_projector." : "model.multi_modal_projector.";
        var rng = new Random(5);
        float[] Values(int n) => Enumerable.Range(0, n).Select(_ => (float)(rng.NextDouble() - 0.5)).ToArray();
        writer.AddTensor(tower + "vision_model.embeddings.class_embedding", [VisionHidden], Values(VisionHidden));
        writer.AddTensor(tower + "vision_model.post_layernorm.weight", [VisionHidden], Values(VisionHidden));
        writer.AddTensor(projector + "linear_1.weight", [textDim, VisionHidden], Values(textDim * VisionHidden));
        writer.AddTensor(projector + "linear_1.bias", [textDim], Values(textDim));
    }

    private const int VisionHidden = 32;

    private static string ConfigJson(GgufFile gguf, string arch, int vocab, bool tied, HfCheckpointLayout layout)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            void WriteText(bool nested)
            {
                foreach (var (key, value) in TextConfigFields(gguf, arch, vocab, tied))
                {
                    json.WritePropertyName(key);
                    JsonSerializer.Serialize(json, value);
                }
                if (!nested) json.WriteString("transformers_version", "4.46.0");
            }

            json.WriteStartObject();
            if (layout == HfCheckpointLayout.CausalLM)
                WriteText(nested: false);
            else
            {
                json.WriteString("model_type", "llava");
                json.WriteStartArray("architectures");
                json.WriteStringValue("LlavaForConditionalGeneration");
                json.WriteEndArray();
                json.WriteNumber("image_token_index", vocab - 1);
                json.WriteString("projector_hidden_act", "gelu");
                json.WriteString("vision_feature_select_strategy", "default");
                json.WriteNumber("vision_feature_layer", -2);
                json.WriteStartObject("text_config");
                WriteText(nested: true);
                json.WriteEndObject();
                json.WriteStartObject("vision_config");
                json.WriteString("model_type", "clip_vision_model");
                json.WriteNumber("hidden_size", VisionHidden);
                json.WriteNumber("intermediate_size", 64);
                json.WriteNumber("num_hidden_layers", 2);
                json.WriteNumber("num_attention_heads", 2);
                json.WriteNumber("image_size", 28);
                json.WriteNumber("patch_size", 14);
                json.WriteEndObject();
                json.WriteString("transformers_version", layout == HfCheckpointLayout.LlavaOld ? "4.46.0" : "4.52.0");
            }
            json.WriteEndObject();
        }
        return System.Text.Encoding.UTF8.GetString(buffer.ToArray());
    }
}
