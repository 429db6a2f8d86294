using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Llava;

namespace LlavaNative.Model.Vision;

/// <summary>
/// Hugging Face LLaVA folder (llava-hf, or original LLaVA + its CLIP tower folder) → mmproj GGUF in llama.cpp's
/// clip.cpp layout, as <c>tools/mtmd/legacy-models/convert_image_encoder_to_gguf.py</c> writes it for a config
/// with a feature layer (llava-reference §3a):
/// <list type="bullet">
/// <item>metadata: <c>general.architecture = clip</c>, <c>clip.has_vision_encoder</c>, <c>clip.has_llava_projector</c>,
/// <c>clip.projector_type = mlp</c>, <c>clip.vision.{image_size, patch_size, embedding_length, feed_forward_length,
/// projection_dim, attention.head_count, attention.layer_norm_epsilon, block_count, image_mean, image_std}</c>,
/// <c>clip.use_gelu</c> / <c>clip.use_silu</c>, and the explicit <c>clip.vision.feature_layer = [k]</c>
/// (the non-negative hidden-state index) with <c>block_count = k</c>: only the k blocks the features need are
/// stored, so clip.cpp and <see cref="ImageEncoder.LoadGguf"/> both run exactly HF's <c>hidden_states[k]</c>;</item>
/// <item>tensors: <c>v.patch_embd.weight</c> (+ <c>.bias</c> for SigLIP), <c>v.class_embd</c>, <c>v.position_embd.weight</c>,
/// <c>v.pre_ln.*</c>, <c>v.blk.N.{ln1, ln2, attn_q, attn_k, attn_v, attn_out, ffn_down, ffn_up}.*</c> with the
/// converter's names (fc1 → <c>ffn_down</c>, fc2 → <c>ffn_up</c>; clip.cpp and our reader decide by shape),
/// <c>mm.0.*</c> and <c>mm.2.*</c>; the post-layernorm is not written (LLaVA never uses it).</item>
/// <item>types: Linear weights in <c>matrixType</c> (F32, F16, BF16 or Q8_0; a row that is not a whole number of
/// Q8_0 blocks falls back to F16, as llama.cpp does); the patch kernel and position table F32 in an F32 file,
/// else F16 (as the converter writes them); class embedding, norms and biases always F32.</item>
/// </list>
/// What an mmproj GGUF cannot say is refused with a clear error: CLIP keeping its class token (strategy "full" /
/// cls_patch), SigLIP dropping a row ("default"), a projector activation other than GELU, a CLIP activation other
/// than quick_gelu / gelu. Values are converted from the checkpoint's F32 / F16 / BF16 exactly (F32 output is
/// bit-identical to the weights' values).
/// </summary>
public static class MmprojConverter
{
    public static readonly TensorType[] SupportedMatrixTypes = [TensorType.F32, TensorType.F16, TensorType.BF16, TensorType.Q8_0];

    /// <summary>Converts <paramref name="hfFolder"/> (see <see cref="LlavaHfLayout"/>) to <paramref name="outputPath"/>.</summary>
    /// <exception cref="ArgumentException"><paramref name="matrixType"/> is not one of <see cref="SupportedMatrixTypes"/>.</exception>
    public static void Convert(string hfFolder, string outputPath, TensorType matrixType = TensorType.F16, string? visionTowerFolder = null)
    {
        if (!SupportedMatrixTypes.Contains(matrixType))
            throw new ArgumentException($"matrix type {TensorTypeInfo.Name(matrixType)} is not supported for mmproj conversion (supported: {string.Join(", ", SupportedMatrixTypes)})", nameof(matrixType));
        var layout = LlavaHfLayout.Read(hfFolder, visionTowerFolder);
        using var opened = layout.OpenWeights();
        var vision = opened.Vision;
        var projector = opened.Projector;
        CheckExpressible(layout, vision, projector);

        // Bind once to check every tensor the GGUF needs is there with the right shape (clear errors naming the file).
        using (VisionWeights.Bind(opened.TowerSource, opened.TowerNames, vision))
        using (ProjectorWeights.Bind(opened.ProjectorSource, opened.ProjectorNames, projector, layout.ProjectorBias)) { }

        var w = new GgufWriter();
        WriteMetadata(w, layout, vision, projector, matrixType);

        bool f32 = matrixType == TensorType.F32;
        var tower = opened.TowerSource;
        var names = opened.TowerNames;
        void Tensor(string ggufName, ITensorSource source, string hfName, TensorType type)
        {
            if (!source.TryGetTensor(hfName, out var view)) throw source.Error(null, $"required tensor '{hfName}' is missing");
            AddConverted(w, ggufName, view, type);
        }

        Tensor("v.patch_embd.weight", tower, names.PatchEmbedding, f32 ? TensorType.F32 : TensorType.F16);
        if (vision.HasPatchBias) Tensor("v.patch_embd.bias", tower, names.PatchBias, TensorType.F32);
        if (vision.HasClassEmbedding) Tensor("v.class_embd", tower, names.ClassEmbedding, TensorType.F32);
        Tensor("v.position_embd.weight", tower, names.PositionEmbedding, f32 ? TensorType.F32 : TensorType.F16);
        if (vision.HasPreLayerNorm)
        {
            Tensor("v.pre_ln.weight", tower, names.PreNorm + ".weight", TensorType.F32);
            Tensor("v.pre_ln.bias", tower, names.PreNorm + ".bias", TensorType.F32);
        }
        var modules = new (string Hf, string Gguf, bool Matrix)[]
        {
            ("layer_norm1", "ln1", false), ("self_attn.q_proj", "attn_q", true), ("self_attn.k_proj", "attn_k", true),
            ("self_attn.v_proj", "attn_v", true), ("self_attn.out_proj", "attn_out", true), ("layer_norm2", "ln2", false),
            ("mlp.fc1", "ffn_down", true), ("mlp.fc2", "ffn_up", true), // the converter's (legacy) names; shape decides
        };
        for (int l = 0; l < vision.LayersToRun; l++)
            foreach (var (hf, gguf, matrix) in modules)
            {
                Tensor($"v.blk.{l}.{gguf}.weight", tower, names.Layer(l, hf) + ".weight", matrix ? matrixType : TensorType.F32);
                Tensor($"v.blk.{l}.{gguf}.bias", tower, names.Layer(l, hf) + ".bias", TensorType.F32);
            }

        var mm = opened.ProjectorNames;
        Tensor("mm.0.weight", opened.ProjectorSource, mm.Linear1 + ".weight", matrixType);
        if (layout.ProjectorBias) Tensor("mm.0.bias", opened.ProjectorSource, mm.Linear1 + ".bias", TensorType.F32);
        if (projector.Kind == ProjectorKind.Mlp2xGelu)
        {
            Tensor("mm.2.weight", opened.ProjectorSource, mm.Linear2 + ".weight", matrixType);
            if (layout.ProjectorBias) Tensor("mm.2.bias", opened.ProjectorSource, mm.Linear2 + ".bias", TensorType.F32);
        }
        w.WriteTo(outputPath);
    }

    private static void CheckExpressible(LlavaHfLayout layout, VisionConfig vision, ProjectorConfig projector)
    {
        string config = layout.ConfigPath, towerConfig = layout.VisionConfigPath;
        if (vision.Kind == VisionTowerKind.Clip && vision.SelectStrategy == FeatureSelectStrategy.Full)
            throw new HuggingFaceConfigException(config, "the features keep CLIP's class token (strategy 'full' / cls_patch), which an mmproj GGUF cannot express (readers drop it for CLIP)");
        if (vision.Kind == VisionTowerKind.SigLip && vision.SelectStrategy == FeatureSelectStrategy.Default)
            throw new HuggingFaceConfigException(config, "the features drop row 0 of a SigLIP tower (strategy 'default'), which an mmproj GGUF cannot express (readers keep every SigLIP row)");
        if (projector.Kind == ProjectorKind.Mlp2xGelu && projector.Activation != ActivationFunction.GeluErf)
            throw new HuggingFaceConfigException(config, $"projector activation {projector.Activation} cannot be expressed in an mmproj GGUF (its 'mlp' projector uses GELU)");
        if (vision.Kind == VisionTowerKind.Clip && vision.Activation == ActivationFunction.GeluTanh)
            throw new HuggingFaceConfigException(towerConfig, "a CLIP tower with tanh GELU cannot be expressed in an mmproj GGUF (clip.use_gelu means erf GELU to our reader)");
        if (vision.Kind == VisionTowerKind.SigLip && vision.Activation != ActivationFunction.GeluTanh)
            throw new HuggingFaceConfigException(towerConfig, $"a SigLIP tower with {vision.Activation} cannot be expressed in an mmproj GGUF (SigLIP is read as gelu_pytorch_tanh)");
    }

    private static void WriteMetadata(GgufWriter w, LlavaHfLayout layout, VisionConfig v, ProjectorConfig p, TensorType matrixType)
    {
        w.SetString("general.architecture", "clip");
        w.SetString("general.name", Path.GetFileName(Path.TrimEndingDirectorySeparator(Path.GetFullPath(layout.Folder))));
        w.SetString("general.description", "image encoder for LLaVA (converted by LlavaNative from a Hugging Face folder)");
        w.SetUInt32("general.file_type", matrixType switch
        {
            TensorType.F32 => 0u, TensorType.F16 => 1u, TensorType.Q8_0 => 7u, TensorType.BF16 => 32u,
            _ => throw new ArgumentException($"no file type for {matrixType}"),
        });
        w.SetBool("clip.has_text_encoder", false);
        w.SetBool("clip.has_vision_encoder", true);
        w.SetBool("clip.has_llava_projector", true);
        w.SetString("clip.projector_type", "mlp");
        w.SetUInt32("clip.vision.image_size", (uint)v.ImageSize);
        w.SetUInt32("clip.vision.patch_size", (uint)v.PatchSize);
        w.SetUInt32("clip.vision.embedding_length", (uint)v.HiddenSize);
        w.SetUInt32("clip.vision.feed_forward_length", (uint)v.FeedForward);
        w.SetUInt32("clip.vision.projection_dim", (uint)p.OutputSize);
        w.SetUInt32("clip.vision.attention.head_count", (uint)v.Heads);
        w.SetFloat32("clip.vision.attention.layer_norm_epsilon", v.LayerNormEps);
        w.SetUInt32("clip.vision.block_count", (uint)v.FeatureLayer);
        w.SetArray("clip.vision.feature_layer", new[] { v.FeatureLayer });
        w.SetArray("clip.vision.image_mean", v.ImageMean.ToArray());
        w.SetArray("clip.vision.image_std", v.ImageStd.ToArray());
        // clip.cpp: use_gelu → GELU, use_silu → SiLU, neither → quick_gelu. SigLIP's gelu_pytorch_tanh is GELU there.
        w.SetBool("clip.use_gelu", v.Activation is ActivationFunction.GeluErf or ActivationFunction.GeluTanh);
        w.SetBool("clip.use_silu", false);
        if (layout.ImageAspectRatio is { } aspect) w.SetString("clip.vision.image_aspect_ratio", aspect);
    }

    /// <summary>Adds <paramref name="view"/> as <paramref name="type"/> with ggml dims (reversed shape), converted row by row while the file is written.</summary>
    private static unsafe void AddConverted(GgufWriter w, string name, TensorView view, TensorType type)
    {
        var sourceType = view.Type!.Value; // WeightBinder has checked the encoding
        long[] ne = view.Shape.Reverse().ToArray();
        int row = checked((int)ne[0]);
        if (row % TensorTypeInfo.BlockElements(type) != 0) type = TensorType.F16;
        long rows = view.ElementCount / row;
        byte* data = view.Data;
        long sourceRowBytes = TensorTypeInfo.RowBytes(sourceType, row);
        long targetRowBytes = TensorTypeInfo.RowBytes(type, row);
        w.AddTensor(name, type, ne, stream =>
        {
            var floats = new float[row];
            var bytes = new byte[targetRowBytes];
            var kernels = QuantRegistry.Kernels(sourceType);
            fixed (float* f = floats)
            fixed (byte* b = bytes)
                for (long r = 0; r < rows; r++)
                {
                    byte* src = data + r * sourceRowBytes;
                    if (sourceType == type)
                    {
                        stream.Write(new ReadOnlySpan<byte>(src, checked((int)sourceRowBytes)));
                        continue;
                    }
                    kernels.Dequantize(src, f, row);
                    WeightQuantizer.QuantizeRow(type, f, b, row);
                    stream.Write(bytes);
                }
        });
    }
}
