using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Templates;

internal enum TokenKind
{
    Text,          // literal template text, whitespace control already applied
    VariableBegin, // {{
    VariableEnd,   // }}
    BlockBegin,    // {%
    BlockEnd,      // %}
    Name,
    String,        // value already unescaped
    Integer,
    Float,
    Operator,      // + - * / // % ** ~ == != < <= > >= = . : | , ( ) [ ] { }
    End,
}

internal readonly record struct Token(TokenKind Kind, string Value, int Offset)
{
    public bool Is(TokenKind kind, string value) => Kind == kind && Value == value;
    public bool IsName(string name) => Kind == TokenKind.Name && Value == name;
    public bool IsOperator(string op) => Kind == TokenKind.Operator && Value == op;

    public string Describe() => Kind switch
    {
        TokenKind.End => "end of template",
        TokenKind.Text => "template text",
        TokenKind.VariableBegin => "'{{'",
        TokenKind.VariableEnd => "'}}'",
        TokenKind.BlockBegin => "'{%'",
        TokenKind.BlockEnd => "'%}'",
        TokenKind.String => $"string {PythonRepr.String(Value)}",
        _ => $"'{Value}'",
    };
}

/// <summary>
/// The template source after Jinja's newline handling: "\r\n" and "\r" become "\n", and one trailing newline is
/// dropped (keep_trailing_newline=False). Maps offsets back to 1-based line and column for error messages.
/// </summary>
internal sealed class TemplateSource
{
    private readonly int[] _lineStarts;

    public TemplateSource(string name, string text)
    {
        Name = name;
        string normalized = text.Replace("\r\n", "\n").Replace('\r', '\n');
        if (normalized.EndsWith('\n')) normalized = normalized[..^1];
        Text = normalized;
        var starts = new List<int> { 0 };
        for (int i = 0; i < Text.Length; i++)
            if (Text[i] == '\n') starts.Add(i + 1);
        _lineStarts = [.. starts];
    }

    public string Name { get; }
    public string Text { get; }

    public (int Line, int Column) Position(int offset)
    {
        int line = Array.BinarySearch(_lineStarts, offset);
        if (line < 0) line = ~line - 1;
        return (line + 1, offset - _lineStarts[line] + 1);
    }

    public TemplateException Error(int offset, string problem)
    {
        var (line, column) = Position(offset);
        return new TemplateException(Name, line, column, problem);
    }
}

/// <summary>
/// Splits a template into text and tag tokens the way Jinja2's lexer does with Hugging Face's settings
/// (<c>trim_blocks=True</c>, <c>lstrip_blocks=True</c>):
/// <list type="bullet">
/// <item><c>{%-</c> / <c>{{-</c> / <c>{#-</c> strip all white space before the tag; <c>-%}</c> / <c>-}}</c> / <c>-#}</c> after it.</item>
/// <item>lstrip_blocks: spaces and tabs between a line start and a <c>{%</c> or <c>{#</c> are dropped (not before <c>{{</c>);
/// <c>{%+</c> turns that off for one tag.</item>
/// <item>trim_blocks: the first newline after <c>%}</c> or <c>#}</c> is dropped (not after <c>}}</c>); <c>+%}</c> keeps it.</item>
/// <item><c>{% raw %}…{% endraw %}</c> is passed through as text.</item>
/// <item>Inside a tag, <c>}}</c> and <c>%}</c> only end it when brackets are balanced, so <c>{{ {'a': {'b': 1}} }}</c> works.</item>
/// </list>
/// </summary>
internal sealed class TemplateLexer
{
    private static readonly string[] Operators =
        ["//", "**", "==", "!=", ">=", "<=", "+", "-", "/", "*", "%", "~", "[", "]", "(", ")", "{", "}", ">", "<", "=", ".", ":", "|", ",", ";"];

    private readonly TemplateSource _source;
    private readonly string _s;
    private readonly List<Token> _tokens = [];
    private int _pos;
    private bool _lineStarting = true;

    private TemplateLexer(TemplateSource source)
    {
        _source = source;
        _s = source.Text;
    }

    public static List<Token> Tokenize(TemplateSource source)
    {
        var lexer = new TemplateLexer(source);
        lexer.Run();
        return lexer._tokens;
    }

    private void Run()
    {
        while (_pos < _s.Length)
        {
            int start = FindTagStart(_pos);
            if (start < 0)
            {
                AddText(_s[_pos..], _pos);
                _pos = _s.Length;
                break;
            }
            char kind = _s[start + 1];
            char control = start + 2 < _s.Length && _s[start + 2] is '-' or '+' ? _s[start + 2] : '\0';
            string text = ApplyLeftWhitespaceControl(_s[_pos..start], kind, control);
            AddText(text, _pos);

            int afterOpen = start + 2 + (control != '\0' ? 1 : 0);
            if (kind == '#') LexComment(start, afterOpen);
            else if (kind == '%' && TryLexRaw(start, afterOpen)) { }
            else LexTag(start, afterOpen, kind == '{');
        }
        _tokens.Add(new Token(TokenKind.End, "", _s.Length));
    }

    private int FindTagStart(int from)
    {
        for (int i = _s.IndexOf('{', from); i >= 0 && i + 1 < _s.Length; i = _s.IndexOf('{', i + 1))
            if (_s[i + 1] is '{' or '%' or '#') return i;
        return -1;
    }

    private void AddText(string text, int offset)
    {
        if (text.Length > 0) _tokens.Add(new Token(TokenKind.Text, text, offset));
    }

    /// <summary>'-' strips all white space before the tag; otherwise lstrip_blocks for block and comment tags.</summary>
    private string ApplyLeftWhitespaceControl(string text, char kind, char control)
    {
        if (control == '-') return PythonText.Strip(text, null, false, true);
        if (control == '+' || kind == '{') return text;
        int lineStart = text.LastIndexOf('\n') + 1;
        if (lineStart == 0 && !_lineStarting) return text;
        for (int i = lineStart; i < text.Length; i++)
            if (text[i] is not (' ' or '\t')) return text;
        return text[..lineStart];
    }

    /// <summary>After a tag's end marker: '-' eats all white space, '+' nothing, else trim_blocks eats one newline.</summary>
    private void ApplyRightWhitespaceControl(char control, bool trimBlock)
    {
        int before = _pos;
        if (control == '-')
            while (_pos < _s.Length && PythonText.IsSpace(_s[_pos])) _pos++;
        else if (control != '+' && trimBlock && _pos < _s.Length && _s[_pos] == '\n')
            _pos++;
        _lineStarting = _pos > before ? _s[_pos - 1] == '\n' : _lineStarting;
    }

    private void LexComment(int start, int afterOpen)
    {
        int end = _s.IndexOf("#}", afterOpen, StringComparison.Ordinal);
        if (end < 0) throw _source.Error(start, "unclosed comment: '{#' without '#}'");
        char control = end > afterOpen && _s[end - 1] is '-' or '+' ? _s[end - 1] : '\0';
        _pos = end + 2;
        _lineStarting = false;
        ApplyRightWhitespaceControl(control, trimBlock: true);
    }

    /// <summary>{% raw %}…{% endraw %}: everything between is text. Jinja does not trim_blocks after "raw %}".</summary>
    private bool TryLexRaw(int start, int afterOpen)
    {
        int i = SkipSpaces(afterOpen);
        if (!MatchWord(i, "raw")) return false;
        i = SkipSpaces(i + 3);
        char openEndControl = '\0';
        if (i < _s.Length && _s[i] == '-') { openEndControl = '-'; i++; }
        if (!(i + 1 < _s.Length && _s[i] == '%' && _s[i + 1] == '}')) return false;
        _pos = i + 2;
        if (openEndControl == '-')
            while (_pos < _s.Length && PythonText.IsSpace(_s[_pos])) _pos++;

        for (int at = _s.IndexOf("{%", _pos, StringComparison.Ordinal); at >= 0; at = _s.IndexOf("{%", at + 2, StringComparison.Ordinal))
        {
            int j = at + 2;
            char control = j < _s.Length && _s[j] is '-' or '+' ? _s[j] : '\0';
            if (control != '\0') j++;
            j = SkipSpaces(j);
            if (!MatchWord(j, "endraw")) continue;
            j = SkipSpaces(j + 6);
            char closeControl = j < _s.Length && _s[j] is '-' or '+' ? _s[j] : '\0';
            if (closeControl != '\0') j++;
            if (!(j + 1 < _s.Length && _s[j] == '%' && _s[j + 1] == '}')) continue;
            _lineStarting = _pos > 0 && _s[_pos - 1] == '\n';
            AddText(ApplyLeftWhitespaceControl(_s[_pos..at], '%', control), _pos);
            _pos = j + 2;
            _lineStarting = false;
            ApplyRightWhitespaceControl(closeControl, trimBlock: true);
            return true;
        }
        throw _source.Error(start, "unclosed raw block: '{% raw %}' without '{% endraw %}'");
    }

    private int SkipSpaces(int i)
    {
        while (i < _s.Length && PythonText.IsSpace(_s[i])) i++;
        return i;
    }

    private bool MatchWord(int i, string word) =>
        string.CompareOrdinal(_s, i, word, 0, word.Length) == 0
        && (i + word.Length >= _s.Length || !IsNameChar(_s[i + word.Length]));

    private static bool IsNameStart(char c) => c == '_' || char.IsLetter(c);
    private static bool IsNameChar(char c) => c == '_' || char.IsLetterOrDigit(c);

    private void LexTag(int start, int afterOpen, bool isVariable)
    {
        _tokens.Add(new Token(isVariable ? TokenKind.VariableBegin : TokenKind.BlockBegin, isVariable ? "{{" : "{%", start));
        var brackets = new Stack<(char Close, int Offset)>();
        _pos = afterOpen;
        while (true)
        {
            _pos = SkipSpaces(_pos);
            if (_pos >= _s.Length)
                throw _source.Error(start, isVariable ? "unclosed '{{': missing '}}'" : "unclosed '{%': missing '%}'");

            if (brackets.Count == 0 && TryLexTagEnd(isVariable)) return;

            char c = _s[_pos];
            int at = _pos;
            if (c is '\'' or '"') { _tokens.Add(new Token(TokenKind.String, LexString(c), at)); continue; }
            if (char.IsAsciiDigit(c)) { LexNumber(); continue; }
            if (IsNameStart(c))
            {
                while (_pos < _s.Length && IsNameChar(_s[_pos])) _pos++;
                _tokens.Add(new Token(TokenKind.Name, _s[at.._pos], at));
                continue;
            }
            string? op = Operators.FirstOrDefault(o => string.CompareOrdinal(_s, _pos, o, 0, o.Length) == 0);
            if (op is null) throw _source.Error(at, $"unexpected character {PythonRepr.String(c.ToString())} inside a tag");
            switch (op)
            {
                case "(": brackets.Push((')', at)); break;
                case "[": brackets.Push((']', at)); break;
                case "{": brackets.Push(('}', at)); break;
                case ")" or "]" or "}":
                    if (brackets.Count == 0) throw _source.Error(at, $"unexpected '{op}'");
                    var (close, openedAt) = brackets.Pop();
                    if (close != op[0])
                    {
                        var (line, column) = _source.Position(openedAt);
                        throw _source.Error(at, $"unexpected '{op}', expected '{close}' to close the bracket opened at line {line}, column {column}");
                    }
                    break;
            }
            _pos += op.Length;
            _tokens.Add(new Token(TokenKind.Operator, op, at));
        }
    }

    private bool TryLexTagEnd(bool isVariable)
    {
        string marker = isVariable ? "}}" : "%}";
        char control = _s[_pos] is '-' or '+' ? _s[_pos] : '\0';
        int markerAt = _pos + (control != '\0' ? 1 : 0);
        if (string.CompareOrdinal(_s, markerAt, marker, 0, 2) != 0) return false;
        if (control == '+' && isVariable) return false;
        _tokens.Add(new Token(isVariable ? TokenKind.VariableEnd : TokenKind.BlockEnd, marker, _pos));
        _pos = markerAt + 2;
        _lineStarting = false;
        ApplyRightWhitespaceControl(control, trimBlock: !isVariable);
        return true;
    }

    private void LexNumber()
    {
        int at = _pos;
        bool isFloat = false;
        ScanDigits();
        // A float needs digits after the dot; "x.0.1" (after a dot) is attribute access, not 0.1.
        bool afterDot = at > 0 && _s[at - 1] == '.';
        if (!afterDot && _pos + 1 < _s.Length && _s[_pos] == '.' && char.IsAsciiDigit(_s[_pos + 1]))
        {
            isFloat = true;
            _pos++;
            ScanDigits();
        }
        if (!afterDot && _pos < _s.Length && _s[_pos] is 'e' or 'E')
        {
            int e = _pos + 1;
            if (e < _s.Length && _s[e] is '+' or '-') e++;
            if (e < _s.Length && char.IsAsciiDigit(_s[e]))
            {
                isFloat = true;
                _pos = e;
                ScanDigits();
            }
        }
        string text = _s[at.._pos].Replace("_", "");
        _tokens.Add(new Token(isFloat ? TokenKind.Float : TokenKind.Integer, text, at));
    }

    private void ScanDigits()
    {
        while (_pos < _s.Length && (char.IsAsciiDigit(_s[_pos])
               || (_s[_pos] == '_' && _pos + 1 < _s.Length && char.IsAsciiDigit(_s[_pos + 1]))))
            _pos++;
    }

    /// <summary>A quoted string with Python escapes (\n \t \\ \' \" \xhh \uhhhh \Uhhhhhhhh, octal); unknown escapes keep the backslash.</summary>
    private string LexString(char quote)
    {
        int start = _pos;
        _pos++;
        var sb = new StringBuilder();
        while (true)
        {
            if (_pos >= _s.Length) throw _source.Error(start, "unterminated string literal");
            char c = _s[_pos++];
            if (c == quote) return sb.ToString();
            if (c != '\\') { sb.Append(c); continue; }
            if (_pos >= _s.Length) throw _source.Error(start, "unterminated string literal");
            char e = _s[_pos++];
            switch (e)
            {
                case '\n': break; // line continuation
                case '\\': sb.Append('\\'); break;
                case '\'': sb.Append('\''); break;
                case '"': sb.Append('"'); break;
                case 'a': sb.Append('\a'); break;
                case 'b': sb.Append('\b'); break;
                case 'f': sb.Append('\f'); break;
                case 'n': sb.Append('\n'); break;
                case 'r': sb.Append('\r'); break;
                case 't': sb.Append('\t'); break;
                case 'v': sb.Append('\v'); break;
                case 'x': sb.Append(HexEscape(2)); break;
                case 'u': sb.Append(HexEscape(4)); break;
                case 'U': sb.Append(HexEscape(8)); break;
                case >= '0' and <= '7':
                {
                    int value = e - '0';
                    for (int k = 0; k < 2 && _pos < _s.Length && _s[_pos] is >= '0' and <= '7'; k++)
                        value = value * 8 + (_s[_pos++] - '0');
                    sb.Append(char.ConvertFromUtf32(value));
                    break;
                }
                default: sb.Append('\\').Append(e); break;
            }
        }
    }

    private string HexEscape(int digits)
    {
        if (_pos + digits > _s.Length
            || !int.TryParse(_s.AsSpan(_pos, digits), NumberStyles.AllowHexSpecifier, CultureInfo.InvariantCulture, out int value)
            || value > 0x10FFFF)
            throw _source.Error(_pos - 2, $"truncated or invalid \\{_s[_pos - 1]} escape in string literal");
        _pos += digits;
        return value is >= 0xD800 and <= 0xDFFF ? ((char)value).ToString() : char.ConvertFromUtf32(value);
    }
}
