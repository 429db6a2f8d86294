using System.Text.Json;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;

namespace LlavaNative.Cli.Commands;

/// <summary>
/// <c>llava tokenize</c>: token ids of a text, as llama.cpp's tokenizer (add_special, parse_special) gives them for
/// a GGUF file, or as Hugging Face tokenizers' encode(text, add_special_tokens) does for a folder with tokenizer.json.
/// </summary>
public sealed class TokenizeCommand : Command
{
    public override string Name => "tokenize";
    public override string Summary => "print the token ids of a text";
    public override string[] Examples =>
    [
        "llava tokenize -m model.gguf --text \"Hello world\"",
        "llava tokenize -m qwen2.gguf --text \"<|im_start|>user\\nhi<|im_end|>\" --json",
        "llava tokenize -m ./llava-1.5-7b-hf --text \"USER: <image>\\nWhat is this? ASSISTANT:\"",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        Model,
        new(["--text"], "TEXT", "text to tokenize (special tokens written in it are recognised)"),
        new(["--json"], null, "print a JSON array of {id, piece} objects"),
        new(["--no-bos"], null, "do not add the BOS token even if the model asks for it"),
        Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("-m", "the model file");
        string text = args.Require("--text", "the text to tokenize");
        var tokenizer = Directory.Exists(path) || Path.GetFileName(path) is HuggingFaceTokenizerFiles.TokenizerJson or HuggingFaceTokenizerFiles.TokenizerModel
            ? HuggingFaceTokenizerFiles.LoadTokenizer(path)
            : LoadGgufTokenizer(path);
        int[] ids = tokenizer.Encode(text, addSpecial: !args.Has("--no-bos"), parseSpecial: true);
        if (args.Has("--json"))
        {
            var items = ids.Select(id => new { id, piece = System.Text.Encoding.UTF8.GetString(tokenizer.TokenBytes(id)) });
            Console.WriteLine(JsonSerializer.Serialize(items));
        }
        else
        {
            Console.WriteLine(string.Join(",", ids));
        }
        return 0;
    }

    private static Tokenizer LoadGgufTokenizer(string path)
    {
        using var file = GgufFile.Open(path);
        if (!file.Contains("tokenizer.ggml.model"))
            throw new GgufFormatException(path, "the file has no tokenizer (tokenizer.ggml.* keys)");
        return Tokenizer.FromVocabulary(GgufVocabulary.Load(file));
    }
}
