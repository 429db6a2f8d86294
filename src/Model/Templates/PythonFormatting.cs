using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Templates;

/// <summary>Python's <c>repr()</c> of a string: single quotes unless the text has ' and no ".</summary>
internal static class PythonRepr
{
    public static string String(string value)
    {
        char quote = value.Contains('\'') && !value.Contains('"') ? '"' : '\'';
        var sb = new StringBuilder(value.Length + 2).Append(quote);
        foreach (Rune r in value.EnumerateRunes())
        {
            int c = r.Value;
            if (c == quote || c == '\\') sb.Append('\\').Append((char)c);
            else if (c == '\n') sb.Append("\\n");
            else if (c == '\r') sb.Append("\\r");
            else if (c == '\t') sb.Append("\\t");
            else if (IsPrintable(r)) sb.Append(r.ToString());
            else if (c < 0x100) sb.Append("\\x").Append(c.ToString("x2", CultureInfo.InvariantCulture));
            else if (c < 0x10000) sb.Append("\\u").Append(c.ToString("x4", CultureInfo.InvariantCulture));
            else sb.Append("\\U").Append(c.ToString("x8", CultureInfo.InvariantCulture));
        }
        return sb.Append(quote).ToString();
    }

    /// <summary>Python's str.isprintable for one code point: not Cc, Cf, Cs, Co, Cn, Zl, Zp, or Zs other than ' '.</summary>
    private static bool IsPrintable(Rune r)
    {
        if (r.Value == ' ') return true;
        return Rune.GetUnicodeCategory(r) switch
        {
            UnicodeCategory.Control or UnicodeCategory.Format or UnicodeCategory.Surrogate
                or UnicodeCategory.PrivateUse or UnicodeCategory.OtherNotAssigned
                or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator
                or UnicodeCategory.SpaceSeparator => false,
            _ => true,
        };
    }
}

/// <summary>
/// Python's <c>repr(float)</c>: the shortest digits that round-trip, fixed notation when the decimal exponent is
/// in [-4, 16), else "1.5e-05" / "1e+16"; whole numbers keep ".0"; "inf", "-inf", "nan".
/// </summary>
internal static class PythonFloat
{
    public static string Repr(double value)
    {
        if (double.IsNaN(value)) return "nan";
        if (double.IsPositiveInfinity(value)) return "inf";
        if (double.IsNegativeInfinity(value)) return "-inf";
        if (value == 0) return double.IsNegative(value) ? "-0.0" : "0.0";

        // "R" gives the shortest round-trip digits; take them apart into digits and a decimal exponent.
        string shortest = Math.Abs(value).ToString("R", CultureInfo.InvariantCulture);
        string mantissa = shortest;
        int exponent = 0;
        int e = shortest.IndexOfAny(['E', 'e']);
        if (e >= 0)
        {
            mantissa = shortest[..e];
            exponent = int.Parse(shortest[(e + 1)..], NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture);
        }
        int dot = mantissa.IndexOf('.');
        string digits = dot < 0 ? mantissa : mantissa.Remove(dot, 1);
        int pointAt = (dot < 0 ? mantissa.Length : dot) + exponent; // value = 0.digits × 10^pointAt
        int leadingZeros = digits.Length - digits.TrimStart('0').Length;
        digits = digits.Trim('0');
        pointAt -= leadingZeros;
        if (digits.Length == 0) digits = "0";

        var sb = new StringBuilder();
        if (value < 0) sb.Append('-');
        if (pointAt > -4 && pointAt <= 16)
        {
            if (pointAt <= 0) sb.Append("0.").Append('0', -pointAt).Append(digits);
            else if (pointAt >= digits.Length) sb.Append(digits).Append('0', pointAt - digits.Length).Append(".0");
            else sb.Append(digits, 0, pointAt).Append('.').Append(digits, pointAt, digits.Length - pointAt);
        }
        else
        {
            sb.Append(digits[0]);
            if (digits.Length > 1) sb.Append('.').Append(digits, 1, digits.Length - 1);
            int exp = pointAt - 1;
            sb.Append('e').Append(exp < 0 ? '-' : '+').Append(Math.Abs(exp).ToString("00", CultureInfo.InvariantCulture));
        }
        return sb.ToString();
    }
}
