using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.Safetensors;

namespace LlavaNative.Cli.Commands;

/// <summary>
/// <c>llava info</c>: metadata and tensor table of a model — a GGUF file, a single <c>.safetensors</c> file, or a
/// Hugging Face folder (config.json summary, the weight files transformers would read, tokenizer files, tensors).
/// </summary>
public sealed class InfoCommand : Command
{
    public override string Name => "info";
    public override string Summary => "print a model's metadata and tensor table (GGUF file, .safetensors file or Hugging Face folder) and where --backend auto would run";
    public override string[] Examples => ["llava info -m qwen2-0.5b-q4_0.gguf", "llava info -m models/tiny-llava/hf"];
    public override IReadOnlyList<OptionSpec> Options => [Model, Help];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file or Hugging Face folder");
        int exit = Directory.Exists(path) ? PrintFolder(path)
            : path.EndsWith(".safetensors", StringComparison.OrdinalIgnoreCase) ? PrintSafetensors(path)
            : PrintGguf(path);
        if (exit == 0) PrintBackend();
        return exit;
    }

    /// <summary>Where <c>--backend auto</c> would run the decoder on this machine (whether CUDA GPU 0 opens).</summary>
    private static void PrintBackend()
    {
        using var device = CudaDevice.TryOpen(out string reason);
        Console.Out.WriteLine();
        Console.Out.WriteLine(device is null
            ? $"backend:   no CUDA GPU ({reason.TrimEnd('.')}); --backend auto runs the decoder on the CPU"
            : $"backend:   CUDA GPU 0: {device.Name}; --backend auto runs the decoder there (weight types with a CUDA kernel: " +
              string.Join(", ", LlavaNative.Kernels.Cuda.CudaOps.WeightTypes.Select(TensorTypeInfo.Name)) + ")");
    }

    private static int PrintGguf(string path)
    {
        using var file = GgufFile.Open(path);
        var o = Console.Out;
        o.WriteLine($"file:      {path}");
        o.WriteLine($"format:    GGUF v{file.Version}, {file.FileSize:N0} bytes, alignment {file.Alignment}");
        o.WriteLine($"metadata:  {file.Metadata.Count} keys");
        foreach (var (key, value) in file.Metadata)
            o.WriteLine($"  {key,-44} {value.Type,-8} {value}");
        o.WriteLine();
        PrintTensorTable(file.Tensors.Select(t => (t.Name, TensorTypeInfo.Name(t.Type), t.ShapeText, t.ByteSize, t.ElementCount)));
        return 0;
    }

    private static int PrintSafetensors(string path)
    {
        using var file = SafetensorsFile.Open(path);
        var o = Console.Out;
        o.WriteLine($"file:      {path}");
        o.WriteLine($"format:    safetensors, {file.FileSize:N0} bytes, header {file.DataOffset:N0} bytes");
        o.WriteLine($"metadata:  {file.Metadata.Count} keys");
        foreach (var (key, value) in file.Metadata.OrderBy(kv => kv.Key, StringComparer.Ordinal))
            o.WriteLine($"  {key,-44} {value}");
        o.WriteLine();
        PrintTensorTable(file.Tensors.Select(t => (t.Name, t.DType.ToString(), t.ShapeText, t.ByteSize, t.ElementCount)));
        return 0;
    }

    private static int PrintFolder(string folder)
    {
        var o = Console.Out;
        o.WriteLine($"folder:    {folder}");
        string configPath = Path.Combine(folder, HfModelConfig.FileName);
        if (File.Exists(configPath))
        {
            var config = HfModelConfig.Load(folder);
            o.WriteLine($"config:    model_type {config.ModelType}" +
                        (config.IsOriginalLlava ? " (original LLaVA layout: vision tower named by mm_vision_tower)" : ""));
            var t = config.Text;
            o.WriteLine($"  text:    {t.ModelType}, vocab {t.VocabSize}, hidden {t.HiddenSize}, layers {t.NumHiddenLayers}, " +
                        $"heads {t.NumAttentionHeads} (kv {t.NumKeyValueHeads}, head_dim {t.HeadDim}), ffn {t.IntermediateSize} {t.HiddenAct}, " +
                        $"rope θ {t.RopeTheta:G} on {t.RotaryDims} dims, rms eps {t.RmsNormEps:G}, context {t.MaxPositionEmbeddings}, " +
                        $"tied embeddings {(t.TieWordEmbeddings ? "yes" : "no")}, attention bias {(t.AttentionBias ? "yes" : "no")}" +
                        (t.TorchDtype is null ? "" : $", torch_dtype {t.TorchDtype}"));
            if (config.Vision is { } v)
                o.WriteLine($"  vision:  {v.ModelType}, image {v.ImageSize}, patch {v.PatchSize}, hidden {v.HiddenSize}, layers {v.NumHiddenLayers}, " +
                            $"heads {v.NumAttentionHeads}, ffn {v.IntermediateSize} {v.HiddenAct}, layer norm eps {v.LayerNormEps:G}");
            if (config.Llava is { } l)
                o.WriteLine($"  llava:   image_token_index {l.ImageTokenIndex}, image_seq_length {l.ImageSeqLength}, " +
                            $"vision_feature_layer {string.Join(",", l.VisionFeatureLayers)}, strategy {l.VisionFeatureSelectStrategy}, " +
                            $"projector {l.ProjectorHiddenAct} (bias {(l.MultimodalProjectorBias ? "yes" : "no")})");
        }
        else
        {
            o.WriteLine($"config:    no {HfModelConfig.FileName} (not loadable as a model; tensors below)");
        }
        string[] tokenizerFiles = ["tokenizer.json", "tokenizer.model", "tokenizer_config.json", "special_tokens_map.json",
            "added_tokens.json", "vocab.json", "merges.txt", "preprocessor_config.json", "chat_template.json", "generation_config.json"];
        var present = tokenizerFiles.Where(f => File.Exists(Path.Combine(folder, f))).ToArray();
        o.WriteLine($"files:     {(present.Length == 0 ? "(no tokenizer or processor files)" : string.Join(", ", present))}");

        using ITensorCheckpoint checkpoint = HuggingFaceCheckpoint.Open(folder);
        o.WriteLine($"weights:   {checkpoint.Path}");
        o.WriteLine();
        var rows = new List<(string, string, string, long, long)>();
        foreach (string name in checkpoint.TensorNames.OrderBy(n => n, StringComparer.Ordinal))
        {
            if (!checkpoint.TryGetTensor(name, out var view)) continue;
            rows.Add((name, view.TypeName, view.ShapeText, view.ByteSize, view.ElementCount));
        }
        PrintTensorTable(rows);
        return 0;
    }

    private static void PrintTensorTable(IEnumerable<(string Name, string Type, string Shape, long Bytes, long Elements)> tensors)
    {
        var o = Console.Out;
        var list = tensors.ToList();
        int nameWidth = Math.Max(40, list.Count == 0 ? 0 : list.Max(t => t.Name.Length));
        long totalBytes = 0, totalElements = 0;
        var types = new SortedDictionary<string, int>(StringComparer.Ordinal);
        o.WriteLine($"tensors:   {list.Count}");
        o.WriteLine($"  {"name".PadRight(nameWidth)} {"type",-7} {"shape",-22} {"bytes",14}");
        foreach (var t in list)
        {
            o.WriteLine($"  {t.Name.PadRight(nameWidth)} {t.Type,-7} {t.Shape,-22} {t.Bytes,14:N0}");
            totalBytes += t.Bytes;
            totalElements += t.Elements;
            types[t.Type] = types.GetValueOrDefault(t.Type) + 1;
        }
        o.WriteLine();
        o.WriteLine($"parameters: {totalElements:N0} ({totalElements / 1e6:F1} M), tensor data {totalBytes / 1048576.0:F1} MiB, " +
                    $"{(totalElements > 0 ? totalBytes * 8.0 / totalElements : 0):F2} bits/weight");
        o.WriteLine($"types:      {string.Join(", ", types.Select(kv => $"{kv.Key} ×{kv.Value}"))}");
    }
}
