namespace LlavaNative.Model.Templates;

/// <summary>
/// A chat template that cannot be parsed or rendered: names the template, the 1-based line and column of the
/// construct at fault, and what went wrong, e.g.
/// <c>TemplateException: chat template 'llava-1.5', line 3, column 12: unexpected 'endfor', expected 'endif'</c>.
/// A template's own <c>raise_exception('...')</c> also ends up here, with <see cref="RaisedByTemplate"/> set.
/// </summary>
public sealed class TemplateException : Exception
{
    public TemplateException(string templateName, int line, int column, string problem, bool raisedByTemplate = false,
        Exception? inner = null)
        : base(Describe(templateName, line, column, problem), inner)
    {
        TemplateName = templateName;
        Line = line;
        Column = column;
        Problem = problem;
        RaisedByTemplate = raisedByTemplate;
    }

    public string TemplateName { get; }

    /// <summary>1-based line of the construct at fault (0 when not known).</summary>
    public int Line { get; }

    /// <summary>1-based column of the construct at fault (0 when not known).</summary>
    public int Column { get; }

    /// <summary>The message without the location prefix.</summary>
    public string Problem { get; }

    /// <summary>True when the template itself called <c>raise_exception</c>.</summary>
    public bool RaisedByTemplate { get; }

    private static string Describe(string name, int line, int column, string problem) =>
        line > 0 ? $"chat template '{name}', line {line}, column {column}: {problem}" : $"chat template '{name}': {problem}";
}

/// <summary>
/// A render-time error raised deep inside a value operation, before the interpreter knows where in the template
/// it happened; the interpreter catches it and rethrows as <see cref="TemplateException"/> with the position.
/// </summary>
internal sealed class TemplateRuntimeError(string message, bool raisedByTemplate = false) : Exception(message)
{
    public bool RaisedByTemplate { get; } = raisedByTemplate;
}
