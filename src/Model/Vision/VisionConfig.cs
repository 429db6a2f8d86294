using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Model.Vision;

/// <summary>The two ViT families LLaVA checkpoints use.</summary>
public enum VisionTowerKind
{
    /// <summary>CLIP: class token first, pre-layernorm, no patch bias, quick_gelu, LayerNorm eps 1e-5.</summary>
    Clip,
    /// <summary>SigLIP: no class token, no pre-layernorm, patch bias, gelu (tanh), LayerNorm eps 1e-6.</summary>
    SigLip,
}

/// <summary>HF <c>vision_feature_select_strategy</c>: which rows of the selected hidden state become image tokens.</summary>
public enum FeatureSelectStrategy
{
    /// <summary>"default": drop row 0 (CLIP's class token), as HF does with <c>[:, 1:]</c>.</summary>
    Default,
    /// <summary>"full": keep every row (SigLIP).</summary>
    Full,
}

/// <summary>
/// Hyper-parameters of a CLIP or SigLIP vision tower, whatever file they came from. The tower reads pixels
/// [3, ImageSize, ImageSize] (already normalized with <see cref="ImageMean"/>/<see cref="ImageStd"/>), cuts
/// them into <see cref="PatchesPerSide"/>² patches (a stride-<see cref="PatchSize"/> convolution without
/// padding: when ImageSize is not a multiple of PatchSize, the last pixels are not seen, as in HF), runs
/// <see cref="LayersToRun"/> encoder blocks and returns <c>hidden_states[FeatureLayer]</c> without the
/// post-layernorm, less the rows <see cref="SelectStrategy"/> drops.
/// </summary>
public sealed class VisionConfig
{
    public VisionTowerKind Kind { get; }
    public int ImageSize { get; }
    public int PatchSize { get; }
    public int HiddenSize { get; }
    public int Heads { get; }
    public int FeedForward { get; }

    /// <summary>Encoder blocks the weights provide (GGUF <c>clip.vision.block_count</c>, HF <c>num_hidden_layers</c>).</summary>
    public int BlockCount { get; }

    public float LayerNormEps { get; }
    public ActivationFunction Activation { get; }

    /// <summary>
    /// Index into HF's <c>hidden_states</c> (never negative): 0 = embeddings after the pre-layernorm, k = output of
    /// block k − 1. LLaVA-1.5 (−2 of 24 blocks) is 23; llava-interleave's SigLIP (−1 of 26) is 26.
    /// </summary>
    public int FeatureLayer { get; }

    public FeatureSelectStrategy SelectStrategy { get; }
    public IReadOnlyList<float> ImageMean { get; }
    public IReadOnlyList<float> ImageStd { get; }
    public bool HasClassEmbedding { get; }
    public bool HasPreLayerNorm { get; }
    public bool HasPatchBias { get; }

    public int PatchesPerSide => ImageSize / PatchSize;
    public int PatchCount => PatchesPerSide * PatchesPerSide;

    /// <summary>Rows of the encoder's sequence (and of the position table): the patches plus the class token.</summary>
    public int PositionCount => PatchCount + (HasClassEmbedding ? 1 : 0);

    public int HeadDim => HiddenSize / Heads;

    /// <summary>Floats in one patch: 3·PatchSize², in the order (channel, row, column) of the conv kernel.</summary>
    public int PatchElements => 3 * PatchSize * PatchSize;

    /// <summary>Blocks the forward pass runs: enough to reach <see cref="FeatureLayer"/>, none after it.</summary>
    public int LayersToRun => FeatureLayer;

    /// <summary>Rows of the selected hidden state that become image tokens.</summary>
    public int OutputTokenCount => PositionCount - FirstOutputRow;

    /// <summary>First row of the selected hidden state that is kept (1 when <see cref="FeatureSelectStrategy.Default"/> drops row 0).</summary>
    public int FirstOutputRow => SelectStrategy == FeatureSelectStrategy.Default ? 1 : 0;

    /// <summary>Largest accepted sizes: far above any real tower, low enough that buffers stay allocatable.</summary>
    public const int MaxImageSize = 4096, MaxHiddenSize = 16384, MaxFeedForward = 65536, MaxBlocks = 512, MaxPositions = 1 << 16;

    /// <summary>
    /// A configuration from plain values (e.g. HF <c>vision_config</c> + LLaVA fields). Class embedding and
    /// pre-layernorm follow <paramref name="kind"/>; the patch bias defaults to SigLIP's (present) and CLIP's
    /// (absent). Use <see cref="HiddenStateIndex"/> to turn HF's negative <c>vision_feature_layer</c> into
    /// <paramref name="featureLayer"/>.
    /// </summary>
    /// <exception cref="ArgumentException">A value is out of range or inconsistent.</exception>
    public VisionConfig(VisionTowerKind kind, int imageSize, int patchSize, int hiddenSize, int heads, int feedForward,
        int blockCount, float layerNormEps, ActivationFunction activation, int featureLayer, FeatureSelectStrategy selectStrategy,
        IReadOnlyList<float> imageMean, IReadOnlyList<float> imageStd, bool? hasPatchBias = null)
    {
        Kind = kind;
        ImageSize = imageSize;
        PatchSize = patchSize;
        HiddenSize = hiddenSize;
        Heads = heads;
        FeedForward = feedForward;
        BlockCount = blockCount;
        LayerNormEps = layerNormEps;
        Activation = activation;
        FeatureLayer = featureLayer;
        SelectStrategy = selectStrategy;
        ImageMean = imageMean.ToArray();
        ImageStd = imageStd.ToArray();
        HasClassEmbedding = kind == VisionTowerKind.Clip;
        HasPreLayerNorm = kind == VisionTowerKind.Clip;
        HasPatchBias = hasPatchBias ?? kind == VisionTowerKind.SigLip;
        if (Problem() is { } problem) throw new ArgumentException($"invalid vision configuration: {problem}");
    }

    /// <summary>The same tower selecting another hidden state (tests use it to show a wrong layer is detected).</summary>
    public VisionConfig WithFeatureLayer(int featureLayer) =>
        new(Kind, ImageSize, PatchSize, HiddenSize, Heads, FeedForward, BlockCount, LayerNormEps, Activation, featureLayer,
            SelectStrategy, ImageMean, ImageStd, HasPatchBias);

    /// <summary>The same tower keeping other rows of the selected hidden state.</summary>
    public VisionConfig WithSelectStrategy(FeatureSelectStrategy strategy) =>
        new(Kind, ImageSize, PatchSize, HiddenSize, Heads, FeedForward, BlockCount, LayerNormEps, Activation, FeatureLayer,
            strategy, ImageMean, ImageStd, HasPatchBias);

    public override string ToString() =>
        $"{Kind} {ImageSize}px/{PatchSize} ({PatchCount} patches), dim {HiddenSize}, {Heads} heads, ffn {FeedForward}, " +
        $"{BlockCount} blocks, feature layer {FeatureLayer}, {Activation}, eps {LayerNormEps:G}, select {SelectStrategy}";

    /// <summary>HF <c>vision_feature_layer</c> (negative counts from the end) as a non-negative <c>hidden_states</c> index.</summary>
    public static int HiddenStateIndex(int visionFeatureLayer, int numHiddenLayers) =>
        visionFeatureLayer < 0 ? numHiddenLayers + 1 + visionFeatureLayer : visionFeatureLayer;

    /// <summary>The first inconsistency of this configuration, or null.</summary>
    private string? Problem()
    {
        if (ImageSize is < 1 or > MaxImageSize) return $"image size {ImageSize} is outside 1..{MaxImageSize}";
        if (PatchSize < 1 || PatchSize > ImageSize) return $"patch size {PatchSize} is outside 1..{ImageSize} (the image size)";
        if (PositionCount > MaxPositions) return $"{PatchCount} patches ({ImageSize}/{PatchSize} per side) is more than {MaxPositions}";
        if (HiddenSize is < 1 or > MaxHiddenSize) return $"hidden size {HiddenSize} is outside 1..{MaxHiddenSize}";
        if (Heads < 1 || HiddenSize % Heads != 0) return $"head count {Heads} does not divide the hidden size {HiddenSize}";
        if (FeedForward is < 1 or > MaxFeedForward) return $"feed-forward size {FeedForward} is outside 1..{MaxFeedForward}";
        if (BlockCount is < 0 or > MaxBlocks) return $"block count {BlockCount} is outside 0..{MaxBlocks}";
        if (FeatureLayer < 0 || FeatureLayer > BlockCount)
            return $"feature layer {FeatureLayer} is outside 0..{BlockCount} (hidden_states of a {BlockCount}-block tower)";
        if (!(LayerNormEps > 0 && LayerNormEps < 1)) return $"layer-norm epsilon {LayerNormEps} is not in (0, 1)";
        if (!Enum.IsDefined(Activation)) return $"activation {Activation} is unknown";
        if (!Enum.IsDefined(SelectStrategy)) return $"feature select strategy {SelectStrategy} is unknown";
        if (ImageMean.Count != 3 || ImageStd.Count != 3)
            return $"image mean and std need 3 values (R, G, B), got {ImageMean.Count} and {ImageStd.Count}";
        foreach (float m in ImageMean) if (!float.IsFinite(m)) return $"image mean {m} is not finite";
        foreach (float s in ImageStd) if (!(s > 0 && float.IsFinite(s))) return $"image std {s} is not a positive number";
        if (OutputTokenCount < 1) return "the feature select strategy leaves no image tokens";
        return null;
    }

    // ---- mmproj GGUF -------------------------------------------------------------------------------------

    /// <summary>
    /// Reads <c>clip.vision.*</c> keys (llama.cpp's mmproj layout, llava-reference §3a). The tower kind follows the
    /// tensors: a class embedding (<c>v.class_embd</c>) means CLIP, none means SigLIP. Layer semantics: with
    /// <c>clip.vision.feature_layer</c> the tower runs max(feature_layer) blocks; without it (legacy files, whose
    /// converter already dropped the blocks after the selected one and wrote the trimmed <c>block_count</c>) it runs
    /// exactly <c>block_count</c> blocks. CLIP drops its class token (strategy "default"), SigLIP keeps every row.
    /// </summary>
    public static VisionConfig FromGguf(GgufFile file)
    {
        GgufFormatException Error(string problem) => new(file.Path, problem);

        string? architecture = file.GetStringOrNull("general.architecture");
        if (architecture is not null && architecture != "clip")
            throw Error($"general.architecture is '{architecture}', expected 'clip' (is this a text model rather than an mmproj file?)");
        if (!file.GetBool("clip.has_vision_encoder", true))
            throw Error("clip.has_vision_encoder is false: the file has no vision tower");

        int imageSize = file.GetInt32("clip.vision.image_size");
        int patchSize = file.GetInt32("clip.vision.patch_size");
        int hidden = file.GetInt32("clip.vision.embedding_length");
        int ffn = file.GetInt32("clip.vision.feed_forward_length");
        int heads = file.GetInt32("clip.vision.attention.head_count");
        int blocks = file.GetInt32("clip.vision.block_count");
        if (file.Contains("clip.vision.attention.head_count_kv") && file.GetInt32("clip.vision.attention.head_count_kv") != heads)
            throw Error($"clip.vision.attention.head_count_kv = {file.GetInt32("clip.vision.attention.head_count_kv")} differs from head_count {heads}; grouped-query vision attention is not supported");
        if (file.Contains("clip.vision.attention.head_dim") && heads > 0 && file.GetInt32("clip.vision.attention.head_dim") * heads != hidden)
            throw Error($"clip.vision.attention.head_dim = {file.GetInt32("clip.vision.attention.head_dim")} × head_count {heads} differs from embedding_length {hidden}");

        bool hasClass = file.HasTensor("v.class_embd");
        var kind = hasClass ? VisionTowerKind.Clip : VisionTowerKind.SigLip;
        if (!hasClass && file.HasTensor("v.pre_ln.weight"))
            throw Error("the file has 'v.pre_ln.weight' but no 'v.class_embd': neither CLIP (has a class embedding) nor SigLIP (has no pre-layernorm)");

        float eps = file.GetFloat32("clip.vision.attention.layer_norm_epsilon", kind == VisionTowerKind.Clip ? 1e-5f : 1e-6f);

        // clip.use_gelu says hidden_act == "gelu" (erf) for CLIP; absent/false means quick_gelu. SigLIP's
        // gelu_pytorch_tanh has no flag (the legacy converter writes use_gelu = false), so SigLIP ignores it.
        ActivationFunction activation;
        if (kind == VisionTowerKind.SigLip) activation = ActivationFunction.GeluTanh;
        else if (file.GetBool("clip.use_silu", false)) throw Error("clip.use_silu is set: a SiLU vision MLP is not supported (supported: quick_gelu, gelu)");
        else activation = file.GetBool("clip.use_gelu", false) ? ActivationFunction.GeluErf : ActivationFunction.QuickGelu;

        float[] mean = file.GetArray<float>("clip.vision.image_mean");
        float[] std = file.GetArray<float>("clip.vision.image_std");

        int featureLayer = blocks;
        if (file.Contains("clip.vision.feature_layer"))
        {
            int[] layers = file.GetIntArray("clip.vision.feature_layer");
            if (layers.Length == 0) throw Error("clip.vision.feature_layer is empty");
            foreach (int l in layers)
                if (l < 0 || l > blocks)
                    throw Error($"clip.vision.feature_layer contains {l}, outside 0..{blocks} (block_count)");
            if (layers.Distinct().Count() > 1)
                throw Error($"clip.vision.feature_layer = [{string.Join(", ", layers)}] selects several layers (granite-style feature stacking), which is not supported; LLaVA uses one");
            featureLayer = layers.Max();
        }

        try
        {
            return new VisionConfig(kind, imageSize, patchSize, hidden, heads, ffn, blocks, eps, activation, featureLayer,
                hasClass ? FeatureSelectStrategy.Default : FeatureSelectStrategy.Full, mean, std,
                hasPatchBias: file.HasTensor("v.patch_embd.bias"));
        }
        catch (ArgumentException e)
        {
            throw Error(e.Message);
        }
    }
}
