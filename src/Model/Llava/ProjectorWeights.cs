using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Vision;

namespace LlavaNative.Model.Llava;

/// <summary>
/// Projector weights: PyTorch Linear layout [out, in] in the stored type (into the mapped file); biases F32 or
/// null (HF <c>multimodal_projector_bias: false</c>).
/// </summary>
public sealed unsafe class ProjectorWeights : IDisposable
{
    private List<NativeBuffer> _owned = [];

    /// <summary>[HiddenSize, InputSize] linear_1 / mm.0.</summary>
    public required WeightMatrix Linear1 { get; init; }
    /// <summary>[HiddenSize] or null.</summary>
    public float* Bias1 { get; init; }
    /// <summary>[OutputSize, HiddenSize] linear_2 / mm.2 (absent for a linear projector).</summary>
    public WeightMatrix? Linear2 { get; init; }
    /// <summary>[OutputSize] or null.</summary>
    public float* Bias2 { get; init; }

    /// <summary>Binds <c>mm.0.*</c> and, for the MLP, <c>mm.2.*</c>, checking their shapes against <paramref name="config"/>.</summary>
    public static ProjectorWeights FromGguf(GgufFile file, ProjectorConfig config)
    {
        var owned = new List<NativeBuffer>();
        try
        {
            var b = new MmprojTensorBinder(file, owned);
            bool mlp = config.Kind == ProjectorKind.Mlp2xGelu;
            return new ProjectorWeights
            {
                Linear1 = b.Matrix("mm.0.weight", config.HiddenSize, config.InputSize),
                Bias1 = b.OptionalVector("mm.0.bias", config.HiddenSize),
                Linear2 = mlp ? b.Matrix("mm.2.weight", config.OutputSize, config.HiddenSize) : null,
                Bias2 = mlp ? b.OptionalVector("mm.2.bias", config.OutputSize) : null,
                _owned = owned,
            };
        }
        catch
        {
            foreach (var buffer in owned) buffer.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Binds a Hugging Face projector under <paramref name="names"/>, checking shapes against
    /// <paramref name="config"/>. Biases are required when <paramref name="requireBias"/> (HF
    /// <c>multimodal_projector_bias</c>, true by default), else must be absent.
    /// </summary>
    public static ProjectorWeights Bind(ITensorSource source, ProjectorTensorNames names, ProjectorConfig config, bool requireBias)
    {
        var b = new WeightBinder(source);
        try
        {
            bool mlp = config.Kind == ProjectorKind.Mlp2xGelu;
            if (mlp && names.Linear2 is null)
                throw source.Error(null, $"a {config.Kind} projector needs two Linear layers, the {names.Layout} layout has one");
            float* Bias(string module, int n)
            {
                if (requireBias) return b.Vector(module + ".bias", n);
                if (b.Has(module + ".bias"))
                    throw source.Error(module + ".bias", $"tensor '{module}.bias' is present but the configuration says multimodal_projector_bias = false");
                return null;
            }
            return new ProjectorWeights
            {
                Linear1 = b.Matrix(names.Linear1 + ".weight", config.HiddenSize, config.InputSize),
                Bias1 = Bias(names.Linear1, config.HiddenSize),
                Linear2 = mlp ? b.Matrix(names.Linear2 + ".weight", config.OutputSize, config.HiddenSize) : null,
                Bias2 = mlp ? Bias(names.Linear2!, config.OutputSize) : null,
                _owned = b.TakeOwnedBuffers(),
            };
        }
        catch
        {
            b.ReleaseOwnedBuffers();
            throw;
        }
    }

    public void Dispose()
    {
        foreach (var buffer in _owned) buffer.Dispose();
        _owned.Clear();
    }
}
