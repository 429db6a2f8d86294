using System.Globalization;

namespace LlavaNative.Cli;

/// <summary>A command-line mistake: printed with the verb's usage, exit code 2.</summary>
public sealed class UsageException(string message) : Exception(message);

/// <summary>One option a verb accepts.</summary>
public sealed record OptionSpec(string[] Names, string? ValueName, string Help, bool Repeatable = false)
{
    public bool TakesValue => ValueName != null;
    public string Display => string.Join(", ", Names) + (ValueName is null ? "" : " " + ValueName);
}

/// <summary>Options of one invocation, checked against the verb's <see cref="OptionSpec"/> list.</summary>
public sealed class ParsedArguments
{
    private readonly Dictionary<string, List<string>> _values = new();
    private readonly HashSet<string> _flags = new();

    public ParsedArguments(IReadOnlyList<string> args, IReadOnlyList<OptionSpec> specs)
    {
        for (int i = 0; i < args.Count; i++)
        {
            string arg = args[i];
            string? inlineValue = null;
            if (arg.StartsWith("--", StringComparison.Ordinal) && arg.Contains('='))
            {
                inlineValue = arg[(arg.IndexOf('=') + 1)..];
                arg = arg[..arg.IndexOf('=')];
            }
            var spec = specs.FirstOrDefault(s => s.Names.Contains(arg))
                ?? throw new UsageException(arg.StartsWith('-') ? $"unknown option '{arg}'" : $"unexpected argument '{arg}'");
            string key = spec.Names[0];
            if (!spec.TakesValue)
            {
                _flags.Add(key);
                continue;
            }
            string value = inlineValue ?? (i + 1 < args.Count ? args[++i] : throw new UsageException($"option {arg} needs a value ({spec.ValueName})"));
            if (!_values.TryGetValue(key, out var list)) _values[key] = list = [];
            if (list.Count > 0 && !spec.Repeatable) throw new UsageException($"option {arg} given more than once");
            list.Add(value);
        }
    }

    public bool Has(string name) => _flags.Contains(name) || _values.ContainsKey(name);

    public string? Get(string name) => _values.TryGetValue(name, out var l) ? l[^1] : null;

    public IReadOnlyList<string> GetAll(string name) => _values.TryGetValue(name, out var l) ? l : [];

    public string Require(string name, string what) => Get(name) ?? throw new UsageException($"missing {name} ({what})");

    public int GetInt(string name, int fallback, int min = int.MinValue, int max = int.MaxValue)
    {
        string? v = Get(name);
        if (v == null) return fallback;
        if (!int.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out int x))
            throw new UsageException($"{name} expects an integer, got '{v}'");
        if (x < min || x > max) throw new UsageException($"{name} must be between {min} and {max}, got {x}");
        return x;
    }

    public float GetFloat(string name, float fallback)
    {
        string? v = Get(name);
        if (v == null) return fallback;
        if (!float.TryParse(v, NumberStyles.Float, CultureInfo.InvariantCulture, out float x) || !float.IsFinite(x))
            throw new UsageException($"{name} expects a number, got '{v}'");
        return x;
    }

    public ulong? GetSeed(string name)
    {
        string? v = Get(name);
        if (v == null) return null;
        if (long.TryParse(v, NumberStyles.Integer, CultureInfo.InvariantCulture, out long s))
            return s < 0 ? null : (ulong)s; // -1 = random, as llama.cpp
        throw new UsageException($"{name} expects an integer, got '{v}'");
    }
}
