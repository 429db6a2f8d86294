using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Templates;

/// <summary>
/// The <c>tojson</c> filter as transformers defines it: Python's
/// <c>json.dumps(x, ensure_ascii=False, indent=indent, separators=separators, sort_keys=sort_keys)</c>
/// (not Jinja's HTML-escaping tojson). Separators default to ", " and ": ", or "," and ": " when indenting;
/// with ensure_ascii=False only '"', '\\' and control characters are escaped.
/// </summary>
internal static class TemplateJson
{
    public static string Serialize(TemplateValue value, bool ensureAscii, string? indent, string itemSeparator, string keySeparator, bool sortKeys)
    {
        var sb = new StringBuilder();
        Write(sb, value, ensureAscii, indent, itemSeparator, keySeparator, sortKeys, 0);
        return sb.ToString();
    }

    private static void Write(StringBuilder sb, TemplateValue value, bool ascii, string? indent, string itemSep, string keySep, bool sortKeys, int depth)
    {
        switch (value)
        {
            case NoneValue: sb.Append("null"); return;
            case BoolValue b: sb.Append(b.Value ? "true" : "false"); return;
            case IntValue i: sb.Append(i.Value.ToString(CultureInfo.InvariantCulture)); return;
            case FloatValue f:
                sb.Append(double.IsNaN(f.Value) ? "NaN" : double.IsPositiveInfinity(f.Value) ? "Infinity"
                    : double.IsNegativeInfinity(f.Value) ? "-Infinity" : PythonFloat.Repr(f.Value));
                return;
            case StringValue s: WriteString(sb, s.Value, ascii); return;
            case ListValue l:
                if (l.Items.Count == 0) { sb.Append("[]"); return; }
                sb.Append('[');
                for (int k = 0; k < l.Items.Count; k++)
                {
                    if (k > 0) sb.Append(itemSep);
                    NewLine(sb, indent, depth + 1);
                    Write(sb, l.Items[k], ascii, indent, itemSep, keySep, sortKeys, depth + 1);
                }
                NewLine(sb, indent, depth);
                sb.Append(']');
                return;
            case DictValue d:
            {
                if (d.Entries.Count == 0) { sb.Append("{}"); return; }
                // json.dumps turns int, float, bool and None keys into strings; other keys are an error.
                IEnumerable<(string Key, TemplateValue Value)> entries = d.Entries.Select(e => (JsonKey(e.Key), e.Value));
                if (sortKeys) entries = entries.OrderBy(e => e.Key, Comparer<string>.Create((a, b) => TemplateValue.Compare(new StringValue(a), new StringValue(b))));
                sb.Append('{');
                bool first = true;
                foreach (var (k, v) in entries)
                {
                    if (!first) sb.Append(itemSep);
                    first = false;
                    NewLine(sb, indent, depth + 1);
                    WriteString(sb, k, ascii);
                    sb.Append(keySep);
                    Write(sb, v, ascii, indent, itemSep, keySep, sortKeys, depth + 1);
                }
                NewLine(sb, indent, depth);
                sb.Append('}');
                return;
            }
            default:
                throw new TemplateRuntimeError(value is UndefinedValue u
                    ? $"Object of type Undefined is not JSON serializable ({u.Reason})"
                    : $"Object of type {value.TypeName} is not JSON serializable");
        }
    }

    private static string JsonKey(TemplateValue key) => key switch
    {
        StringValue s => s.Value,
        BoolValue b => b.Value ? "true" : "false",
        NoneValue => "null",
        IntValue i => i.Value.ToString(CultureInfo.InvariantCulture),
        FloatValue f => double.IsNaN(f.Value) ? "NaN" : double.IsInfinity(f.Value) ? (f.Value > 0 ? "Infinity" : "-Infinity") : PythonFloat.Repr(f.Value),
        _ => throw new TemplateRuntimeError($"keys must be str, int, float, bool or None, not {key.TypeName}"),
    };

    private static void NewLine(StringBuilder sb, string? indent, int depth)
    {
        if (indent is null) return;
        sb.Append('\n');
        for (int i = 0; i < depth; i++) sb.Append(indent);
    }

    private static void WriteString(StringBuilder sb, string s, bool ascii)
    {
        sb.Append('"');
        foreach (char c in s)
        {
            switch (c)
            {
                case '"': sb.Append("\\\""); break;
                case '\\': sb.Append("\\\\"); break;
                case '\n': sb.Append("\\n"); break;
                case '\r': sb.Append("\\r"); break;
                case '\t': sb.Append("\\t"); break;
                case '\b': sb.Append("\\b"); break;
                case '\f': sb.Append("\\f"); break;
                default:
                    // ensure_ascii escapes everything outside ' '..'~' (UTF-16 units, so astral characters become pairs).
                    if (c < ' ' || (ascii && c > '~')) sb.Append("\\u").Append(((int)c).ToString("x4", CultureInfo.InvariantCulture));
                    else sb.Append(c);
                    break;
            }
        }
        sb.Append('"');
    }
}
