using System.Text.Json;
using LlavaNative.Model.Llava;

namespace LlavaNative.Reference.Tests.TinyLlava;

/// <summary>
/// The shipped tiny LLaVA (models/tiny-llava) and its held-out set with the trainer's PyTorch references
/// (tests/data/tiny-llava-eval), found from the test's build output by walking up to the repository root.
/// </summary>
internal static class TinyLlavaFiles
{
    public static string RepoRoot { get; } = FindRepoRoot();
    public static string HfFolder => Path.Combine(RepoRoot, "models", "tiny-llava", "hf");
    public static string TextGguf => Path.Combine(RepoRoot, "models", "tiny-llava", "gguf", "tiny-llava-f32.gguf");
    public static string MmprojGguf => Path.Combine(RepoRoot, "models", "tiny-llava", "gguf", "tiny-llava-mmproj-f32.gguf");
    public static string EvalFolder => Path.Combine(RepoRoot, "tests", "data", "tiny-llava-eval");
    public static string ReferenceFolder => Path.Combine(EvalFolder, "reference");

    /// <summary>"hf": the llava-hf folder with its own tower; "gguf": the F32 pair made by tools/tiny-llava/convert.sh.</summary>
    public static LlavaModel Load(string format) => format switch
    {
        "hf" => LlavaModel.Load(HfFolder, mmproj: null),
        "gguf" => LlavaModel.LoadGguf(TextGguf, MmprojGguf),
        _ => throw new ArgumentOutOfRangeException(nameof(format), format, "hf or gguf"),
    };

    /// <summary>One line of items.jsonl; <see cref="TorchAnswer"/> from torch-answers.json (greedy float32 PyTorch).</summary>
    public sealed record Item(int Id, string[] Images, string Question, string Answer, string Kind, string Task, string TorchAnswer);

    public static IReadOnlyList<Item> Items()
    {
        using var answersDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(EvalFolder, "torch-answers.json")));
        var torch = answersDoc.RootElement.GetProperty("answers").EnumerateArray()
            .ToDictionary(a => a.GetProperty("id").GetInt32(), a => a.GetProperty("torch_answer").GetString()!);
        var items = new List<Item>();
        foreach (string line in File.ReadLines(Path.Combine(EvalFolder, "items.jsonl")))
        {
            if (line.Length == 0) continue;
            using var doc = JsonDocument.Parse(line);
            var r = doc.RootElement;
            int id = r.GetProperty("id").GetInt32();
            if (!torch.TryGetValue(id, out var torchAnswer))
                throw new InvalidDataException($"torch-answers.json has no answer for item {id} of items.jsonl");
            items.Add(new Item(id, r.GetProperty("images").EnumerateArray().Select(e => e.GetString()!).ToArray(),
                r.GetProperty("question").GetString()!, r.GetProperty("answer").GetString()!, r.GetProperty("kind").GetString()!,
                r.GetProperty("task").GetString()!, torchAnswer));
        }
        if (items.Count != torch.Count)
            throw new InvalidDataException($"items.jsonl has {items.Count} items but torch-answers.json {torch.Count} answers");
        return items;
    }

    /// <summary>Per kind (single, multi, caption): accuracy of torch's answers as torch-answers.json summarises it.</summary>
    public static double TorchAccuracy(string kind)
    {
        using var doc = JsonDocument.Parse(File.ReadAllText(Path.Combine(EvalFolder, "torch-answers.json")));
        return doc.RootElement.GetProperty("summary").GetProperty(kind).GetProperty("accuracy").GetDouble();
    }

    private static string FindRepoRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            if (File.Exists(Path.Combine(dir.FullName, "LlavaNative.sln"))) return dir.FullName;
        throw new InvalidOperationException($"no LlavaNative.sln above {AppContext.BaseDirectory}: the tiny-llava tests need the repository checkout");
    }
}
