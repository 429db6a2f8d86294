using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Language;

namespace LlavaNative.Model;

/// <summary>Opens a decoder from whatever the user points at: a GGUF file or a Hugging Face model folder.</summary>
public static class ModelLoader
{
    /// <summary>
    /// A folder holding <c>config.json</c> is a Hugging Face checkpoint (safetensors or pytorch_model.bin), and so is
    /// the folder of a config.json, *.safetensors, *.index.json or torch.save *.bin (zip) file given directly; any other file is read
    /// as GGUF. <paramref name="options"/> (e.g. on-load quantization) apply to both.
    /// </summary>
    public static DecoderModel Load(string path, ModelLoadOptions? options = null)
    {
        if (File.Exists(path))
        {
            string name = Path.GetFileName(path);
            bool huggingFaceFile = name == HfModelConfig.FileName
                                   || name.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase)
                                   || name.EndsWith(".safetensors.index.json", StringComparison.OrdinalIgnoreCase)
                                   || name.EndsWith(".bin.index.json", StringComparison.OrdinalIgnoreCase)
                                   || (name.EndsWith(".bin", StringComparison.OrdinalIgnoreCase) && IsZip(path)); // old GGUF/GGML files are .bin too
            if (!huggingFaceFile) return DecoderModel.LoadGguf(path, options);
            path = Path.GetDirectoryName(Path.GetFullPath(path))!;
        }
        if (Directory.Exists(path))
        {
            if (File.Exists(Path.Combine(path, HfModelConfig.FileName))) return DecoderModel.LoadHuggingFace(path, options);
            throw new ModelFormatException($"{path}: a folder without {HfModelConfig.FileName} is not a Hugging Face model; pass a .gguf file or a folder with {HfModelConfig.FileName} and safetensors or pytorch_model.bin weights");
        }
        throw new FileNotFoundException($"{path}: no such file or folder", path);
    }

    /// <summary>True when the file starts like a zip archive (torch.save's format), not like GGUF.</summary>
    private static bool IsZip(string path)
    {
        Span<byte> magic = stackalloc byte[4];
        using var stream = File.OpenRead(path);
        return stream.ReadAtLeast(magic, 4, throwOnEndOfStream: false) == 4 && magic.SequenceEqual("PK\x03\x04"u8);
    }
}
