using System.Text.Json;

namespace LlavaNative.Model.Formats.HuggingFace;

/// <summary>A Hugging Face <c>config.json</c> that cannot be used: the message names the file and the key.</summary>
public sealed class HuggingFaceConfigException(string path, string problem)
    : ModelFormatException($"{System.IO.Path.GetFileName(path)}: {problem}")
{
    public string FilePath { get; } = path;
}

/// <summary>
/// Typed reads of one JSON object of a config file with the library default when a key is omitted or null
/// (transformers treats an explicit null like an omitted key for the fields read here). Errors name the
/// file and the key's full path, e.g. <c>config.json: text_config.hidden_size is "big", expected an integer</c>.
/// </summary>
internal readonly struct ConfigJson(JsonElement element, string path, string prefix)
{
    public string Path => path;

    /// <summary>The dotted path of <paramref name="key"/> in the file, e.g. <c>text_config.rope_theta</c>.</summary>
    public string KeyPath(string key) => prefix + key;

    public HuggingFaceConfigException Error(string problem) => new(path, problem);

    public bool Has(string key) => element.TryGetProperty(key, out var v) && v.ValueKind != JsonValueKind.Null;

    /// <summary>The key is present with the value null.</summary>
    public bool IsExplicitNull(string key) => element.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.Null;

    private bool TryGet(string key, out JsonElement value) =>
        element.TryGetProperty(key, out value) && value.ValueKind != JsonValueKind.Null;

    public int Int(string key, int fallback) => IntOrNull(key) ?? fallback;

    public int? IntOrNull(string key)
    {
        if (!TryGet(key, out var v)) return null;
        return ToInt(v, KeyPath(key));
    }

    private int ToInt(JsonElement v, string keyPath)
    {
        // Python writes ints as ints, but a float holding an integer (4096.0) is accepted too.
        if (v.ValueKind == JsonValueKind.Number)
        {
            if (v.TryGetInt32(out int i)) return i;
            if (v.TryGetDouble(out double d) && d == Math.Floor(d) && d is >= int.MinValue and <= int.MaxValue) return (int)d;
        }
        throw Error($"{keyPath} is {Describe(v)}, expected an integer");
    }

    public double Double(string key, double fallback)
    {
        if (!TryGet(key, out var v)) return fallback;
        if (v.ValueKind == JsonValueKind.Number && v.TryGetDouble(out double d) && double.IsFinite(d)) return d;
        throw Error($"{KeyPath(key)} is {Describe(v)}, expected a number");
    }

    public double? DoubleOrNull(string key) => Has(key) ? Double(key, 0) : null;

    public string String(string key, string fallback) => StringOrNull(key) ?? fallback;

    public string? StringOrNull(string key)
    {
        if (!TryGet(key, out var v)) return null;
        return v.ValueKind == JsonValueKind.String ? v.GetString()! : throw Error($"{KeyPath(key)} is {Describe(v)}, expected a string");
    }

    public bool Bool(string key, bool fallback) => BoolOrNull(key) ?? fallback;

    public bool? BoolOrNull(string key)
    {
        if (!TryGet(key, out var v)) return null;
        return v.ValueKind switch
        {
            JsonValueKind.True => true,
            JsonValueKind.False => false,
            _ => throw Error($"{KeyPath(key)} is {Describe(v)}, expected true or false"),
        };
    }

    /// <summary>An integer or a list of integers (e.g. <c>eos_token_id</c>, <c>vision_feature_layer</c>).</summary>
    public int[]? IntOrIntListOrNull(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind == JsonValueKind.Array)
        {
            var result = new int[v.GetArrayLength()];
            int i = 0;
            foreach (var item in v.EnumerateArray()) result[i] = ToInt(item, $"{KeyPath(key)}[{i++}]");
            return result;
        }
        return [ToInt(v, KeyPath(key))];
    }

    /// <summary>A list of numbers (e.g. <c>image_mean</c>), or null when omitted / null.</summary>
    public double[]? DoubleListOrNull(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Array) throw Error($"{KeyPath(key)} is {Describe(v)}, expected a list of numbers");
        var result = new double[v.GetArrayLength()];
        int i = 0;
        foreach (var item in v.EnumerateArray())
        {
            if (item.ValueKind != JsonValueKind.Number || !item.TryGetDouble(out double d) || !double.IsFinite(d))
                throw Error($"{KeyPath(key)}[{i}] is {Describe(item)}, expected a number");
            result[i++] = d;
        }
        return result;
    }

    /// <summary>The key holds a JSON object (rather than a number, string, list or nothing).</summary>
    public bool IsObject(string key) => TryGet(key, out var v) && v.ValueKind == JsonValueKind.Object;

    /// <summary>A nested object, or null when omitted / null.</summary>
    public ConfigJson? Object(string key)
    {
        if (!TryGet(key, out var v)) return null;
        if (v.ValueKind != JsonValueKind.Object) throw Error($"{KeyPath(key)} is {Describe(v)}, expected an object");
        return new ConfigJson(v, path, KeyPath(key) + ".");
    }

    private static string Describe(JsonElement v) => v.ValueKind switch
    {
        JsonValueKind.String => $"the string \"{v.GetString()}\"",
        JsonValueKind.Object => "an object",
        JsonValueKind.Array => "a list",
        _ => v.GetRawText(),
    };

    /// <summary>Parses <paramref name="path"/> as a JSON object (comments and trailing commas tolerated).</summary>
    public static JsonDocument ParseFile(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(path), new JsonDocumentOptions
            {
                CommentHandling = JsonCommentHandling.Skip, AllowTrailingCommas = true,
            });
        }
        catch (JsonException e)
        {
            throw new HuggingFaceConfigException(path, $"not valid JSON ({e.Message})");
        }
        if (document.RootElement.ValueKind != JsonValueKind.Object)
        {
            var kind = document.RootElement.ValueKind;
            document.Dispose();
            throw new HuggingFaceConfigException(path, $"the file holds a JSON {kind}, expected an object");
        }
        return document;
    }
}
