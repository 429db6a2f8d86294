using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Language;

namespace LlavaNative.Model;

/// <summary>Opens a decoder from whatever the user points at: a GGUF file or a Hugging Face model folder.</summary>
public static class ModelLoader
{
    /// <summary>
    /// A file is read as GGUF; a folder holding <c>config.json</c> as a Hugging Face checkpoint (safetensors).
    /// </summary>
    public static DecoderModel Load(string path)
    {
        if (File.Exists(path)) return DecoderModel.LoadGguf(path);
        if (Directory.Exists(path))
        {
            if (File.Exists(Path.Combine(path, HfModelConfig.FileName))) return DecoderModel.LoadHuggingFace(path);
            throw new ModelFormatException($"{path}: a folder without {HfModelConfig.FileName} is not a Hugging Face model; pass a .gguf file or a folder with {HfModelConfig.FileName} and safetensors weights");
        }
        throw new FileNotFoundException($"{path}: no such file or folder", path);
    }
}
