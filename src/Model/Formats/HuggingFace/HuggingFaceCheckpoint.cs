using LlavaNative.Model.Formats.PyTorch;
using LlavaNative.Model.Formats.Safetensors;

namespace LlavaNative.Model.Formats.HuggingFace;

/// <summary>
/// The one place that decides which weight files of a Hugging Face folder are read, as transformers'
/// <c>from_pretrained</c> does: safetensors (<c>model.safetensors</c>, its shard index, or a lone
/// <c>*.safetensors</c>) when the folder has any, else PyTorch pickles (<c>pytorch_model.bin</c> or
/// <c>pytorch_model.bin.index.json</c>). Safetensors wins when both exist.
/// </summary>
public static class HuggingFaceCheckpoint
{
    public static bool HasSafetensors(string folder) =>
        File.Exists(Path.Combine(folder, SafetensorsCheckpoint.SingleFileName))
        || File.Exists(Path.Combine(folder, SafetensorsCheckpoint.IndexFileName))
        || Directory.EnumerateFiles(folder, "*.safetensors").Any();

    /// <summary>The weights of <paramref name="folder"/>, mapped; the caller disposes them (with the model).</summary>
    public static ITensorCheckpoint Open(string folder)
    {
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"{folder}: folder not found");
        if (HasSafetensors(folder)) return SafetensorsCheckpoint.Open(folder);
        if (PyTorchCheckpoint.ExistsIn(folder)) return PyTorchCheckpoint.Open(folder);
        throw new FileNotFoundException(
            $"{folder}: no weights in the folder: expected {SafetensorsCheckpoint.SingleFileName}, {SafetensorsCheckpoint.IndexFileName}, " +
            $"{PyTorchCheckpoint.SingleFileName} or {PyTorchCheckpoint.IndexFileName}",
            Path.Combine(folder, SafetensorsCheckpoint.SingleFileName));
    }
}
