using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Llava;

/// <summary>
/// Where a Hugging Face checkpoint keeps the projector: llava-hf's <c>multi_modal_projector.linear_{1,2}</c>
/// (old) or <c>model.multi_modal_projector.linear_{1,2}</c> (new), or original LLaVA's <c>model.mm_projector.{0,2}</c>
/// (mlp2x_gelu, an nn.Sequential whose index 1 is the GELU) or <c>model.mm_projector</c> (linear). Names are
/// module prefixes: append ".weight" / ".bias". <see cref="Linear2"/> is null for the single-Linear projector.
/// </summary>
public sealed record ProjectorTensorNames(string Layout, string Linear1, string? Linear2)
{
    public static readonly ProjectorTensorNames LlavaHfOld = new("llava-hf (multi_modal_projector.*)", "multi_modal_projector.linear_1", "multi_modal_projector.linear_2");
    public static readonly ProjectorTensorNames LlavaHfNew = new("llava-hf (model.multi_modal_projector.*)", "model.multi_modal_projector.linear_1", "model.multi_modal_projector.linear_2");
    public static readonly ProjectorTensorNames OriginalMlp = new("original LLaVA mlp2x_gelu (model.mm_projector.0/2)", "model.mm_projector.0", "model.mm_projector.2");
    public static readonly ProjectorTensorNames OriginalLinear = new("original LLaVA linear (model.mm_projector)", "model.mm_projector", null);

    public static readonly ProjectorTensorNames[] LlavaHfLayouts = [LlavaHfNew, LlavaHfOld];

    /// <summary>The first of <paramref name="candidates"/> whose first weight <paramref name="source"/> holds, or null.</summary>
    public static ProjectorTensorNames? Find(ITensorSource source, IEnumerable<ProjectorTensorNames> candidates) =>
        candidates.FirstOrDefault(n => source.TryGetTensor(n.Linear1 + ".weight", out _));
}
