using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Templates;

/// <summary>
/// Python's <c>str.format</c> (which Jinja's sandbox allows): <c>{}</c>, <c>{0}</c>, <c>{name}</c>, <c>{0.attr}</c>,
/// <c>{0[key]}</c>, conversions <c>!s</c>/<c>!r</c>, and the format spec
/// <c>[[fill]align][sign][0][width][,|_][.precision][type]</c> for strings, ints (d x X o b) and floats (f e g %).
/// </summary>
internal static class PythonStringFormat
{
    public static string Format(string format, CallArguments args)
    {
        var sb = new StringBuilder();
        int autoIndex = 0;
        for (int i = 0; i < format.Length; i++)
        {
            char c = format[i];
            if (c == '}')
            {
                if (i + 1 < format.Length && format[i + 1] == '}') { sb.Append('}'); i++; continue; }
                throw new TemplateRuntimeError("Single '}' encountered in format string");
            }
            if (c != '{') { sb.Append(c); continue; }
            if (i + 1 < format.Length && format[i + 1] == '{') { sb.Append('{'); i++; continue; }
            int end = format.IndexOf('}', i + 1);
            if (end < 0) throw new TemplateRuntimeError("Single '{' encountered in format string");
            string field = format[(i + 1)..end];
            if (field.Contains('{')) throw new TemplateRuntimeError("nested replacement fields in a format spec are not supported");
            sb.Append(ReplaceField(field, args, ref autoIndex));
            i = end;
        }
        return sb.ToString();
    }

    private static string ReplaceField(string field, CallArguments args, ref int autoIndex)
    {
        string spec = "";
        int colon = field.IndexOf(':');
        if (colon >= 0) { spec = field[(colon + 1)..]; field = field[..colon]; }
        char conversion = '\0';
        int bang = field.IndexOf('!');
        if (bang >= 0)
        {
            if (bang != field.Length - 2) throw new TemplateRuntimeError("expected ':' after conversion specifier");
            conversion = field[^1];
            field = field[..bang];
        }
        int nameEnd = 0;
        while (nameEnd < field.Length && field[nameEnd] is not ('.' or '[')) nameEnd++;
        string name = field[..nameEnd];
        TemplateValue value;
        if (name.Length == 0)
        {
            value = autoIndex < args.Positional.Count ? args.Positional[autoIndex]
                : throw new TemplateRuntimeError($"Replacement index {autoIndex} out of range for positional args tuple");
            autoIndex++;
        }
        else if (int.TryParse(name, NumberStyles.None, CultureInfo.InvariantCulture, out int index))
            value = index < args.Positional.Count ? args.Positional[index]
                : throw new TemplateRuntimeError($"Replacement index {index} out of range for positional args tuple");
        else
            value = args.Keyword.TryGetValue(name, out TemplateValue? v) ? v : throw new TemplateRuntimeError($"KeyError: '{name}'");

        for (int i = nameEnd; i < field.Length;)
        {
            if (field[i] == '.')
            {
                int j = i + 1;
                while (j < field.Length && field[j] is not ('.' or '[')) j++;
                value = value.GetAttribute(field[(i + 1)..j]);
                i = j;
            }
            else
            {
                int close = field.IndexOf(']', i);
                if (close < 0) throw new TemplateRuntimeError("Missing ']' in format string");
                string key = field[(i + 1)..close];
                value = value.GetItem(int.TryParse(key, NumberStyles.None, CultureInfo.InvariantCulture, out int k) ? new IntValue(k) : new StringValue(key));
                i = close + 1;
            }
        }
        if (value is UndefinedValue u) throw new TemplateRuntimeError(u.Reason);

        switch (conversion)
        {
            case '\0': break;
            case 's': value = new StringValue(value.ToStr()); break;
            case 'r': value = new StringValue(value.Repr()); break;
            default: throw new TemplateRuntimeError($"Unknown conversion specifier {conversion}");
        }
        return FormatValue(value, spec);
    }

    /// <summary>Python's format(value, spec).</summary>
    public static string FormatValue(TemplateValue value, string spec)
    {
        if (spec.Length == 0) return value.ToStr();
        int p = 0;
        char fill = ' ', align = '\0', sign = '-', grouping = '\0', type = '\0';
        bool zero = false;
        int width = -1, precision = -1;
        if (spec.Length >= 2 && spec[1] is '<' or '>' or '^' or '=') { fill = spec[0]; align = spec[1]; p = 2; }
        else if (spec[0] is '<' or '>' or '^' or '=') { align = spec[0]; p = 1; }
        if (p < spec.Length && spec[p] is '+' or '-' or ' ') sign = spec[p++];
        if (p < spec.Length && spec[p] == '0') { zero = true; p++; }
        int start = p;
        while (p < spec.Length && char.IsAsciiDigit(spec[p])) p++;
        if (p > start) width = int.Parse(spec[start..p], CultureInfo.InvariantCulture);
        if (p < spec.Length && spec[p] is ',' or '_') grouping = spec[p++];
        if (p < spec.Length && spec[p] == '.')
        {
            start = ++p;
            while (p < spec.Length && char.IsAsciiDigit(spec[p])) p++;
            if (p == start) throw new TemplateRuntimeError("Format specifier missing precision");
            precision = int.Parse(spec[start..p], CultureInfo.InvariantCulture);
        }
        if (p < spec.Length) type = spec[p++];
        if (p != spec.Length) throw new TemplateRuntimeError($"Invalid format specifier '{spec}'");
        if (zero && align == '\0') { fill = '0'; align = '='; }

        string body;
        bool numeric = value is IntValue or FloatValue or BoolValue;
        string signText = "";
        switch (value)
        {
            case StringValue s:
                if (type is not ('\0' or 's')) throw new TemplateRuntimeError($"Unknown format code '{type}' for object of type 'str'");
                body = precision >= 0 ? string.Concat(s.CodePoints().Take(precision)) : s.Value;
                if (align == '\0') align = '<';
                break;
            case IntValue or BoolValue when type is '\0' or 'd' or 'x' or 'X' or 'o' or 'b' or 'n':
            {
                value.TryGetNumber(out _, out long n, out _);
                if (precision >= 0) throw new TemplateRuntimeError("Precision not allowed in integer format specifier");
                ulong magnitude = n < 0 ? (ulong)(-(n + 1)) + 1 : (ulong)n;
                body = type switch
                {
                    'x' => magnitude.ToString("x", CultureInfo.InvariantCulture),
                    'X' => magnitude.ToString("X", CultureInfo.InvariantCulture),
                    'o' => Convert.ToString((long)magnitude, 8),
                    'b' => Convert.ToString((long)magnitude, 2),
                    _ => magnitude.ToString(CultureInfo.InvariantCulture),
                };
                if (grouping != '\0') body = Group(body, grouping);
                signText = n < 0 ? "-" : sign is '+' ? "+" : sign is ' ' ? " " : "";
                break;
            }
            case IntValue or FloatValue or BoolValue:
            {
                value.TryGetNumber(out double x, out _, out _);
                double magnitude = Math.Abs(x);
                int digits = precision >= 0 ? precision : 6;
                body = type switch
                {
                    'f' or 'F' => magnitude.ToString("F" + digits, CultureInfo.InvariantCulture),
                    'e' or 'E' => ExponentForm(magnitude, digits, type),
                    '%' => (magnitude * 100).ToString("F" + digits, CultureInfo.InvariantCulture) + "%",
                    'g' or 'G' or '\0' when precision < 0 && type == '\0' => value is FloatValue ? PythonFloat.Repr(magnitude) : ((long)magnitude).ToString(CultureInfo.InvariantCulture),
                    'g' or 'G' or '\0' => GeneralForm(magnitude, Math.Max(digits, 1), type == '\0'),
                    _ => throw new TemplateRuntimeError($"Unknown format code '{type}' for object of type '{value.TypeName}'"),
                };
                if (grouping != '\0')
                {
                    int dot = body.IndexOfAny(['.', 'e', 'E', '%']);
                    body = dot < 0 ? Group(body, grouping) : Group(body[..dot], grouping) + body[dot..];
                }
                signText = double.IsNegative(x) ? "-" : sign is '+' ? "+" : sign is ' ' ? " " : "";
                break;
            }
            default:
                throw new TemplateRuntimeError($"unsupported format string passed to {value.TypeName}.__format__");
        }
        if (align == '\0') align = numeric ? '>' : '<';
        int padding = Math.Max(0, width - new StringValue(signText + body).CodePointCount);
        return align switch
        {
            '<' => signText + body + new string(fill, padding),
            '>' => new string(fill, padding) + signText + body,
            '^' => new string(fill, padding / 2) + signText + body + new string(fill, padding - padding / 2),
            _ => signText + new string(fill, padding) + body, // '=': padding after the sign
        };
    }

    private static string Group(string digits, char separator)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < digits.Length; i++)
        {
            if (i > 0 && (digits.Length - i) % 3 == 0) sb.Append(separator);
            sb.Append(digits[i]);
        }
        return sb.ToString();
    }

    private static string ExponentForm(double x, int digits, char type)
    {
        string s = x.ToString((type == 'E' ? "E" : "e") + digits, CultureInfo.InvariantCulture); // 1.500000e+003
        int e = s.IndexOfAny(['e', 'E']);
        int exponent = int.Parse(s[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        return s[..(e + 1)] + (exponent < 0 ? "-" : "+") + Math.Abs(exponent).ToString("00", CultureInfo.InvariantCulture);
    }

    /// <summary>'g': precision significant digits, fixed or exponent form by the exponent, trailing zeros dropped.</summary>
    private static string GeneralForm(double x, int precision, bool keepPointZero)
    {
        if (x == 0) return keepPointZero ? "0.0" : "0";
        int exponent = (int)Math.Floor(Math.Log10(x));
        string rounded = x.ToString("E" + (precision - 1), CultureInfo.InvariantCulture);
        exponent = int.Parse(rounded[(rounded.IndexOf('E') + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        string result;
        if (exponent >= -4 && exponent < precision)
            result = x.ToString("F" + Math.Max(0, precision - 1 - exponent), CultureInfo.InvariantCulture);
        else
            result = ExponentForm(x, precision - 1, 'e');
        int e = result.IndexOf('e');
        string mantissa = e < 0 ? result : result[..e], tail = e < 0 ? "" : result[e..];
        if (mantissa.Contains('.')) mantissa = mantissa.TrimEnd('0').TrimEnd('.');
        if (keepPointZero && !mantissa.Contains('.') && tail.Length == 0) mantissa += ".0";
        return mantissa + tail;
    }
}
