using System.Runtime.InteropServices;
using System.Text.Json;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;

namespace LlavaNative.TestSupport.Vision;

/// <summary>How a random tower is laid out in its mmproj GGUF.</summary>
public enum MmprojLayout
{
    /// <summary>
    /// As llama.cpp's legacy <c>convert_image_encoder_to_gguf.py</c> writes LLaVA-1.5 (HF feature layer −2, no
    /// <c>clip.vision.feature_layer</c> key): the last block is dropped and <c>block_count</c> = layers − 1; fc1 is named
    /// <c>ffn_down</c> and fc2 <c>ffn_up</c>; <c>clip.has_llava_projector</c> = true.
    /// </summary>
    Legacy,

    /// <summary>Every block kept, <c>block_count</c> = layers, <c>clip.vision.feature_layer</c> = [selected hidden state], fc1 = <c>ffn_up</c>.</summary>
    ExplicitFeatureLayer,

    /// <summary>SigLIP with every block and no feature-layer key (HF −1 = the last hidden state), fc1 = <c>ffn_up</c>.</summary>
    AllBlocks,
}

/// <summary>Shape and numerics of a random LLaVA vision tower + projector (HF vision_config + LLaVA fields).</summary>
public sealed record RandomVisionSpec
{
    public required VisionTowerKind Kind { get; init; }
    public int ImageSize { get; init; } = 56;
    public int PatchSize { get; init; } = 14;
    public int HiddenSize { get; init; } = 64;
    public int Heads { get; init; } = 4;
    public int FeedForward { get; init; } = 128;
    /// <summary>HF <c>num_hidden_layers</c> of the full tower.</summary>
    public int Layers { get; init; } = 3;
    /// <summary>HF <c>vision_feature_layer</c> (negative from the end).</summary>
    public int VisionFeatureLayer { get; init; } = -2;
    /// <summary>HF <c>vision_feature_select_strategy</c>: "default" (drop row 0) or "full".</summary>
    public string SelectStrategy { get; init; } = "default";
    /// <summary>HF <c>hidden_act</c>: "quick_gelu", "gelu" or "gelu_pytorch_tanh".</summary>
    public string HiddenAct { get; init; } = "quick_gelu";
    public float LayerNormEps { get; init; } = 1e-5f;
    public ProjectorKind Projector { get; init; } = ProjectorKind.Mlp2xGelu;
    /// <summary>Text model width (projector output).</summary>
    public int TextHiddenSize { get; init; } = 96;
    /// <summary>Encoding of the 2-D Linear weights in the GGUF (the HF tensors then hold the values it decodes to).</summary>
    public TensorType MatrixType { get; init; } = TensorType.F32;
    public int Seed { get; init; } = 1;

    public static RandomVisionSpec TinyClip => new() { Kind = VisionTowerKind.Clip };

    public static RandomVisionSpec TinySigLip => new()
    {
        Kind = VisionTowerKind.SigLip, ImageSize = 60, HiddenSize = 64, Heads = 2, FeedForward = 160, Layers = 2,
        VisionFeatureLayer = -1, SelectStrategy = "full", HiddenAct = "gelu_pytorch_tanh", LayerNormEps = 1e-6f, TextHiddenSize = 64,
    };

    public int PatchesPerSide => ImageSize / PatchSize;
    public int Positions => PatchesPerSide * PatchesPerSide + (Kind == VisionTowerKind.Clip ? 1 : 0);
    public float[] ImageMean => Kind == VisionTowerKind.Clip ? [0.48145466f, 0.4578275f, 0.40821073f] : [0.5f, 0.5f, 0.5f];
    public float[] ImageStd => Kind == VisionTowerKind.Clip ? [0.26862954f, 0.26130258f, 0.27577711f] : [0.5f, 0.5f, 0.5f];
}

/// <summary>One tensor as the test writes it to a GGUF (ggml dimensions, encoded bytes).</summary>
public sealed record MmprojTensor(string Name, TensorType Type, long[] Dimensions, byte[] Data);

/// <summary>
/// A seeded random LLaVA vision tower + projector, held in HF layout (names and PyTorch shapes of
/// <c>LlavaForConditionalGeneration</c>, <c>vision_tower.vision_model.*</c>, <c>multi_modal_projector.*</c>), from which
/// the tests write (a) the HF-layout weights and config an independent PyTorch script reads and (b) an mmproj GGUF
/// in one of llama.cpp's layouts. Values stored in the GGUF as F16 (patch and position embeddings, as llama.cpp's
/// converter writes them) or in <see cref="RandomVisionSpec.MatrixType"/> are held as the values those encodings decode
/// to, so both sides compute with identical weights.
/// </summary>
public sealed class RandomVisionModel
{
    private const string Tower = "vision_tower.vision_model.";
    private readonly Dictionary<string, (float[] Data, long[] Shape)> _tensors = new(StringComparer.Ordinal);

    public RandomVisionSpec Spec { get; }

    /// <summary>HF name → (values, PyTorch shape).</summary>
    public IReadOnlyDictionary<string, (float[] Data, long[] Shape)> Tensors => _tensors;

    private RandomVisionModel(RandomVisionSpec spec) => Spec = spec;

    public static RandomVisionModel Create(RandomVisionSpec spec)
    {
        var m = new RandomVisionModel(spec);
        int d = spec.HiddenSize, f = spec.FeedForward, p = spec.PatchSize, t = spec.TextHiddenSize;
        bool clip = spec.Kind == VisionTowerKind.Clip;

        // Unit-variance pixels through a 3·p² conv: std 1/√(3p²) keeps patch embeddings near unit scale.
        m.Add(Tower + "embeddings.patch_embedding.weight", [d, 3, p, p], 1 / Math.Sqrt(3 * p * p), f16: true);
        if (!clip) m.Add(Tower + "embeddings.patch_embedding.bias", [d], 0.2);
        if (clip) m.Add(Tower + "embeddings.class_embedding", [d], 1.0);
        m.Add(Tower + "embeddings.position_embedding.weight", [spec.Positions, d], 0.5, f16: true);
        if (clip)
        {
            m.AddNorm(Tower + "pre_layrnorm", d);
        }
        for (int l = 0; l < spec.Layers; l++)
        {
            string n = $"{Tower}encoder.layers.{l}.";
            m.AddNorm(n + "layer_norm1", d);
            // q and k a little larger than unit-preserving, so attention is peaked enough for a wrong mask or scale to show.
            m.AddLinear(n + "self_attn.q_proj", d, d, 2.0);
            m.AddLinear(n + "self_attn.k_proj", d, d, 2.0);
            m.AddLinear(n + "self_attn.v_proj", d, d, 1.0);
            m.AddLinear(n + "self_attn.out_proj", d, d, 1.0);
            m.AddNorm(n + "layer_norm2", d);
            m.AddLinear(n + "mlp.fc1", f, d, 1.5);
            m.AddLinear(n + "mlp.fc2", d, f, 1.0);
        }
        if (spec.Projector == ProjectorKind.Mlp2xGelu)
        {
            m.AddLinear("multi_modal_projector.linear_1", t, d, 1.5);
            m.AddLinear("multi_modal_projector.linear_2", t, t, 1.0);
        }
        else
        {
            m.AddLinear("multi_modal_projector.linear_1", t, d, 1.0);
        }
        return m;
    }

    /// <summary>Normalized planar pixels [3, S, S]: N(0, 1), as CLIP/SigLIP normalization roughly produces.</summary>
    public float[] RandomPixels(int seed)
    {
        var rng = new Random(seed);
        var pixels = new float[3 * Spec.ImageSize * Spec.ImageSize];
        for (int i = 0; i < pixels.Length; i++) pixels[i] = (float)Gaussian(rng);
        return pixels;
    }

    // ---- HF layout for the PyTorch reference ----------------------------------------------------------------

    /// <summary>
    /// Writes <c>config.json</c> (HF LlavaConfig fields the forward pass needs) and one float32 <c>.npy</c> per tensor,
    /// named by its HF key, into <paramref name="directory"/>.
    /// </summary>
    public void WriteHfDirectory(string directory)
    {
        Directory.CreateDirectory(directory);
        var s = Spec;
        var config = new Dictionary<string, object>
        {
            ["vision_config"] = new Dictionary<string, object>
            {
                ["model_type"] = s.Kind == VisionTowerKind.Clip ? "clip_vision_model" : "siglip_vision_model",
                ["image_size"] = s.ImageSize, ["patch_size"] = s.PatchSize, ["hidden_size"] = s.HiddenSize,
                ["intermediate_size"] = s.FeedForward, ["num_attention_heads"] = s.Heads, ["num_hidden_layers"] = s.Layers,
                ["hidden_act"] = s.HiddenAct, ["layer_norm_eps"] = s.LayerNormEps,
            },
            ["vision_feature_layer"] = s.VisionFeatureLayer,
            ["vision_feature_select_strategy"] = s.SelectStrategy,
            ["projector_hidden_act"] = "gelu",
            // HF LLaVA always has the 2-layer projector; original LLaVA v1's linear one is mm_projector_type "linear".
            ["mm_projector_type"] = s.Projector == ProjectorKind.Linear ? "linear" : "mlp2x_gelu",
        };
        File.WriteAllText(Path.Combine(directory, "config.json"), JsonSerializer.Serialize(config, new JsonSerializerOptions { WriteIndented = true }));
        foreach (var (name, (data, shape)) in _tensors)
            NpyFile.WriteFloat32(Path.Combine(directory, name + ".npy"), data, shape);
    }

    // ---- mmproj GGUF --------------------------------------------------------------------------------------------

    /// <summary>HF name → GGUF name (llama.cpp TN_* names) for <paramref name="layout"/>; null when the layout drops the tensor.</summary>
    public string? GgufName(string hfName, MmprojLayout layout)
    {
        string last = hfName[(hfName.LastIndexOf('.') + 1)..]; // "weight" or "bias"
        if (hfName.StartsWith("multi_modal_projector.linear_1.", StringComparison.Ordinal)) return "mm.0." + last;
        if (hfName.StartsWith("multi_modal_projector.linear_2.", StringComparison.Ordinal)) return "mm.2." + last;
        string n = hfName[Tower.Length..];
        switch (n)
        {
            case "embeddings.patch_embedding.weight": return "v.patch_embd.weight";
            case "embeddings.patch_embedding.bias": return "v.patch_embd.bias";
            case "embeddings.class_embedding": return "v.class_embd";
            case "embeddings.position_embedding.weight": return "v.position_embd.weight";
            case "pre_layrnorm.weight": return "v.pre_ln.weight";
            case "pre_layrnorm.bias": return "v.pre_ln.bias";
        }
        // encoder.layers.N.<module>.<weight|bias>
        string[] parts = n.Split('.');
        int layer = int.Parse(parts[2]);
        if (layer >= BlockCount(layout)) return null;
        string module = string.Join('.', parts[3..^1]);
        string suffix = parts[^1];
        bool legacy = layout == MmprojLayout.Legacy;
        string ggml = module switch
        {
            "layer_norm1" => "ln1",
            "layer_norm2" => "ln2",
            "self_attn.q_proj" => "attn_q",
            "self_attn.k_proj" => "attn_k",
            "self_attn.v_proj" => "attn_v",
            "self_attn.out_proj" => "attn_out",
            "mlp.fc1" => legacy ? "ffn_down" : "ffn_up",
            "mlp.fc2" => legacy ? "ffn_up" : "ffn_down",
            _ => throw new InvalidOperationException($"no GGUF name for {hfName}"),
        };
        return $"v.blk.{layer}.{ggml}.{suffix}";
    }

    /// <summary>Blocks stored in the GGUF.</summary>
    public int BlockCount(MmprojLayout layout) => layout == MmprojLayout.Legacy ? Spec.Layers - 1 : Spec.Layers;

    /// <summary>The <c>hidden_states</c> index HF selects (non-negative).</summary>
    public int HiddenStateIndex => VisionConfig.HiddenStateIndex(Spec.VisionFeatureLayer, Spec.Layers);

    /// <summary>The GGUF tensors of <paramref name="layout"/>, in HF order.</summary>
    public List<MmprojTensor> GgufTensors(MmprojLayout layout)
    {
        var list = new List<MmprojTensor>();
        foreach (var (hfName, (data, shape)) in _tensors)
        {
            string? name = GgufName(hfName, layout);
            if (name is null) continue;
            long[] ne = shape.Reverse().ToArray(); // ggml ne[0] is PyTorch's last (contiguous) dimension
            var type = TypeOf(hfName, shape);
            list.Add(new MmprojTensor(name, type, ne, Encode(data, type, (int)ne[0])));
        }
        return list;
    }

    /// <summary>Metadata as the converters write it (llava-reference §3a).</summary>
    public void WriteGgufMetadata(GgufWriter w, MmprojLayout layout)
    {
        var s = Spec;
        if (layout == MmprojLayout.Legacy && HiddenStateIndex != s.Layers - 1)
            throw new InvalidOperationException("the legacy layout encodes feature layer −2 only (the converter drops the last block)");
        if (layout == MmprojLayout.AllBlocks && HiddenStateIndex != s.Layers)
            throw new InvalidOperationException("the all-blocks layout without a feature-layer key selects the last hidden state");
        w.SetString("general.architecture", "clip");
        w.SetBool("clip.has_text_encoder", false);
        w.SetBool("clip.has_vision_encoder", true);
        w.SetBool("clip.has_llava_projector", true);
        w.SetUInt32("general.file_type", 1);
        w.SetString("general.name", $"random {s.Kind} tower (seed {s.Seed})");
        w.SetString("general.description", "image encoder for LLaVA");
        w.SetString("clip.projector_type", "mlp");
        w.SetUInt32("clip.vision.image_size", (uint)s.ImageSize);
        w.SetUInt32("clip.vision.patch_size", (uint)s.PatchSize);
        w.SetUInt32("clip.vision.embedding_length", (uint)s.HiddenSize);
        w.SetUInt32("clip.vision.feed_forward_length", (uint)s.FeedForward);
        w.SetUInt32("clip.vision.projection_dim", 768);
        w.SetUInt32("clip.vision.attention.head_count", (uint)s.Heads);
        w.SetFloat32("clip.vision.attention.layer_norm_epsilon", s.LayerNormEps);
        w.SetUInt32("clip.vision.block_count", (uint)BlockCount(layout));
        if (layout == MmprojLayout.ExplicitFeatureLayer) w.SetArray("clip.vision.feature_layer", new[] { HiddenStateIndex });
        w.SetArray("clip.vision.image_mean", s.ImageMean);
        w.SetArray("clip.vision.image_std", s.ImageStd);
        w.SetBool("clip.use_gelu", s.HiddenAct == "gelu");
    }

    /// <summary>
    /// Writes the mmproj GGUF. <paramref name="editTensors"/> may change, drop (return null) or add tensors and
    /// <paramref name="editMetadata"/> may change keys afterwards — the bad-input tests use both.
    /// </summary>
    public void WriteGguf(string path, MmprojLayout layout, Func<MmprojTensor, MmprojTensor?>? editTensors = null,
        Action<GgufWriter>? editMetadata = null, IEnumerable<MmprojTensor>? extraTensors = null)
    {
        var w = new GgufWriter();
        WriteGgufMetadata(w, layout);
        editMetadata?.Invoke(w);
        foreach (var t in GgufTensors(layout).Select(t => editTensors is null ? t : editTensors(t)).Concat(extraTensors ?? []))
        {
            if (t is null) continue;
            w.AddTensor(t.Name, t.Type, t.Dimensions, t.Data);
        }
        w.WriteTo(path);
    }

    // ---- generation -----------------------------------------------------------------------------------------------

    private TensorType TypeOf(string hfName, long[] shape)
    {
        if (hfName.EndsWith("patch_embedding.weight", StringComparison.Ordinal) || hfName.EndsWith("position_embedding.weight", StringComparison.Ordinal))
            return TensorType.F16;
        return shape.Length == 2 ? Spec.MatrixType : TensorType.F32;
    }

    private void Add(string name, long[] shape, double std, bool f16 = false)
    {
        long count = shape.Aggregate(1L, (a, b) => a * b);
        var rng = new Random(Spec.Seed * 7919 + StableHash(name));
        var data = new float[count];
        for (long i = 0; i < count; i++) data[i] = (float)(Gaussian(rng) * std);
        if (f16) for (long i = 0; i < count; i++) data[i] = (float)(Half)data[i];
        _tensors[name] = (data, shape);
    }

    /// <summary>A Linear [out, in] with std gain/√in and a bias of std 0.1, the weight held as <see cref="RandomVisionSpec.MatrixType"/> decodes it.</summary>
    private void AddLinear(string name, int outFeatures, int inFeatures, double gain)
    {
        Add(name + ".weight", [outFeatures, inFeatures], gain / Math.Sqrt(inFeatures));
        var (data, shape) = _tensors[name + ".weight"];
        _tensors[name + ".weight"] = (RoundTrip(data, Spec.MatrixType, inFeatures), shape);
        Add(name + ".bias", [outFeatures], 0.1);
    }

    /// <summary>LayerNorm weight 1 + N(0, 0.1²) and bias N(0, 0.1²), so a missing or misplaced norm shows.</summary>
    private void AddNorm(string name, int d)
    {
        Add(name + ".weight", [d], 0.1);
        var w = _tensors[name + ".weight"].Data;
        for (int i = 0; i < w.Length; i++) w[i] += 1;
        Add(name + ".bias", [d], 0.1);
    }

    private static unsafe byte[] Encode(float[] data, TensorType type, int rowLength)
    {
        if (type == TensorType.F32) return MemoryMarshal.AsBytes(data.AsSpan()).ToArray();
        if (type == TensorType.F16)
        {
            var bytes = new byte[data.Length * 2];
            var halves = MemoryMarshal.Cast<byte, Half>(bytes.AsSpan());
            for (int i = 0; i < data.Length; i++) halves[i] = (Half)data[i];
            return bytes;
        }
        long rowBytes = TensorTypeInfo.RowBytes(type, rowLength);
        int rows = data.Length / rowLength;
        var encoded = new byte[rows * rowBytes];
        fixed (float* src = data)
        fixed (byte* dst = encoded)
            for (int r = 0; r < rows; r++)
                WeightQuantizer.QuantizeRow(type, src + (long)r * rowLength, dst + r * rowBytes, rowLength);
        return encoded;
    }

    /// <summary>The values <paramref name="type"/> stores for <paramref name="data"/> (rows of <paramref name="rowLength"/>).</summary>
    private static unsafe float[] RoundTrip(float[] data, TensorType type, int rowLength)
    {
        if (type == TensorType.F32) return data;
        byte[] encoded = Encode(data, type, rowLength);
        var decoded = new float[data.Length];
        var kernels = QuantRegistry.ScalarKernels(type);
        long rowBytes = TensorTypeInfo.RowBytes(type, rowLength);
        fixed (byte* src = encoded)
        fixed (float* dst = decoded)
            for (int r = 0; r < data.Length / rowLength; r++)
                kernels.Dequantize(src + r * rowBytes, dst + (long)r * rowLength, rowLength);
        return decoded;
    }

    private static double Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2);
    }

    /// <summary>FNV-1a of the name (string.GetHashCode differs between processes).</summary>
    private static int StableHash(string s)
    {
        uint h = 2166136261;
        foreach (char c in s) { h ^= c; h *= 16777619; }
        return (int)(h & 0x7FFFFFFF);
    }
}
