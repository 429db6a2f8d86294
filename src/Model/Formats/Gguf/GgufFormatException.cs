using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Formats.Gguf;

/// <summary>A GGUF file that cannot be used: the message names the file and what is wrong with it.</summary>
public sealed class GgufFormatException(string path, string problem)
    : ModelFormatException($"{Path.GetFileName(path)}: {problem}")
{
    public string FilePath { get; } = path;
}
