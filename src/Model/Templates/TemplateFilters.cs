using System.Globalization;
using System.Numerics;
using System.Text;
using System.Text.RegularExpressions;

namespace LlavaNative.Model.Templates;

/// <summary>
/// Jinja2's built-in filters that chat templates use, with Jinja2 3.1's signatures and Python results, plus
/// transformers' <c>tojson</c>. An unknown filter is an error naming it.
/// </summary>
internal static partial class TemplateFilters
{
    private delegate TemplateValue Filter(TemplateValue value, CallArguments args, TemplateInterpreter context);

    private static readonly Dictionary<string, Filter> Filters = new(StringComparer.Ordinal)
    {
        ["abs"] = (v, a, _) => { a.Check("abs"); return Arithmetic.Unary("+", v) is IntValue i ? new IntValue(Math.Abs(i.Value)) : new FloatValue(Math.Abs(((FloatValue)v).Value)); },
        ["attr"] = (v, a, _) => { a.Check("attr", "name"); return Attribute(v, StringMethods.Text(a.Get(0, "name"), "name")); },
        ["batch"] = Batch,
        ["capitalize"] = (v, a, _) => { a.Check("capitalize"); return new StringValue(PythonText.Capitalize(v.ToStr())); },
        ["center"] = (v, a, _) =>
        {
            a.Check("center", "width");
            string s = v.ToStr();
            int width = (int)(a.Get(0, "width") is { } w ? StringMethods.Integer(w, "width") : 80);
            int length = new StringValue(s).CodePointCount;
            if (width <= length) return new StringValue(s);
            int total = width - length;
            int left = total / 2 + (total & width & 1); // CPython's str.center split
            return new StringValue(new string(' ', left) + s + new string(' ', total - left));
        },
        ["count"] = Length,
        ["d"] = Default,
        ["default"] = Default,
        ["dictsort"] = DictSort,
        ["e"] = Escape,
        ["escape"] = Escape,
        ["first"] = (v, a, _) =>
        {
            a.Check("first");
            var items = v.Iterate();
            return items.Count > 0 ? items[0] : UndefinedValue.Named("first item of an empty sequence");
        },
        ["float"] = (v, a, _) => { a.Check("float", "default"); return ToFloat(v) ?? a.Get(0, "default") ?? new FloatValue(0); },
        ["forceescape"] = Escape,
        ["indent"] = Indent,
        ["int"] = (v, a, _) =>
        {
            a.Check("int", "default", "base");
            long numberBase = a.Get(1, "base") is { } b ? StringMethods.Integer(b, "base") : 10;
            return ToInt(v, (int)numberBase) ?? a.Get(0, "default") ?? new IntValue(0);
        },
        ["items"] = (v, a, _) =>
        {
            a.Check("items");
            return v switch
            {
                UndefinedValue => new ListValue([]),
                DictValue d => d.GetAttribute("items") is CallableValue f ? f.Invoke(CallArguments.Empty) : new ListValue([]),
                _ => throw new TemplateRuntimeError("Can only get item pairs from a mapping."),
            };
        },
        ["join"] = (v, a, _) =>
        {
            a.Check("join", "d", "attribute");
            string separator = a.Get(0, "d")?.ToStr() ?? "";
            var items = v.Iterate();
            if (a.Get(1, "attribute") is { } attribute) items = items.Select(AttributeGetter(attribute, null)).ToList();
            return new StringValue(string.Join(separator, items.Select(i => i.ToStr())));
        },
        ["last"] = (v, a, _) =>
        {
            a.Check("last");
            var items = v.Iterate();
            return items.Count > 0 ? items[^1] : UndefinedValue.Named("last item of an empty sequence");
        },
        ["length"] = Length,
        ["list"] = (v, a, _) => { a.Check("list"); return new ListValue(v.Iterate().ToList()); },
        ["lower"] = (v, a, _) => { a.Check("lower"); return new StringValue(v.ToStr().ToLowerInvariant()); },
        ["map"] = Map,
        ["max"] = (v, a, _) => MinMax(v, a, max: true),
        ["min"] = (v, a, _) => MinMax(v, a, max: false),
        ["reject"] = (v, a, _) => Select(v, a, expected: false, byAttribute: false),
        ["rejectattr"] = (v, a, _) => Select(v, a, expected: false, byAttribute: true),
        ["replace"] = (v, a, _) =>
        {
            a.Check("replace", "old", "new", "count");
            long count = a.Get(2, "count") is { } c and not NoneValue ? StringMethods.Integer(c, "count") : -1;
            return new StringValue(PythonText.Replace(v.ToStr(), a.Get(0, "old")?.ToStr() ?? "", a.Get(1, "new")?.ToStr() ?? "", count));
        },
        ["reverse"] = (v, a, _) =>
        {
            a.Check("reverse");
            if (v is StringValue s) return new StringValue(string.Concat(s.CodePoints().Reverse()));
            return new ListValue(v.Iterate().Reverse().ToList());
        },
        ["round"] = Round,
        ["safe"] = (v, a, _) => { a.Check("safe"); return v; },
        ["select"] = (v, a, _) => Select(v, a, expected: true, byAttribute: false),
        ["selectattr"] = (v, a, _) => Select(v, a, expected: true, byAttribute: true),
        ["sort"] = Sort,
        ["string"] = (v, a, _) => { a.Check("string"); return v is StringValue ? v : new StringValue(v.ToStr()); },
        ["sum"] = Sum,
        ["title"] = (v, a, _) => { a.Check("title"); return new StringValue(JinjaTitle(v.ToStr())); },
        ["tojson"] = ToJson,
        ["trim"] = (v, a, _) =>
        {
            a.Check("trim", "chars");
            string? chars = a.Get(0, "chars") is StringValue c ? c.Value : null;
            return new StringValue(PythonText.Strip(v.ToStr(), chars, true, true));
        },
        ["truncate"] = Truncate,
        ["unique"] = Unique,
        ["upper"] = (v, a, _) => { a.Check("upper"); return new StringValue(v.ToStr().ToUpperInvariant()); },
        ["wordcount"] = (v, a, _) => { a.Check("wordcount"); return new IntValue(WordPattern().Matches(v.ToStr()).Count); },
    };

    public static bool Exists(string name) => Filters.ContainsKey(name);

    public static TemplateValue Apply(string name, TemplateValue value, CallArguments args, TemplateInterpreter context)
    {
        if (!Filters.TryGetValue(name, out Filter? filter))
            throw new TemplateRuntimeError($"no filter named '{name}'");
        return filter(value, args, context);
    }

    private static TemplateValue Length(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("length");
        return new IntValue(v.Length());
    }

    private static TemplateValue Default(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("default", "default_value", "boolean");
        TemplateValue fallback = a.Get(0, "default_value") ?? StringValue.Empty;
        bool boolean = a.Get(1, "boolean")?.IsTruthy ?? false;
        return v is UndefinedValue || (boolean && !v.IsTruthy) ? fallback : v;
    }

    private static TemplateValue Escape(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("escape");
        var sb = new StringBuilder();
        foreach (char c in v.ToStr())
        {
            sb.Append(c switch
            {
                '&' => "&amp;",
                '<' => "&lt;",
                '>' => "&gt;",
                '"' => "&#34;",
                '\'' => "&#39;",
                _ => c.ToString(),
            });
        }
        return new StringValue(sb.ToString());
    }

    /// <summary>indent(width=4, first=False, blank=False): Jinja 3.1 splits with str.splitlines after appending "\n".</summary>
    private static TemplateValue Indent(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("indent", "width", "first", "blank");
        TemplateValue width = a.Get(0, "width") ?? new IntValue(4);
        string indentation = width is StringValue ws ? ws.Value : new string(' ', (int)StringMethods.Integer(width, "width"));
        bool first = a.Get(1, "first")?.IsTruthy ?? false;
        bool blank = a.Get(2, "blank")?.IsTruthy ?? false;
        var lines = PythonText.SplitLines(v.ToStr() + "\n", keepEnds: false);
        string result;
        if (blank) result = string.Join("\n" + indentation, lines);
        else
        {
            var sb = new StringBuilder(lines.Count > 0 ? lines[0] : "");
            if (lines.Count > 1)
                sb.Append('\n').Append(string.Join("\n", lines.Skip(1).Select(l => l.Length > 0 ? indentation + l : l)));
            result = sb.ToString();
        }
        return new StringValue(first ? indentation + result : result);
    }

    private static TemplateValue? ToFloat(TemplateValue v) => v switch
    {
        FloatValue => v,
        IntValue i => new FloatValue(i.Value),
        BoolValue b => new FloatValue(b.Value ? 1 : 0),
        StringValue s when double.TryParse(s.Value.Replace("_", "").Trim(), NumberStyles.Float, CultureInfo.InvariantCulture, out double d) => new FloatValue(d),
        StringValue s when PythonText.Strip(s.Value, null, true, true).ToLowerInvariant() is "inf" or "+inf" or "infinity" => new FloatValue(double.PositiveInfinity),
        StringValue s when PythonText.Strip(s.Value, null, true, true).ToLowerInvariant() is "-inf" or "-infinity" => new FloatValue(double.NegativeInfinity),
        _ => null,
    };

    /// <summary>Jinja's int filter: int(value, base) for strings, else int(value), falling back to int(float(value)).</summary>
    private static TemplateValue? ToInt(TemplateValue v, int numberBase)
    {
        switch (v)
        {
            case IntValue: return v;
            case BoolValue b: return new IntValue(b.Value ? 1 : 0);
            case FloatValue f:
                return double.IsFinite(f.Value) && Math.Abs(f.Value) < 9.2e18 ? new IntValue((long)Math.Truncate(f.Value)) : null;
            case StringValue s:
            {
                string text = PythonText.Strip(s.Value, null, true, true).Replace("_", "");
                if (numberBase == 10 && long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long l))
                    return new IntValue(l);
                if (numberBase != 10)
                {
                    try
                    {
                        bool negative = text.StartsWith('-');
                        string digits = text.TrimStart('+', '-');
                        if (numberBase == 16 && digits.StartsWith("0x", StringComparison.OrdinalIgnoreCase)) digits = digits[2..];
                        if (numberBase == 8 && digits.StartsWith("0o", StringComparison.OrdinalIgnoreCase)) digits = digits[2..];
                        if (numberBase == 2 && digits.StartsWith("0b", StringComparison.OrdinalIgnoreCase)) digits = digits[2..];
                        long value = Convert.ToInt64(digits, numberBase);
                        return new IntValue(negative ? -value : value);
                    }
                    catch (Exception e) when (e is FormatException or ArgumentException or OverflowException)
                    {
                        return null;
                    }
                }
                return ToFloat(v) is FloatValue parsed ? ToInt(parsed, 10) : null;
            }
            default: return null;
        }
    }

    /// <summary>Jinja's attr filter: an attribute only (for a dict that is a method, never a key).</summary>
    private static TemplateValue Attribute(TemplateValue v, string name) => v switch
    {
        DictValue d => DictMethods.Bind(d, name) ?? (TemplateValue)UndefinedValue.MissingAttribute(v, name),
        _ => v.GetAttribute(name),
    };

    /// <summary>Jinja's make_attrgetter: "a.b.0" looks up a, then b, then item 0, each by getitem.</summary>
    private static Func<TemplateValue, TemplateValue> AttributeGetter(TemplateValue attribute, TemplateValue? fallback)
    {
        var parts = attribute is IntValue ? [attribute] : attribute.ToStr().Split('.')
            .Select(p => long.TryParse(p, NumberStyles.None, CultureInfo.InvariantCulture, out long i) ? new IntValue(i) : (TemplateValue)new StringValue(p))
            .ToList();
        return item =>
        {
            foreach (TemplateValue part in parts)
            {
                item = item.GetItem(part);
                if (item is UndefinedValue) return fallback ?? item;
            }
            return item;
        };
    }

    private static TemplateValue Map(TemplateValue v, CallArguments a, TemplateInterpreter context)
    {
        if (!v.IsTruthy) return new ListValue([]); // Jinja's do_map starts with "if value:", so none maps to nothing
        var items = v.Iterate();
        if (a.Positional.Count == 0 && a.Keyword.TryGetValue("attribute", out TemplateValue? attribute))
        {
            foreach (string k in a.Keyword.Keys)
                if (k is not ("attribute" or "default")) throw new TemplateRuntimeError($"map() got an unexpected keyword argument '{k}'");
            var get = AttributeGetter(attribute, a.Keyword.TryGetValue("default", out TemplateValue? d) ? d : null);
            return new ListValue(items.Select(get).ToList());
        }
        if (a.Positional.Count == 0) throw new TemplateRuntimeError("map requires a filter name or attribute=");
        string filter = a.Positional[0].ToStr();
        var rest = new CallArguments(a.Positional.Skip(1).ToList(), a.Keyword);
        return new ListValue(items.Select(i => Apply(filter, i, rest, context)).ToList());
    }

    /// <summary>select/reject(test, args…) and selectattr/rejectattr(attribute, test, args…); no test means truthiness.</summary>
    private static TemplateValue Select(TemplateValue v, CallArguments a, bool expected, bool byAttribute)
    {
        if (!v.IsTruthy) return new ListValue([]); // Jinja's select_or_reject starts with "if value:"
        var items = v.Iterate();
        int at = 0;
        Func<TemplateValue, TemplateValue> get = x => x;
        if (byAttribute)
        {
            if (a.Positional.Count == 0) throw new TemplateRuntimeError("selectattr/rejectattr need an attribute name");
            get = AttributeGetter(a.Positional[0], null);
            at = 1;
        }
        Func<TemplateValue, bool> test;
        if (a.Positional.Count > at)
        {
            string name = a.Positional[at].ToStr();
            var testArgs = new CallArguments(a.Positional.Skip(at + 1).ToList(), a.Keyword);
            test = x => TemplateTests.Apply(name, x, testArgs);
        }
        else test = x => x.IsTruthy;
        return new ListValue(items.Where(i => test(get(i)) == expected).ToList());
    }

    private static TemplateValue SortKey(TemplateValue v, bool caseSensitive) =>
        !caseSensitive && v is StringValue s ? new StringValue(s.Value.ToLowerInvariant()) : v;

    private static TemplateValue Sort(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("sort", "reverse", "case_sensitive", "attribute");
        bool reverse = a.Get(0, "reverse")?.IsTruthy ?? false;
        bool caseSensitive = a.Get(1, "case_sensitive")?.IsTruthy ?? false;
        var get = a.Get(2, "attribute") is { } attribute and not NoneValue ? AttributeGetter(attribute, null) : (x => x);
        var items = v.Iterate().ToList();
        var keyed = items.Select(i => (Key: SortKey(get(i), caseSensitive), Item: i)).ToList();
        // List.Sort is unstable; OrderBy is stable like Python's sorted().
        var sorted = reverse
            ? keyed.OrderByDescending(k => k.Key, Comparer<TemplateValue>.Create(TemplateValue.Compare))
            : keyed.OrderBy(k => k.Key, Comparer<TemplateValue>.Create(TemplateValue.Compare));
        return new ListValue(sorted.Select(k => k.Item).ToList());
    }

    private static TemplateValue DictSort(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("dictsort", "case_sensitive", "by", "reverse");
        if (v is not DictValue d) throw new TemplateRuntimeError("dictsort needs a dict");
        bool caseSensitive = a.Get(0, "case_sensitive")?.IsTruthy ?? false;
        string by = a.Get(1, "by")?.ToStr() ?? "key";
        if (by is not ("key" or "value")) throw new TemplateRuntimeError("You can only sort by either \"key\" or \"value\"");
        bool reverse = a.Get(2, "reverse")?.IsTruthy ?? false;
        var pairs = d.Entries.Select(kv => (kv.Key, kv.Value)).ToList();
        var comparer = Comparer<TemplateValue>.Create(TemplateValue.Compare);
        Func<(TemplateValue Key, TemplateValue Value), TemplateValue> key = p => SortKey(by == "key" ? p.Key : p.Value, caseSensitive);
        var sorted = reverse ? pairs.OrderByDescending(key, comparer) : pairs.OrderBy(key, comparer);
        return new ListValue(sorted.Select(p => (TemplateValue)new ListValue([p.Key, p.Value], isTuple: true)).ToList());
    }

    private static TemplateValue Unique(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("unique", "case_sensitive", "attribute");
        bool caseSensitive = a.Get(0, "case_sensitive")?.IsTruthy ?? false;
        var get = a.Get(1, "attribute") is { } attribute and not NoneValue ? AttributeGetter(attribute, null) : (x => x);
        var seen = new List<TemplateValue>();
        var result = new List<TemplateValue>();
        foreach (TemplateValue item in v.Iterate())
        {
            TemplateValue key = SortKey(get(item), caseSensitive);
            if (seen.Any(s => TemplateValue.AreEqual(s, key))) continue;
            seen.Add(key);
            result.Add(item);
        }
        return new ListValue(result);
    }

    private static TemplateValue MinMax(TemplateValue v, CallArguments a, bool max)
    {
        a.Check(max ? "max" : "min", "case_sensitive", "attribute");
        bool caseSensitive = a.Get(0, "case_sensitive")?.IsTruthy ?? false;
        var get = a.Get(1, "attribute") is { } attribute and not NoneValue ? AttributeGetter(attribute, null) : (x => x);
        var items = v.Iterate();
        if (items.Count == 0) return UndefinedValue.Named("aggregated item of an empty sequence");
        TemplateValue best = items[0];
        foreach (TemplateValue item in items.Skip(1))
        {
            int c = TemplateValue.Compare(SortKey(get(item), caseSensitive), SortKey(get(best), caseSensitive));
            if (max ? c > 0 : c < 0) best = item;
        }
        return best;
    }

    private static TemplateValue Sum(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("sum", "attribute", "start");
        var get = a.Get(0, "attribute") is { } attribute and not NoneValue ? AttributeGetter(attribute, null) : (x => x);
        TemplateValue total = a.Get(1, "start") ?? new IntValue(0);
        foreach (TemplateValue item in v.Iterate()) total = Arithmetic.Binary("+", total, get(item));
        return total;
    }

    private static TemplateValue Batch(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("batch", "linecount", "fill_with");
        long size = a.Get(0, "linecount") is { } n ? StringMethods.Integer(n, "linecount") : throw new TemplateRuntimeError("batch() needs linecount");
        if (size <= 0) throw new TemplateRuntimeError("batch() linecount must be positive");
        TemplateValue? fill = a.Get(1, "fill_with") is { } f and not NoneValue ? f : null;
        var batches = new List<TemplateValue>();
        var items = v.Iterate();
        for (int i = 0; i < items.Count; i += (int)size)
        {
            var chunk = items.Skip(i).Take((int)size).ToList();
            while (fill is not null && chunk.Count < size) chunk.Add(fill);
            batches.Add(new ListValue(chunk));
        }
        return new ListValue(batches);
    }

    /// <summary>round(precision=0, method='common'|'ceil'|'floor'); 'common' is Python's round (half to even).</summary>
    private static TemplateValue Round(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("round", "precision", "method");
        int precision = (int)(a.Get(0, "precision") is { } p ? StringMethods.Integer(p, "precision") : 0);
        string method = a.Get(1, "method")?.ToStr() ?? "common";
        if (!v.TryGetNumber(out double x, out long i, out bool isInt))
            throw new TemplateRuntimeError($"type {v.TypeName} doesn't define __round__ method");
        double scale = Math.Pow(10, precision);
        switch (method)
        {
            case "common":
                if (isInt) return new IntValue(i);
                return new FloatValue(PythonRound(x, precision));
            case "ceil": return new FloatValue(Math.Ceiling(x * scale) / scale);
            case "floor": return new FloatValue(Math.Floor(x * scale) / scale);
            default: throw new TemplateRuntimeError("method must be 'common', 'ceil' or 'floor'");
        }
    }

    /// <summary>
    /// Python's round(x, n): the exact binary value rounded half-to-even at n decimals (so round(2.675, 2) is 2.67,
    /// because 2.675 is stored as 2.67499999…), then read back as the nearest double.
    /// </summary>
    internal static double PythonRound(double x, int digits)
    {
        if (!double.IsFinite(x) || x == 0) return x;
        long bits = BitConverter.DoubleToInt64Bits(Math.Abs(x));
        int exponent = (int)((bits >> 52) & 0x7FF);
        long mantissa = bits & 0xFFFFFFFFFFFFFL;
        if (exponent == 0) exponent = 1; else mantissa |= 1L << 52;
        exponent -= 1075; // |x| = mantissa × 2^exponent
        BigInteger numerator = new BigInteger(mantissa) << Math.Max(exponent, 0);
        BigInteger denominator = BigInteger.One << Math.Max(-exponent, 0);
        if (digits >= 0) numerator *= BigInteger.Pow(10, digits);
        else denominator *= BigInteger.Pow(10, -digits);
        BigInteger quotient = BigInteger.DivRem(numerator, denominator, out BigInteger remainder);
        int half = (remainder * 2).CompareTo(denominator);
        if (half > 0 || (half == 0 && !quotient.IsEven)) quotient += 1;
        double rounded = double.Parse($"{quotient}E{-digits}", NumberStyles.Float, CultureInfo.InvariantCulture);
        return x < 0 ? -rounded : rounded;
    }

    private static TemplateValue Truncate(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("truncate", "length", "killwords", "end", "leeway");
        var points = new StringValue(v.ToStr()).CodePoints();
        long length = a.Get(0, "length") is { } l ? StringMethods.Integer(l, "length") : 255;
        bool killWords = a.Get(1, "killwords")?.IsTruthy ?? false;
        string end = a.Get(2, "end")?.ToStr() ?? "...";
        long leeway = a.Get(3, "leeway") is { } w and not NoneValue ? StringMethods.Integer(w, "leeway") : 5;
        if (points.Count <= length + leeway) return new StringValue(string.Concat(points));
        string head = string.Concat(points.Take((int)Math.Max(0, length - end.Length)));
        if (killWords) return new StringValue(head + end);
        int space = head.LastIndexOf(' ');
        return new StringValue((space >= 0 ? head[..space] : head) + end);
    }

    /// <summary>transformers' tojson(x, ensure_ascii=False, indent=None, separators=None, sort_keys=False).</summary>
    private static TemplateValue ToJson(TemplateValue v, CallArguments a, TemplateInterpreter _)
    {
        a.Check("tojson", "ensure_ascii", "indent", "separators", "sort_keys");
        bool ensureAscii = a.Get(0, "ensure_ascii")?.IsTruthy ?? false;
        string? indent = a.Get(1, "indent") switch
        {
            null or NoneValue => null,
            StringValue s => s.Value,
            IntValue n => new string(' ', (int)Math.Max(0, n.Value)),
            var x => throw new TemplateRuntimeError($"indent must be an int or a string, not {x.TypeName}"),
        };
        string itemSeparator = indent is null ? ", " : ",", keySeparator = ": ";
        if (a.Get(2, "separators") is ListValue { Items.Count: 2 } separators)
        {
            itemSeparator = separators.Items[0].ToStr();
            keySeparator = separators.Items[1].ToStr();
        }
        else if (a.Get(2, "separators") is { } bad and not NoneValue)
            throw new TemplateRuntimeError("separators must be a pair (item_separator, key_separator)");
        bool sortKeys = a.Get(3, "sort_keys")?.IsTruthy ?? false;
        return new StringValue(TemplateJson.Serialize(v, ensureAscii, indent, itemSeparator, keySeparator, sortKeys));
    }

    /// <summary>Jinja's title filter: words start after '-', white space, '(', '{', '[', '&lt;'; first letter up, rest down.</summary>
    private static string JinjaTitle(string s)
    {
        var sb = new StringBuilder(s.Length);
        foreach (string item in WordBeginning().Split(s))
        {
            if (item.Length == 0) continue;
            var points = new StringValue(item).CodePoints();
            sb.Append(points[0].ToUpperInvariant()).Append(string.Concat(points.Skip(1)).ToLowerInvariant());
        }
        return sb.ToString();
    }

    [GeneratedRegex(@"([-\s({\[<]+)")]
    private static partial Regex WordBeginning();

    [GeneratedRegex(@"\w+")]
    private static partial Regex WordPattern();
}

/// <summary>Jinja2's built-in tests (<c>is defined</c>, <c>is string</c>, <c>is equalto</c>, …) with Python results.</summary>
internal static class TemplateTests
{
    public static bool Apply(string name, TemplateValue v, CallArguments a)
    {
        TemplateValue Arg() => a.Get(0, "other") ?? a.Get(0, "value") ?? a.Get(0, "num")
                               ?? throw new TemplateRuntimeError($"test '{name}' needs an argument");
        switch (name)
        {
            case "defined": return v is not UndefinedValue;
            case "undefined": return v is UndefinedValue;
            case "none": return v is NoneValue;
            case "boolean": return v is BoolValue;
            case "true": return v is BoolValue { Value: true };
            case "false": return v is BoolValue { Value: false };
            case "integer": return v is IntValue;
            case "float": return v is FloatValue;
            case "number": return v is IntValue or FloatValue or BoolValue;
            case "string": return v is StringValue;
            case "mapping": return v is DictValue;
            case "sequence": return v is StringValue or ListValue or DictValue or UndefinedValue;
            case "iterable": return v is StringValue or ListValue or DictValue or UndefinedValue;
            case "callable": return v is CallableValue;
            case "escaped": return false;
            case "lower": { string s = v.ToStr(); return s.Any(char.IsLower) && !s.Any(char.IsUpper); }
            case "upper": { string s = v.ToStr(); return s.Any(char.IsUpper) && !s.Any(char.IsLower); }
            case "odd": return Integer(v, name) % 2 != 0;
            case "even": return Integer(v, name) % 2 == 0;
            case "divisibleby":
            {
                TemplateValue remainder = Arithmetic.Binary("%", v, Arg());
                return !remainder.IsTruthy;
            }
            case "sameas":
            {
                TemplateValue other = Arg();
                return ReferenceEquals(v, other) || (v is NoneValue && other is NoneValue)
                       || (v is BoolValue b && other is BoolValue c && b.Value == c.Value);
            }
            case "in": return Arithmetic.Contains(Arg(), v);
            case "filter": return TemplateFilters.Exists(v.ToStr());
            case "test": return IsTest(v.ToStr());
            case "==" or "eq" or "equalto": return Arithmetic.Compare("==", v, Arg());
            case "!=" or "ne": return Arithmetic.Compare("!=", v, Arg());
            case ">" or "gt" or "greaterthan": return Arithmetic.Compare(">", v, Arg());
            case ">=" or "ge": return Arithmetic.Compare(">=", v, Arg());
            case "<" or "lt" or "lessthan": return Arithmetic.Compare("<", v, Arg());
            case "<=" or "le": return Arithmetic.Compare("<=", v, Arg());
            default: throw new TemplateRuntimeError($"no test named '{name}'");
        }
    }

    private static readonly HashSet<string> Names =
    [
        "defined", "undefined", "none", "boolean", "true", "false", "integer", "float", "number", "string", "mapping",
        "sequence", "iterable", "callable", "escaped", "lower", "upper", "odd", "even", "divisibleby", "sameas", "in",
        "filter", "test", "==", "eq", "equalto", "!=", "ne", ">", "gt", "greaterthan", ">=", "ge", "<", "lt", "lessthan", "<=", "le",
    ];

    private static bool IsTest(string name) => Names.Contains(name);

    private static long Integer(TemplateValue v, string test) => v is IntValue or BoolValue && v.TryGetNumber(out _, out long i, out _)
        ? i : throw new TemplateRuntimeError($"test '{test}' needs an integer, got {v.TypeName}");
}
