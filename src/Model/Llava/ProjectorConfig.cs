using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Model.Llava;

/// <summary>The multi-modal projectors of the LLaVA family.</summary>
public enum ProjectorKind
{
    /// <summary>One Linear, no activation (original LLaVA v1, <c>mm_projector_type: linear</c>).</summary>
    Linear,
    /// <summary><c>linear_1 → GELU → linear_2</c> (<c>mlp2x_gelu</c>: LLaVA-1.5, llava-interleave).</summary>
    Mlp2xGelu,
}

/// <summary>Shape of the projector from vision features [n, InputSize] to text embeddings [n, OutputSize].</summary>
public sealed class ProjectorConfig
{
    public ProjectorKind Kind { get; }
    public int InputSize { get; }
    /// <summary>Output width of linear_1 (equals <see cref="OutputSize"/> for <see cref="ProjectorKind.Linear"/>).</summary>
    public int HiddenSize { get; }
    public int OutputSize { get; }
    /// <summary>Between the two layers: HF's <c>projector_hidden_act</c>, "gelu" = exact erf GELU.</summary>
    public ActivationFunction Activation { get; }

    public const int MaxSize = 65536;

    /// <exception cref="ArgumentException">A size is out of range.</exception>
    public ProjectorConfig(ProjectorKind kind, int inputSize, int hiddenSize, int outputSize, ActivationFunction activation = ActivationFunction.GeluErf)
    {
        if (!Enum.IsDefined(kind)) throw new ArgumentException($"projector kind {kind} is unknown");
        foreach (var (name, v) in new[] { ("input", inputSize), ("hidden", hiddenSize), ("output", outputSize) })
            if (v is < 1 or > MaxSize) throw new ArgumentException($"projector {name} size {v} is outside 1..{MaxSize}");
        if (kind == ProjectorKind.Linear && hiddenSize != outputSize)
            throw new ArgumentException($"a linear projector has one layer: hidden size {hiddenSize} must equal output size {outputSize}");
        Kind = kind;
        InputSize = inputSize;
        HiddenSize = hiddenSize;
        OutputSize = outputSize;
        Activation = activation;
    }

    public override string ToString() => Kind == ProjectorKind.Linear
        ? $"linear {InputSize} → {OutputSize}"
        : $"mlp2x {InputSize} → {HiddenSize} → {Activation} → {OutputSize}";

    /// <summary>
    /// The projector of an mmproj GGUF: <c>clip.projector_type</c> (or <c>clip.vision.projector_type</c>) must be
    /// "mlp" or absent; <c>mm.0</c> alone is a linear projector, <c>mm.0</c> + <c>mm.2</c> the 2-layer GELU MLP
    /// (HF semantics: exact erf GELU between them, none after a single layer). Sizes come from the tensor shapes.
    /// </summary>
    public static ProjectorConfig FromGguf(GgufFile file, int visionHiddenSize)
    {
        GgufFormatException Error(string problem) => new(file.Path, problem);
        string? type = file.GetStringOrNull("clip.projector_type") ?? file.GetStringOrNull("clip.vision.projector_type");
        if (type is not null and not "mlp")
            throw Error($"projector type '{type}' is not supported (supported: mlp — LLaVA's linear or 2-layer GELU projector)");
        foreach (string extra in new[] { "mm.1.weight", "mm.3.weight", "mm.4.weight" })
            if (file.HasTensor(extra))
                throw Error($"tensor '{extra}' is present: a projector with normalization layers (Yi-VL mlp_norm) is not supported");

        var first = file.GetTensor("mm.0.weight");
        if (first.Dimensions.Length != 2 || first.Dimensions[0] != visionHiddenSize)
            throw Error($"tensor 'mm.0.weight' has shape {first.ShapeText}, expected [{visionHiddenSize}, n] (input = vision hidden size {visionHiddenSize})");
        int hidden = SizeOf(file, first, 1);
        var second = file.FindTensor("mm.2.weight");
        try
        {
            if (second is null) return new ProjectorConfig(ProjectorKind.Linear, visionHiddenSize, hidden, hidden);
            if (second.Dimensions.Length != 2 || second.Dimensions[0] != hidden)
                throw Error($"tensor 'mm.2.weight' has shape {second.ShapeText}, expected [{hidden}, n] (input = output of mm.0, {hidden})");
            return new ProjectorConfig(ProjectorKind.Mlp2xGelu, visionHiddenSize, hidden, SizeOf(file, second, 1));
        }
        catch (ArgumentException e)
        {
            throw Error(e.Message);
        }
    }

    private static int SizeOf(GgufFile file, GgufTensorInfo t, int dim)
    {
        long v = t.Dimensions[dim];
        if (v > MaxSize) throw new GgufFormatException(file.Path, $"tensor '{t.Name}' has shape {t.ShapeText}: {v} features is more than {MaxSize}");
        return (int)v;
    }
}
