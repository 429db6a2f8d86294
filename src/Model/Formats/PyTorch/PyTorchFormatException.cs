namespace LlavaNative.Model.Formats.PyTorch;

/// <summary>A PyTorch checkpoint (<c>.bin</c> / <c>.pt</c>) or shard index that cannot be used: the message names the file and the problem.</summary>
public sealed class PyTorchFormatException(string path, string problem)
    : ModelFormatException($"{Path.GetFileName(path)}: {problem}")
{
    public string FilePath { get; } = path;
}
