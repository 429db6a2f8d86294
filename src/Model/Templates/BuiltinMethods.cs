using System.Text;

namespace LlavaNative.Model.Templates;

/// <summary>Python <c>str</c> methods templates call: <c>message['content'].strip()</c>, <c>role.upper()</c>, …</summary>
internal static class StringMethods
{
    public static CallableValue? Bind(StringValue self, string name)
    {
        string s = self.Value;
        Func<CallArguments, TemplateValue>? f = name switch
        {
            "upper" => a => { a.Check(name); return new StringValue(s.ToUpperInvariant()); },
            "lower" => a => { a.Check(name); return new StringValue(s.ToLowerInvariant()); },
            "casefold" => a => { a.Check(name); return new StringValue(s.ToLowerInvariant()); },
            "title" => a => { a.Check(name); return new StringValue(PythonText.Title(s)); },
            "capitalize" => a => { a.Check(name); return new StringValue(PythonText.Capitalize(s)); },
            "swapcase" => a => { a.Check(name); return new StringValue(PythonText.SwapCase(s)); },
            "strip" => a => { a.Check(name, "chars"); return new StringValue(PythonText.Strip(s, Chars(a), true, true)); },
            "lstrip" => a => { a.Check(name, "chars"); return new StringValue(PythonText.Strip(s, Chars(a), true, false)); },
            "rstrip" => a => { a.Check(name, "chars"); return new StringValue(PythonText.Strip(s, Chars(a), false, true)); },
            "startswith" => a => { a.Check(name, "prefix"); return TemplateValue.From(Affix(a, name, p => s.StartsWith(p, StringComparison.Ordinal))); },
            "endswith" => a => { a.Check(name, "suffix"); return TemplateValue.From(Affix(a, name, p => s.EndsWith(p, StringComparison.Ordinal))); },
            "split" => a => { a.Check(name, "sep", "maxsplit"); return Strings(PythonText.Split(s, Separator(a), MaxSplit(a))); },
            "rsplit" => a => { a.Check(name, "sep", "maxsplit"); return Strings(PythonText.RSplit(s, Separator(a), MaxSplit(a))); },
            "splitlines" => a => { a.Check(name, "keepends"); return Strings(PythonText.SplitLines(s, a.Get(0, "keepends")?.IsTruthy ?? false)); },
            "replace" => a =>
            {
                a.Check(name, "old", "new", "count");
                long count = a.Get(2, "count") is { } c ? Integer(c, "count") : -1;
                return new StringValue(PythonText.Replace(s, Text(a.Get(0, "old"), "old"), Text(a.Get(1, "new"), "new"), count));
            },
            "find" => a => { a.Check(name, "sub"); return TemplateValue.From((long)PythonText.CodePointIndex(s, s.IndexOf(Text(a.Get(0, "sub"), "sub"), StringComparison.Ordinal))); },
            "rfind" => a => { a.Check(name, "sub"); return TemplateValue.From((long)PythonText.CodePointIndex(s, s.LastIndexOf(Text(a.Get(0, "sub"), "sub"), StringComparison.Ordinal))); },
            "count" => a => { a.Check(name, "sub"); return TemplateValue.From(PythonText.Count(s, Text(a.Get(0, "sub"), "sub"))); },
            "join" => a =>
            {
                a.Check(name, "iterable");
                TemplateValue items = a.Get(0, "iterable") ?? throw new TemplateRuntimeError("join() takes exactly one argument");
                return new StringValue(string.Join(s, items.Iterate().Select(i => i is StringValue t ? t.Value
                    : throw new TemplateRuntimeError($"sequence item: expected str instance, {i.TypeName} found"))));
            },
            "format" => a => new StringValue(PythonStringFormat.Format(s, a)),
            "center" => a =>
            {
                a.Check(name, "width", "fillchar");
                long width = a.Get(0, "width") is { } w ? Integer(w, "width") : throw new TemplateRuntimeError("center() takes at least 1 argument");
                string fill = a.Get(1, "fillchar")?.ToStr() ?? " ";
                int length = self.CodePointCount;
                if (width <= length) return self;
                long total = width - length, left = total / 2 + (total & width & 1);
                return new StringValue(string.Concat(Enumerable.Repeat(fill, (int)left)) + s + string.Concat(Enumerable.Repeat(fill, (int)(total - left))));
            },
            "zfill" => a =>
            {
                a.Check(name, "width");
                int width = (int)(a.Get(0, "width") is { } w ? Integer(w, "width") : 0);
                int length = self.CodePointCount;
                if (width <= length) return self;
                int signAt = s.Length > 0 && s[0] is '+' or '-' ? 1 : 0;
                return new StringValue(s[..signAt] + new string('0', width - length) + s[signAt..]);
            },
            "removeprefix" => a => { a.Check(name, "prefix"); string p = Text(a.Get(0, "prefix"), "prefix"); return new StringValue(s.StartsWith(p, StringComparison.Ordinal) ? s[p.Length..] : s); },
            "removesuffix" => a => { a.Check(name, "suffix"); string p = Text(a.Get(0, "suffix"), "suffix"); return new StringValue(p.Length > 0 && s.EndsWith(p, StringComparison.Ordinal) ? s[..^p.Length] : s); },
            "isdigit" => a => { a.Check(name); return TemplateValue.From(s.Length > 0 && s.EnumerateRunes().All(Rune.IsDigit)); },
            "isnumeric" => a => { a.Check(name); return TemplateValue.From(s.Length > 0 && s.EnumerateRunes().All(Rune.IsNumber)); },
            "isalpha" => a => { a.Check(name); return TemplateValue.From(s.Length > 0 && s.EnumerateRunes().All(Rune.IsLetter)); },
            "isalnum" => a => { a.Check(name); return TemplateValue.From(s.Length > 0 && s.EnumerateRunes().All(Rune.IsLetterOrDigit)); },
            "isspace" => a => { a.Check(name); return TemplateValue.From(s.Length > 0 && s.All(PythonText.IsSpace)); },
            "islower" => a => { a.Check(name); return TemplateValue.From(s.Any(char.IsLower) && !s.Any(char.IsUpper)); },
            "isupper" => a => { a.Check(name); return TemplateValue.From(s.Any(char.IsUpper) && !s.Any(char.IsLower)); },
            _ => null,
        };
        return f is null ? null : new CallableValue($"str.{name}", f);
    }

    private static string? Chars(CallArguments a) => a.Get(0, "chars") switch
    {
        null or NoneValue => null,
        StringValue c => c.Value,
        var v => throw new TemplateRuntimeError($"strip arg must be None or str, not {v.TypeName}"),
    };

    private static string? Separator(CallArguments a) => a.Get(0, "sep") switch
    {
        null or NoneValue => null,
        StringValue { Value.Length: 0 } => throw new TemplateRuntimeError("empty separator"),
        StringValue c => c.Value,
        var v => throw new TemplateRuntimeError($"must be str or None, not {v.TypeName}"),
    };

    private static long MaxSplit(CallArguments a) => a.Get(1, "maxsplit") is { } m ? Integer(m, "maxsplit") : -1;

    private static bool Affix(CallArguments a, string name, Func<string, bool> test)
    {
        TemplateValue? arg = a.Positional.Count > 0 ? a.Positional[0]
            : a.Keyword.TryGetValue(name == "startswith" ? "prefix" : "suffix", out TemplateValue? k) ? k : null;
        return arg switch
        {
            StringValue p => test(p.Value),
            ListValue { IsTuple: true } t => t.Items.Any(i => i is StringValue p ? test(p.Value)
                : throw new TemplateRuntimeError($"tuple for {name} must only contain str, not {i.TypeName}")),
            null => throw new TemplateRuntimeError($"{name}() takes at least 1 argument (0 given)"),
            _ => throw new TemplateRuntimeError($"{name} first arg must be str or a tuple of str, not {arg.TypeName}"),
        };
    }

    internal static string Text(TemplateValue? v, string what) => v switch
    {
        StringValue s => s.Value,
        null => throw new TemplateRuntimeError($"missing required argument '{what}'"),
        _ => throw new TemplateRuntimeError($"'{what}' must be str, not {v.TypeName}"),
    };

    internal static long Integer(TemplateValue v, string what) => v is IntValue or BoolValue && v.TryGetNumber(out _, out long i, out _)
        ? i : throw new TemplateRuntimeError($"'{what}' must be an integer, not {v.TypeName}");

    private static ListValue Strings(IEnumerable<string> parts) =>
        new(parts.Select(p => (TemplateValue)new StringValue(p)).ToList());
}

/// <summary>The read-only dict methods: <c>items</c>, <c>keys</c>, <c>values</c>, <c>get</c>.</summary>
internal static class DictMethods
{
    private static readonly HashSet<string> Mutating = ["pop", "popitem", "setdefault", "update", "clear"];

    public static CallableValue? Bind(DictValue self, string name)
    {
        var d = self.Entries;
        Func<CallArguments, TemplateValue>? f = name switch
        {
            "items" => a => { a.Check(name); return new ListValue(d.Select(kv => (TemplateValue)new ListValue([kv.Key, kv.Value], isTuple: true)).ToList()); },
            "keys" => a => { a.Check(name); return new ListValue(d.Keys.ToList()); },
            "values" => a => { a.Check(name); return new ListValue(d.Values.ToList()); },
            "get" => a =>
            {
                a.Check(name, "key", "default");
                TemplateValue key = a.Get(0, "key") ?? throw new TemplateRuntimeError("get expected at least 1 argument, got 0");
                return PythonKeyComparer.IsHashable(key) && d.TryGetValue(key, out TemplateValue? v) ? v : a.Get(1, "default") ?? TemplateValue.None;
            },
            "copy" => a => { a.Check(name); return new DictValue(new OrderedDictionary<TemplateValue, TemplateValue>(d, PythonKeyComparer.Instance)); },
            _ when Mutating.Contains(name) => _ => throw new TemplateRuntimeError(
                $"access to attribute '{name}' of 'dict' object is unsafe (chat templates render in an immutable sandbox)"),
            _ => null,
        };
        return f is null ? null : new CallableValue($"dict.{name}", f);
    }
}

/// <summary>The read-only list methods: <c>index</c>, <c>count</c>.</summary>
internal static class SequenceMethods
{
    private static readonly HashSet<string> Mutating = ["append", "extend", "insert", "pop", "remove", "reverse", "sort", "clear"];

    public static CallableValue? Bind(ListValue self, string name)
    {
        var items = self.Items;
        Func<CallArguments, TemplateValue>? f = name switch
        {
            "index" => a =>
            {
                a.Check(name, "value");
                TemplateValue x = a.Get(0, "value") ?? throw new TemplateRuntimeError("index expected 1 argument, got 0");
                for (int i = 0; i < items.Count; i++)
                    if (TemplateValue.AreEqual(items[i], x)) return TemplateValue.From((long)i);
                throw new TemplateRuntimeError($"{x.Repr()} is not in list");
            },
            "count" => a =>
            {
                a.Check(name, "value");
                TemplateValue x = a.Get(0, "value") ?? throw new TemplateRuntimeError("count expected 1 argument, got 0");
                return TemplateValue.From((long)items.Count(i => TemplateValue.AreEqual(i, x)));
            },
            _ when !self.IsTuple && Mutating.Contains(name) => _ => throw new TemplateRuntimeError(
                $"access to attribute '{name}' of 'list' object is unsafe (chat templates render in an immutable sandbox)"),
            _ => null,
        };
        return f is null ? null : new CallableValue($"{self.TypeName}.{name}", f);
    }
}

/// <summary>Python string algorithms whose details differ from .NET's: whitespace set, split, title, …</summary>
internal static class PythonText
{
    /// <summary>str.isspace for one UTF-16 unit: .NET's white space plus the separators U+001C..U+001F.</summary>
    public static bool IsSpace(char c) => char.IsWhiteSpace(c) || (c >= '\x1c' && c <= '\x1f');

    public static string Strip(string s, string? chars, bool left, bool right)
    {
        Func<char, bool> strip = chars is null ? IsSpace : c => chars.Contains(c);
        int start = 0, end = s.Length;
        if (left) while (start < end && strip(s[start])) start++;
        if (right) while (end > start && strip(s[end - 1])) end--;
        return s[start..end];
    }

    public static List<string> Split(string s, string? sep, long maxSplit)
    {
        var parts = new List<string>();
        if (sep is null)
        {
            int i = 0;
            while (true)
            {
                while (i < s.Length && IsSpace(s[i])) i++;
                if (i >= s.Length) break;
                if (maxSplit >= 0 && parts.Count >= maxSplit)
                {
                    parts.Add(Strip(s[i..], null, false, true));
                    break;
                }
                int j = i;
                while (j < s.Length && !IsSpace(s[j])) j++;
                parts.Add(s[i..j]);
                i = j;
            }
            return parts;
        }
        int from = 0;
        while (maxSplit < 0 || parts.Count < maxSplit)
        {
            int at = s.IndexOf(sep, from, StringComparison.Ordinal);
            if (at < 0) break;
            parts.Add(s[from..at]);
            from = at + sep.Length;
        }
        parts.Add(s[from..]);
        return parts;
    }

    public static List<string> RSplit(string s, string? sep, long maxSplit)
    {
        if (maxSplit < 0) return Split(s, sep, maxSplit);
        var parts = new List<string>();
        if (sep is null)
        {
            int end = s.Length;
            while (true)
            {
                while (end > 0 && IsSpace(s[end - 1])) end--;
                if (end == 0) break;
                if (parts.Count >= maxSplit)
                {
                    parts.Add(Strip(s[..end], null, true, false));
                    break;
                }
                int start = end;
                while (start > 0 && !IsSpace(s[start - 1])) start--;
                parts.Add(s[start..end]);
                end = start;
            }
            parts.Reverse();
            return parts;
        }
        int to = s.Length;
        while (parts.Count < maxSplit)
        {
            int at = to - sep.Length < 0 ? -1 : s.LastIndexOf(sep, to - 1, to, StringComparison.Ordinal);
            if (at < 0 || at + sep.Length > to) break;
            parts.Add(s[(at + sep.Length)..to]);
            to = at;
        }
        parts.Add(s[..to]);
        parts.Reverse();
        return parts;
    }

    /// <summary>str.splitlines: \n, \r, \r\n, \v, \f, U+001C..U+001E, U+0085, U+2028, U+2029 end lines.</summary>
    public static List<string> SplitLines(string s, bool keepEnds)
    {
        var lines = new List<string>();
        int start = 0, i = 0;
        while (i < s.Length)
        {
            char c = s[i];
            bool isBreak = c is '\n' or '\r' or '\v' or '\f' or '\x1c' or '\x1d' or '\x1e' or '\x85' or '\u2028' or '\u2029';
            if (!isBreak) { i++; continue; }
            int next = c == '\r' && i + 1 < s.Length && s[i + 1] == '\n' ? i + 2 : i + 1;
            lines.Add(s[start..(keepEnds ? next : i)]);
            start = i = next;
        }
        if (start < s.Length) lines.Add(s[start..]);
        return lines;
    }

    public static string Replace(string s, string old, string replacement, long count)
    {
        if (count == 0) return s;
        var sb = new StringBuilder();
        if (old.Length == 0)
        {
            // Python inserts the replacement before every code point and at the end.
            long done = 0;
            foreach (Rune r in s.EnumerateRunes())
            {
                if (count < 0 || done < count) { sb.Append(replacement); done++; }
                sb.Append(r.ToString());
            }
            if (count < 0 || done < count) sb.Append(replacement);
            return sb.ToString();
        }
        int from = 0;
        long n = 0;
        while (count < 0 || n < count)
        {
            int at = s.IndexOf(old, from, StringComparison.Ordinal);
            if (at < 0) break;
            sb.Append(s, from, at - from).Append(replacement);
            from = at + old.Length;
            n++;
        }
        return sb.Append(s, from, s.Length - from).ToString();
    }

    public static long Count(string s, string sub)
    {
        if (sub.Length == 0) return new StringValue(s).CodePointCount + 1;
        long n = 0;
        for (int at = s.IndexOf(sub, StringComparison.Ordinal); at >= 0; at = s.IndexOf(sub, at + sub.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    /// <summary>A UTF-16 index → code point index (for find/rfind); -1 stays -1.</summary>
    public static int CodePointIndex(string s, int utf16Index)
    {
        if (utf16Index <= 0) return utf16Index;
        int surrogatesBefore = 0;
        for (int i = 0; i < utf16Index; i++) if (char.IsLowSurrogate(s[i])) surrogatesBefore++;
        return utf16Index - surrogatesBefore;
    }

    private static bool IsCased(Rune r) => Rune.IsUpper(r) || Rune.IsLower(r) || Rune.GetUnicodeCategory(r) == System.Globalization.UnicodeCategory.TitlecaseLetter;

    /// <summary>str.title: a cased character after a cased one goes lower case, any other cased one upper case.</summary>
    public static string Title(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool previousCased = false;
        foreach (Rune r in s.EnumerateRunes())
        {
            if (IsCased(r))
            {
                sb.Append((previousCased ? Rune.ToLowerInvariant(r) : Rune.ToUpperInvariant(r)).ToString());
                previousCased = true;
            }
            else
            {
                sb.Append(r.ToString());
                previousCased = false;
            }
        }
        return sb.ToString();
    }

    /// <summary>str.capitalize: first code point upper case, the rest lower case.</summary>
    public static string Capitalize(string s)
    {
        var sb = new StringBuilder(s.Length);
        bool first = true;
        foreach (Rune r in s.EnumerateRunes())
        {
            sb.Append((first ? Rune.ToUpperInvariant(r) : Rune.ToLowerInvariant(r)).ToString());
            first = false;
        }
        return sb.ToString();
    }

    public static string SwapCase(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (Rune r in s.EnumerateRunes())
            sb.Append((Rune.IsUpper(r) ? Rune.ToLowerInvariant(r) : Rune.IsLower(r) ? Rune.ToUpperInvariant(r) : r).ToString());
        return sb.ToString();
    }
}
