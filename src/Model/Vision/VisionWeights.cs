using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Model.Vision;

/// <summary>
/// Weights of one encoder block (HF <c>encoder.layers.N</c>). Matrices are PyTorch Linear layout [out, in] and
/// point into the mapped file in their stored type; norms and biases are F32.
/// </summary>
public sealed unsafe class VisionLayerWeights
{
    public float* Norm1Weight, Norm1Bias;            // [dim]  layer_norm1
    public WeightMatrix Query, Key, Value;           // [dim, dim]  self_attn.{q,k,v}_proj
    public float* QueryBias, KeyBias, ValueBias;     // [dim]
    public WeightMatrix Output;                      // [dim, dim]  self_attn.out_proj
    public float* OutputBias;                        // [dim]
    public float* Norm2Weight, Norm2Bias;            // [dim]  layer_norm2
    public WeightMatrix Up;                          // [ffn, dim]  mlp.fc1
    public float* UpBias;                            // [ffn]
    public WeightMatrix Down;                        // [dim, ffn]  mlp.fc2
    public float* DownBias;                          // [dim]
}

/// <summary>
/// A CLIP or SigLIP tower's weights. The patch embedding and position table are held as F32 (converted once
/// when stored as F16): the patch conv then runs on exact pixel values as in HF, instead of the F16-rounded
/// activations an F16 mat-mul would use, and both tables are small (≈ 2.4 MB each for CLIP-L/336).
/// </summary>
public sealed unsafe class VisionWeights : IDisposable
{
    private List<NativeBuffer> _owned = [];

    /// <summary>Conv kernel as a matrix [dim, 3·p·p], columns in (channel, kernel row, kernel column) order, F32.</summary>
    public required WeightMatrix PatchEmbedding { get; init; }
    /// <summary>[dim] (SigLIP) or null (CLIP).</summary>
    public float* PatchBias { get; init; }
    /// <summary>[dim] (CLIP) or null.</summary>
    public float* ClassEmbedding { get; init; }
    /// <summary>[positions, dim], F32; row 0 belongs to the class token when there is one.</summary>
    public float* PositionEmbedding { get; init; }
    /// <summary>[dim] pre_layrnorm (CLIP) or null.</summary>
    public float* PreNormWeight { get; init; }
    public float* PreNormBias { get; init; }
    /// <summary>The blocks the forward pass runs (<see cref="VisionConfig.LayersToRun"/>).</summary>
    public required VisionLayerWeights[] Layers { get; init; }
    /// <summary>True when the file names fc1 <c>ffn_down</c> and fc2 <c>ffn_up</c> (llama.cpp's legacy converter).</summary>
    public bool FeedForwardNamesSwapped { get; init; }

    /// <summary>
    /// Binds the mmproj tensors (llava-reference §3a names) for <paramref name="config"/>, checking every shape.
    /// Whether <c>ffn_down</c> holds fc1 is decided by its shape, not its name: ne[0] = hidden size means it reads
    /// the model width, so it is the up projection (as llama.cpp decides; with ffn = hidden size the legacy
    /// naming is assumed, the only layout whose converter wrote such towers).
    /// </summary>
    public static VisionWeights FromGguf(GgufFile file, VisionConfig config)
    {
        var owned = new List<NativeBuffer>();
        try
        {
            var b = new MmprojTensorBinder(file, owned);
            int dim = config.HiddenSize, ffn = config.FeedForward, p = config.PatchSize;

            // ggml ne [p, p, 3, dim] = PyTorch [dim, 3, p, p]: each output channel is one contiguous row of 3·p·p.
            float* patch = b.Floats("v.patch_embd.weight", p, p, 3, dim);
            float* position = b.Floats("v.position_embd.weight", dim, config.PositionCount);
            float* classEmbedding = config.HasClassEmbedding ? b.Vector("v.class_embd", dim) : null;
            if (!config.HasClassEmbedding && b.Has("v.class_embd"))
                throw b.Error("tensor 'v.class_embd' is present but the configuration has no class token");
            float* patchBias = config.HasPatchBias ? b.Vector("v.patch_embd.bias", dim) : null;

            bool anySwapped = false;
            var layers = new VisionLayerWeights[config.LayersToRun];
            for (int l = 0; l < layers.Length; l++)
            {
                string n = $"v.blk.{l}.";
                bool swapped = FeedForwardIsSwapped(b, n, dim, ffn);
                anySwapped |= swapped;
                string fc1 = n + (swapped ? "ffn_down" : "ffn_up");
                string fc2 = n + (swapped ? "ffn_up" : "ffn_down");
                layers[l] = new VisionLayerWeights
                {
                    Norm1Weight = b.Vector(n + "ln1.weight", dim),
                    Norm1Bias = b.Vector(n + "ln1.bias", dim),
                    Query = b.Matrix(n + "attn_q.weight", dim, dim),
                    QueryBias = b.Vector(n + "attn_q.bias", dim),
                    Key = b.Matrix(n + "attn_k.weight", dim, dim),
                    KeyBias = b.Vector(n + "attn_k.bias", dim),
                    Value = b.Matrix(n + "attn_v.weight", dim, dim),
                    ValueBias = b.Vector(n + "attn_v.bias", dim),
                    Output = b.Matrix(n + "attn_out.weight", dim, dim),
                    OutputBias = b.Vector(n + "attn_out.bias", dim),
                    Norm2Weight = b.Vector(n + "ln2.weight", dim),
                    Norm2Bias = b.Vector(n + "ln2.bias", dim),
                    Up = b.Matrix(fc1 + ".weight", ffn, dim),
                    UpBias = b.Vector(fc1 + ".bias", ffn),
                    Down = b.Matrix(fc2 + ".weight", dim, ffn),
                    DownBias = b.Vector(fc2 + ".bias", dim),
                };
            }

            return new VisionWeights
            {
                PatchEmbedding = new WeightMatrix((byte*)patch, TensorType.F32, dim, config.PatchElements),
                PatchBias = patchBias,
                ClassEmbedding = classEmbedding,
                PositionEmbedding = position,
                PreNormWeight = config.HasPreLayerNorm ? b.Vector("v.pre_ln.weight", dim) : null,
                PreNormBias = config.HasPreLayerNorm ? b.Vector("v.pre_ln.bias", dim) : null,
                Layers = layers,
                FeedForwardNamesSwapped = anySwapped,
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
    /// Binds a Hugging Face tower (<see cref="VisionTensorNames"/>, PyTorch shapes) for <paramref name="config"/>,
    /// checking every shape. Linear weights stay in the mapped file in their stored type (F32, F16 or BF16:
    /// PyTorch [out, in] is exactly a <see cref="WeightMatrix"/>); the patch kernel, position table, class
    /// embedding, norms and biases are F32 — in place when stored as F32, converted once otherwise. Only the
    /// blocks the forward pass runs are bound; later blocks and the post-layernorm may be absent.
    /// </summary>
    public static VisionWeights Bind(ITensorSource source, VisionTensorNames names, VisionConfig config)
    {
        var b = new WeightBinder(source);
        try
        {
            int dim = config.HiddenSize, ffn = config.FeedForward, p = config.PatchSize;
            float* patch = b.Floats(names.PatchEmbedding, dim, 3, p, p); // each output channel one row of 3·p·p
            float* position = b.Floats(names.PositionEmbedding, config.PositionCount, dim);
            if (!config.HasClassEmbedding && b.Has(names.ClassEmbedding))
                throw source.Error(names.ClassEmbedding, $"tensor '{names.ClassEmbedding}' is present but the configuration ({config.Kind}) has no class token");
            if (!config.HasPatchBias && b.Has(names.PatchBias))
                throw source.Error(names.PatchBias, $"tensor '{names.PatchBias}' is present but the configuration ({config.Kind}) has no patch bias");
            float* classEmbedding = config.HasClassEmbedding ? b.Vector(names.ClassEmbedding, dim) : null;
            float* patchBias = config.HasPatchBias ? b.Vector(names.PatchBias, dim) : null;

            var layers = new VisionLayerWeights[config.LayersToRun];
            for (int l = 0; l < layers.Length; l++)
            {
                string M(string module) => names.Layer(l, module);
                layers[l] = new VisionLayerWeights
                {
                    Norm1Weight = b.Vector(M("layer_norm1.weight"), dim),
                    Norm1Bias = b.Vector(M("layer_norm1.bias"), dim),
                    Query = b.Matrix(M("self_attn.q_proj.weight"), dim, dim),
                    QueryBias = b.Vector(M("self_attn.q_proj.bias"), dim),
                    Key = b.Matrix(M("self_attn.k_proj.weight"), dim, dim),
                    KeyBias = b.Vector(M("self_attn.k_proj.bias"), dim),
                    Value = b.Matrix(M("self_attn.v_proj.weight"), dim, dim),
                    ValueBias = b.Vector(M("self_attn.v_proj.bias"), dim),
                    Output = b.Matrix(M("self_attn.out_proj.weight"), dim, dim),
                    OutputBias = b.Vector(M("self_attn.out_proj.bias"), dim),
                    Norm2Weight = b.Vector(M("layer_norm2.weight"), dim),
                    Norm2Bias = b.Vector(M("layer_norm2.bias"), dim),
                    Up = b.Matrix(M("mlp.fc1.weight"), ffn, dim),
                    UpBias = b.Vector(M("mlp.fc1.bias"), ffn),
                    Down = b.Matrix(M("mlp.fc2.weight"), dim, ffn),
                    DownBias = b.Vector(M("mlp.fc2.bias"), dim),
                };
            }

            return new VisionWeights
            {
                PatchEmbedding = new WeightMatrix((byte*)patch, TensorType.F32, dim, config.PatchElements),
                PatchBias = patchBias,
                ClassEmbedding = classEmbedding,
                PositionEmbedding = position,
                PreNormWeight = config.HasPreLayerNorm ? b.Vector(names.PreNorm + ".weight", dim) : null,
                PreNormBias = config.HasPreLayerNorm ? b.Vector(names.PreNorm + ".bias", dim) : null,
                Layers = layers,
                _owned = b.TakeOwnedBuffers(),
            };
        }
        catch
        {
            b.ReleaseOwnedBuffers();
            throw;
        }
    }

    private static bool FeedForwardIsSwapped(MmprojTensorBinder b, string prefix, int dim, int ffn)
    {
        string name = prefix + "ffn_down.weight";
        var down = b.Get(name);
        if (down.Dimensions.Length == 2 && down.Dimensions[0] == dim && down.Dimensions[1] == ffn) return true;
        if (down.Dimensions.Length == 2 && down.Dimensions[0] == ffn && down.Dimensions[1] == dim) return false;
        throw b.Error($"tensor '{name}' has shape {down.ShapeText}, expected [{ffn}, {dim}] (fc2) or [{dim}, {ffn}] (fc1, legacy swapped names)");
    }

    public void Dispose()
    {
        foreach (var buffer in _owned) buffer.Dispose();
        _owned.Clear();
    }
}
