using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Vision;

/// <summary>
/// Where a Hugging Face checkpoint keeps the CLIP / SigLIP tower: transformers' <c>CLIPVisionTransformer</c> /
/// <c>SiglipVisionTransformer</c> module names (<c>embeddings.*</c>, <c>pre_layrnorm.*</c>,
/// <c>encoder.layers.N.*</c>) under one prefix — an old llava-hf checkpoint (<c>vision_tower.vision_model.</c>),
/// a new one (<c>model.vision_tower.vision_model.</c>) or a CLIP / SigLIP checkpoint of its own
/// (<c>vision_model.</c>, e.g. openai/clip-vit-large-patch14-336, whose text-tower keys are ignored).
/// Two layouts are two prefixes, not two models.
/// </summary>
public sealed record VisionTensorNames(string Layout, string Prefix)
{
    public string PatchEmbedding => Prefix + "embeddings.patch_embedding.weight";  // [dim, 3, p, p]
    public string PatchBias => Prefix + "embeddings.patch_embedding.bias";         // [dim] SigLIP only
    public string ClassEmbedding => Prefix + "embeddings.class_embedding";         // [dim] CLIP only
    public string PositionEmbedding => Prefix + "embeddings.position_embedding.weight"; // [positions, dim]
    public string PreNorm => Prefix + "pre_layrnorm";                                // CLIP only ("layrnorm" sic)

    /// <summary>A block's module, e.g. <c>Layer(3, "self_attn.q_proj")</c>; append ".weight" / ".bias".</summary>
    public string Layer(int layer, string module) => $"{Prefix}encoder.layers.{layer}.{module}";

    /// <summary>llava-hf checkpoints written by transformers &lt; 4.52.</summary>
    public static readonly VisionTensorNames LlavaHfOld = new("llava-hf (vision_tower.vision_model.*)", "vision_tower.vision_model.");

    /// <summary>llava-hf checkpoints written by transformers ≥ 4.52 (<c>^vision_tower</c> → <c>model.vision_tower</c>).</summary>
    public static readonly VisionTensorNames LlavaHfNew = new("llava-hf (model.vision_tower.vision_model.*)", "model.vision_tower.vision_model.");

    /// <summary>A CLIPModel / CLIPVisionModel / SiglipVisionModel checkpoint (original LLaVA's separate tower).</summary>
    public static readonly VisionTensorNames VisionModel = new("CLIP / SigLIP checkpoint (vision_model.*)", "vision_model.");

    public static readonly VisionTensorNames[] LlavaHfLayouts = [LlavaHfNew, LlavaHfOld];

    /// <summary>The first of <paramref name="candidates"/> whose patch embedding <paramref name="source"/> holds, or null.</summary>
    public static VisionTensorNames? Find(ITensorSource source, IEnumerable<VisionTensorNames> candidates) =>
        candidates.FirstOrDefault(n => source.TryGetTensor(n.PatchEmbedding, out _));
}
