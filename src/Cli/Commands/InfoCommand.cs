using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava info</c>: metadata and tensor table of a GGUF file.</summary>
public sealed class InfoCommand : Command
{
    public override string Name => "info";
    public override string Summary => "print a model file's metadata and tensor table";
    public override string[] Examples => ["llava info -m qwen2-0.5b-q4_0.gguf"];
    public override IReadOnlyList<OptionSpec> Options => [Model, Help];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file");
        using var file = GgufFile.Open(path);
        var o = Console.Out;
        o.WriteLine($"file:      {path}");
        o.WriteLine($"format:    GGUF v{file.Version}, {file.FileSize:N0} bytes, alignment {file.Alignment}");
        o.WriteLine($"metadata:  {file.Metadata.Count} keys");
        foreach (var (key, value) in file.Metadata)
            o.WriteLine($"  {key,-44} {value.Type,-8} {value}");
        o.WriteLine();
        long totalBytes = 0, totalElements = 0;
        var types = new SortedDictionary<string, int>();
        o.WriteLine($"tensors:   {file.Tensors.Count}");
        o.WriteLine($"  {"name",-40} {"type",-7} {"shape",-22} {"bytes",14}");
        foreach (var t in file.Tensors)
        {
            o.WriteLine($"  {t.Name,-40} {TensorTypeInfo.Name(t.Type),-7} {t.ShapeText,-22} {t.ByteSize,14:N0}");
            totalBytes += t.ByteSize;
            totalElements += t.ElementCount;
            types[t.Type.ToString()] = types.GetValueOrDefault(t.Type.ToString()) + 1;
        }
        o.WriteLine();
        o.WriteLine($"parameters: {totalElements:N0} ({totalElements / 1e6:F1} M), tensor data {totalBytes / 1048576.0:F1} MiB, " +
                    $"{(totalElements > 0 ? totalBytes * 8.0 / totalElements : 0):F2} bits/weight");
        o.WriteLine($"types:      {string.Join(", ", types.Select(kv => $"{kv.Key} ×{kv.Value}"))}");
        return 0;
    }
}
