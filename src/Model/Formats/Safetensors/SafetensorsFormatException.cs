namespace LlavaNative.Model.Formats.Safetensors;

/// <summary>A safetensors file or shard index that cannot be used: the message names the file and the problem.</summary>
public sealed class SafetensorsFormatException(string path, string problem)
    : ModelFormatException($"{Path.GetFileName(path)}: {problem}")
{
    public string FilePath { get; } = path;
}
