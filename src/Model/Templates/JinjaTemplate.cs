using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Templates;

/// <summary>
/// A parsed Jinja2 template rendered the way transformers renders chat templates: <c>trim_blocks</c> and
/// <c>lstrip_blocks</c> on, default (lenient) undefined, immutable lists and dicts, the loopcontrols extension
/// (<c>break</c>/<c>continue</c>), the <c>{% generation %}</c> tag, transformers' <c>tojson</c>, and the globals
/// <c>raise_exception</c>, <c>strftime_now</c>, <c>range</c>, <c>namespace</c>, <c>dict</c>, <c>joiner</c>.
/// Parsing happens once; <see cref="Render"/> may be called any number of times.
/// Not supported (each is a clear error, not a silent difference): include/extends/import/block, recursive
/// loops, printf-style <c>'%s' % x</c> and the <c>format</c> filter, the groupby/slice/pprint/random/urlize/
/// wordwrap/xmlattr filters, cycler. Integers are 64-bit (overflow is an error), and upper()/lower() use simple
/// case mapping (Python's 'ß'.upper() is "SS", ours "ß").
/// </summary>
public sealed class JinjaTemplate
{
    private readonly TemplateSource _source;
    private readonly IReadOnlyList<Node> _body;

    private JinjaTemplate(TemplateSource source, IReadOnlyList<Node> body)
    {
        _source = source;
        _body = body;
    }

    /// <summary>The name used in error messages (a built-in template's name, a file path, "chat_template").</summary>
    public string Name => _source.Name;

    /// <exception cref="TemplateException">The template has a syntax error (message names line and column).</exception>
    public static JinjaTemplate Parse(string source, string name = "template")
    {
        ArgumentNullException.ThrowIfNull(source);
        var text = new TemplateSource(name, source);
        return new JinjaTemplate(text, TemplateParser.Parse(text));
    }

    /// <summary>
    /// Renders with the given variables (converted by <see cref="TemplateValue.From(object?)"/>).
    /// <paramref name="clock"/> supplies local time for <c>strftime_now</c> (default: <see cref="DateTime.Now"/>).
    /// </summary>
    /// <exception cref="TemplateException">Rendering failed, or the template called <c>raise_exception</c>.</exception>
    public string Render(IReadOnlyDictionary<string, object?> variables, Func<DateTime>? clock = null)
    {
        ArgumentNullException.ThrowIfNull(variables);
        var interpreter = new TemplateInterpreter(_source, clock ?? (() => DateTime.Now));
        var globals = new Scope(null);
        TemplateGlobals.Install(globals, interpreter);
        var context = new Scope(globals);
        foreach (var (name, value) in variables) context.Set(name, TemplateValue.From(value));
        return interpreter.Render(_body, context);
    }
}

/// <summary>The functions a template can call without being given them.</summary>
internal static class TemplateGlobals
{
    private const long MaxRange = 100_000; // Jinja's sandbox refuses larger ranges

    public static void Install(Scope scope, TemplateInterpreter interpreter)
    {
        scope.Set("range", new CallableValue("range", Range));
        scope.Set("namespace", new CallableValue("namespace", a =>
        {
            var attributes = new OrderedDictionary<string, TemplateValue>(StringComparer.Ordinal);
            foreach (var (k, v) in Mapping("namespace", a))
                attributes[k is StringValue s ? s.Value : throw new TemplateRuntimeError("namespace attribute names must be strings")] = v;
            return new NamespaceValue(attributes);
        }));
        scope.Set("dict", new CallableValue("dict", a => new DictValue(Mapping("dict", a))));
        scope.Set("joiner", new CallableValue("joiner", a =>
        {
            a.Check("joiner", "sep");
            string separator = a.Get(0, "sep")?.ToStr() ?? ", ";
            bool used = false;
            return new CallableValue("joiner", _ =>
            {
                if (!used) { used = true; return StringValue.Empty; }
                return new StringValue(separator);
            });
        }));
        scope.Set("raise_exception", new CallableValue("raise_exception", a =>
            throw new TemplateRuntimeError(a.Positional.Count > 0 ? a.Positional[0].ToStr() : "raise_exception() called", raisedByTemplate: true)));
        scope.Set("strftime_now", new CallableValue("strftime_now", a =>
        {
            a.Check("strftime_now", "format");
            return new StringValue(Strftime.Format(interpreter.Clock(), StringMethods.Text(a.Get(0, "format"), "format")));
        }));
    }

    private static TemplateValue Range(CallArguments a)
    {
        if (a.Keyword.Count > 0) throw new TemplateRuntimeError("range() takes no keyword arguments");
        var n = a.Positional.Select(p => StringMethods.Integer(p, "range argument")).ToArray();
        (long start, long stop, long step) = n.Length switch
        {
            1 => (0L, n[0], 1L),
            2 => (n[0], n[1], 1L),
            3 => (n[0], n[1], n[2]),
            _ => throw new TemplateRuntimeError($"range expected 1 to 3 arguments, got {n.Length}"),
        };
        if (step == 0) throw new TemplateRuntimeError("range() arg 3 must not be zero");
        var items = new List<TemplateValue>();
        for (long i = start; step > 0 ? i < stop : i > stop; i += step)
        {
            if (items.Count >= MaxRange) throw new TemplateRuntimeError($"range too big, maximum size for range is {MaxRange}");
            items.Add(new IntValue(i));
        }
        return new ListValue(items);
    }

    /// <summary>dict(...)/namespace(...): a mapping or (key, value) pairs, then keyword arguments.</summary>
    private static OrderedDictionary<TemplateValue, TemplateValue> Mapping(string function, CallArguments a)
    {
        var entries = DictValue.NewEntries();
        if (a.Positional.Count > 1) throw new TemplateRuntimeError($"{function} expected at most 1 argument, got {a.Positional.Count}");
        if (a.Positional.Count == 1)
        {
            switch (a.Positional[0])
            {
                case DictValue d:
                    foreach (var (k, v) in d.Entries) entries[k] = v;
                    break;
                case var other:
                    foreach (TemplateValue pair in other.Iterate())
                    {
                        var kv = pair.Iterate();
                        if (kv.Count != 2) throw new TemplateRuntimeError($"{function}: each item must be a (key, value) pair");
                        entries[kv[0]] = kv[1];
                    }
                    break;
            }
        }
        foreach (var (k, v) in a.Keyword) entries[new StringValue(k)] = v;
        return entries;
    }
}

/// <summary>Python's datetime.strftime for the directives templates use (English names, as the C locale).</summary>
internal static class Strftime
{
    private static readonly string[] Days = ["Sunday", "Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday"];
    private static readonly string[] Months =
        ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"];

    public static string Format(DateTime t, string format)
    {
        var sb = new StringBuilder();
        for (int i = 0; i < format.Length; i++)
        {
            if (format[i] != '%' || i + 1 >= format.Length) { sb.Append(format[i]); continue; }
            char c = format[++i];
            bool noPad = false;
            if (c == '-' && i + 1 < format.Length) { noPad = true; c = format[++i]; }
            string Num(int value, int width) => noPad ? value.ToString(CultureInfo.InvariantCulture)
                : value.ToString(new string('0', width), CultureInfo.InvariantCulture);
            sb.Append(c switch
            {
                'Y' => t.Year.ToString(CultureInfo.InvariantCulture),
                'y' => Num(t.Year % 100, 2),
                'm' => Num(t.Month, 2),
                'd' => Num(t.Day, 2),
                'e' => t.Day.ToString(CultureInfo.InvariantCulture).PadLeft(2),
                'H' => Num(t.Hour, 2),
                'I' => Num(t.Hour % 12 == 0 ? 12 : t.Hour % 12, 2),
                'M' => Num(t.Minute, 2),
                'S' => Num(t.Second, 2),
                'f' => (t.Ticks % TimeSpan.TicksPerSecond / 10).ToString("000000", CultureInfo.InvariantCulture),
                'p' => t.Hour < 12 ? "AM" : "PM",
                'j' => Num(t.DayOfYear, 3),
                'a' => Days[(int)t.DayOfWeek][..3],
                'A' => Days[(int)t.DayOfWeek],
                'w' => ((int)t.DayOfWeek).ToString(CultureInfo.InvariantCulture),
                'b' or 'h' => Months[t.Month - 1][..3],
                'B' => Months[t.Month - 1],
                'F' => t.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture),
                'T' => t.ToString("HH:mm:ss", CultureInfo.InvariantCulture),
                '%' => "%",
                _ => "%" + (noPad ? "-" : "") + c,
            });
        }
        return sb.ToString();
    }
}
