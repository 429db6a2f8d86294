using System.Text.Json;
using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>A tokenizer file (tokenizer.json, tokenizer_config.json, …) that cannot be used; the message names the file and the key.</summary>
public sealed class HuggingFaceTokenizerException(string path, string problem)
    : ModelFormatException($"{System.IO.Path.GetFileName(path)}: {problem}")
{
    public string FilePath { get; } = path;
}

/// <summary>
/// One JSON value of a tokenizer file with the path that leads to it, so every error says where:
/// <c>tokenizer.json: pre_tokenizer.pretokenizers[1].behavior is 3, expected a string</c>.
/// </summary>
internal readonly struct TokenizerJsonReader(JsonElement element, string file, string path)
{
    public JsonElement Element => element;
    public string File => file;
    public string Path => path;

    public HuggingFaceTokenizerException Error(string problem) =>
        new(file, path.Length == 0 ? problem : $"{path} {problem}");

    public bool IsNull => element.ValueKind is JsonValueKind.Null or JsonValueKind.Undefined;

    public bool Has(string key) =>
        element.ValueKind == JsonValueKind.Object && element.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The member <paramref name="key"/>; a missing member reads as null.</summary>
    public TokenizerJsonReader this[string key]
    {
        get
        {
            if (element.ValueKind != JsonValueKind.Object)
                throw Error($"is {Describe(element)}, expected an object");
            string childPath = path.Length == 0 ? key : $"{path}.{key}";
            return element.TryGetProperty(key, out var v) ? new(v, file, childPath) : new(default, file, childPath);
        }
    }

    public IEnumerable<TokenizerJsonReader> Items()
    {
        if (element.ValueKind != JsonValueKind.Array)
            throw Error($"is {Describe(element)}, expected an array");
        int i = 0;
        foreach (var item in element.EnumerateArray())
            yield return new TokenizerJsonReader(item, file, $"{path}[{i++}]");
    }

    public IEnumerable<(string Key, TokenizerJsonReader Value)> Members()
    {
        if (element.ValueKind != JsonValueKind.Object)
            throw Error($"is {Describe(element)}, expected an object");
        foreach (var p in element.EnumerateObject())
            yield return (p.Name, new TokenizerJsonReader(p.Value, file, path.Length == 0 ? p.Name : $"{path}.{p.Name}"));
    }

    public string String() => element.ValueKind == JsonValueKind.String ? element.GetString()! : throw Error($"is {Describe(element)}, expected a string");

    public string? StringOrNull() => IsNull ? null : String();

    public bool Bool(bool fallback)
    {
        if (IsNull)
            return fallback;
        return element.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"is {Describe(element)}, expected true or false"),
        };
    }

    public bool? BoolOrNull() => IsNull ? null : Bool(false);

    public int Int()
    {
        if (element.ValueKind == JsonValueKind.Number && element.TryGetInt32(out int value))
            return value;
        throw Error($"is {Describe(element)}, expected an integer");
    }

    public int Int(int fallback) => IsNull ? fallback : Int();

    /// <summary>A one-character string (Rust <c>char</c> fields such as Metaspace's replacement).</summary>
    public string Char()
    {
        string s = String();
        if (s.Length == 0 || s.Length > 2 || (s.Length == 2 && !char.IsSurrogatePair(s[0], s[1])))
            throw Error($"is \"{s}\", expected a single character");
        return s;
    }

    public string Type()
    {
        var type = this["type"];
        return type.IsNull ? throw Error("has no \"type\"") : type.String();
    }

    public static string Describe(JsonElement e) => e.ValueKind switch
    {
        JsonValueKind.String => $"\"{e.GetString()}\"",
        JsonValueKind.Number or JsonValueKind.True or JsonValueKind.False => e.GetRawText(),
        JsonValueKind.Null or JsonValueKind.Undefined => "null",
        JsonValueKind.Array => "an array",
        _ => "an object",
    };
}
