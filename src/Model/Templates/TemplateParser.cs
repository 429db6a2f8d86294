using System.Globalization;

namespace LlavaNative.Model.Templates;

/// <summary>
/// Recursive-descent parser for Jinja2's grammar, with Jinja2's operator precedence (loosest first):
/// <c>x if c else y</c>, <c>or</c>, <c>and</c>, <c>not</c>, comparisons and <c>in</c>, <c>+ -</c>, <c>~</c>,
/// <c>* / // %</c>, <c>**</c>, unary <c>- +</c>, then primary with <c>.attr [key] (call)</c>, then
/// <c>| filter</c> and <c>is test</c>. Tags: if/elif/else, for (with filter and else), set (and block set),
/// macro, call, filter, generation (transformers), break/continue (loopcontrols, which transformers enables).
/// </summary>
internal sealed class TemplateParser
{
    private static readonly HashSet<string> CompareOperators = ["==", "!=", "<", "<=", ">", ">="];

    private readonly TemplateSource _source;
    private readonly List<Token> _tokens;
    private int _index;
    private int _loopDepth;

    private TemplateParser(TemplateSource source, List<Token> tokens)
    {
        _source = source;
        _tokens = tokens;
    }

    public static IReadOnlyList<Node> Parse(TemplateSource source)
    {
        var parser = new TemplateParser(source, TemplateLexer.Tokenize(source));
        var body = parser.ParseBody([]);
        if (parser.Current.Kind != TokenKind.End)
        {
            // ParseBody only stops early on an end tag nobody opened.
            Token name = parser.Peek(1);
            throw source.Error(name.Offset, $"unexpected '{name.Value}': no open block to end");
        }
        return body;
    }

    private Token Current => _tokens[_index];
    private Token Peek(int ahead) => _tokens[Math.Min(_index + ahead, _tokens.Count - 1)];
    private Token Next() => _tokens[_index++];

    private TemplateException Fail(Token at, string problem) => _source.Error(at.Offset, problem);

    private Token Expect(TokenKind kind, string? value, string what)
    {
        Token t = Current;
        if (t.Kind != kind || (value is not null && t.Value != value))
            throw Fail(t, $"expected {what}, got {t.Describe()}");
        return Next();
    }

    private Token ExpectOperator(string op) => Expect(TokenKind.Operator, op, $"'{op}'");
    private Token ExpectName(string? name = null) => Expect(TokenKind.Name, name, name is null ? "a name" : $"'{name}'");
    private void ExpectBlockEnd() => Expect(TokenKind.BlockEnd, null, "'%}'");

    private bool SkipOperator(string op)
    {
        if (!Current.IsOperator(op)) return false;
        _index++;
        return true;
    }

    private bool SkipName(string name)
    {
        if (!Current.IsName(name)) return false;
        _index++;
        return true;
    }

    // ---------------------------------------------------------------- statements

    /// <summary>Parses nodes until a <c>{% name %}</c> with name in <paramref name="endTags"/> (left unconsumed) or the end.</summary>
    private List<Node> ParseBody(string[] endTags)
    {
        var body = new List<Node>();
        while (true)
        {
            Token t = Current;
            switch (t.Kind)
            {
                case TokenKind.End:
                    if (endTags.Length > 0)
                        throw Fail(t, $"unexpected end of template, expected {string.Join(" or ", endTags.Select(e => $"'{e}'"))}");
                    return body;
                case TokenKind.Text:
                    body.Add(new TextNode(t.Offset, t.Value));
                    _index++;
                    break;
                case TokenKind.VariableBegin:
                    _index++;
                    Expr value = ParseTuple();
                    Expect(TokenKind.VariableEnd, null, "'}}'");
                    body.Add(new OutputNode(t.Offset, value));
                    break;
                case TokenKind.BlockBegin:
                    Token name = Peek(1);
                    if (name.Kind == TokenKind.Name && endTags.Contains(name.Value)) return body;
                    if (name.Kind == TokenKind.Name && (name.Value.StartsWith("end", StringComparison.Ordinal) || name.Value is "elif" or "else"))
                    {
                        if (endTags.Length == 0) throw Fail(name, $"unexpected '{name.Value}': no open block to end");
                        throw Fail(name, $"unexpected '{name.Value}', expected {string.Join(" or ", endTags.Select(e => $"'{e}'"))}");
                    }
                    _index++;
                    body.Add(ParseStatement());
                    break;
                default:
                    throw Fail(t, $"unexpected {t.Describe()}");
            }
        }
    }

    private Node ParseStatement()
    {
        Token name = Current;
        if (name.Kind != TokenKind.Name) throw Fail(name, $"expected a tag name after '{{%', got {name.Describe()}");
        _index++;
        switch (name.Value)
        {
            case "if": return ParseIf(name);
            case "for": return ParseFor(name);
            case "set": return ParseSet(name);
            case "macro": return ParseMacro(name);
            case "call": return ParseCallBlock(name);
            case "filter": return ParseFilterBlock(name);
            case "generation":
            {
                ExpectBlockEnd();
                var body = ParseBody(["endgeneration"]);
                EndTag("endgeneration");
                return new GenerationNode(name.Offset, body);
            }
            case "break" or "continue":
                if (_loopDepth == 0) throw Fail(name, $"'{name.Value}' outside of a loop");
                ExpectBlockEnd();
                return name.Value == "break" ? new BreakNode(name.Offset) : new ContinueNode(name.Offset);
            default:
                throw Fail(name, $"unknown tag '{name.Value}' (supported: if, for, set, macro, call, filter, generation, break, continue, raw)");
        }
    }

    private void EndTag(string name)
    {
        Expect(TokenKind.BlockBegin, null, $"'{{% {name} %}}'");
        ExpectName(name);
        ExpectBlockEnd();
    }

    private IfNode ParseIf(Token start)
    {
        var branches = new List<(Expr, IReadOnlyList<Node>)>();
        IReadOnlyList<Node> otherwise = [];
        Expr test = ParseTuple(withCondExpr: false);
        while (true)
        {
            ExpectBlockEnd();
            var body = ParseBody(["elif", "else", "endif"]);
            branches.Add((test, body));
            Next(); // {%
            Token tag = Next();
            if (tag.Value == "elif")
            {
                test = ParseTuple(withCondExpr: false);
                continue;
            }
            if (tag.Value == "else")
            {
                ExpectBlockEnd();
                otherwise = ParseBody(["endif"]);
                EndTag("endif");
            }
            else ExpectBlockEnd();
            return new IfNode(start.Offset, branches, otherwise);
        }
    }

    private ForNode ParseFor(Token start)
    {
        Expr target = ParseAssignTarget(allowNamespace: false, endName: "in");
        ExpectName("in");
        Expr iterable = ParseTuple(withCondExpr: false, endName: "recursive");
        Expr? filter = SkipName("if") ? ParseExpression() : null;
        if (Current.IsName("recursive")) throw Fail(Current, "recursive loops are not supported");
        ExpectBlockEnd();
        _loopDepth++;
        var body = ParseBody(["endfor", "else"]);
        _loopDepth--;
        IReadOnlyList<Node> otherwise = [];
        if (Peek(1).IsName("else"))
        {
            _index += 2;
            ExpectBlockEnd();
            otherwise = ParseBody(["endfor"]);
        }
        EndTag("endfor");
        return new ForNode(start.Offset, target, iterable, filter, body, otherwise);
    }

    private Node ParseSet(Token start)
    {
        Expr target = ParseAssignTarget(allowNamespace: true);
        if (SkipOperator("="))
        {
            Expr value = ParseTuple();
            ExpectBlockEnd();
            return new SetNode(start.Offset, target, value);
        }
        var filters = ParseFilterChain();
        ExpectBlockEnd();
        var body = ParseBody(["endset"]);
        EndTag("endset");
        return new SetBlockNode(start.Offset, target, filters, body);
    }

    private MacroNode ParseMacro(Token start)
    {
        string name = ExpectName().Value;
        var parameters = ParseParameters();
        ExpectBlockEnd();
        int loops = _loopDepth;
        _loopDepth = 0;
        var body = ParseBody(["endmacro"]);
        _loopDepth = loops;
        EndTag("endmacro");
        return new MacroNode(start.Offset, name, parameters, body);
    }

    private CallBlockNode ParseCallBlock(Token start)
    {
        IReadOnlyList<MacroParameter> parameters = Current.IsOperator("(") ? ParseParameters() : [];
        Token at = Current;
        if (ParseExpression() is not CallExpr call) throw Fail(at, "expected a macro call after 'call'");
        ExpectBlockEnd();
        int loops = _loopDepth;
        _loopDepth = 0;
        var body = ParseBody(["endcall"]);
        _loopDepth = loops;
        EndTag("endcall");
        return new CallBlockNode(start.Offset, call, parameters, body);
    }

    private FilterBlockNode ParseFilterBlock(Token start)
    {
        var filters = ParseFilterChain(first: true);
        ExpectBlockEnd();
        var body = ParseBody(["endfilter"]);
        EndTag("endfilter");
        return new FilterBlockNode(start.Offset, filters, body);
    }

    /// <summary><c>(a, b=1, c='x')</c> of a macro or call block.</summary>
    private List<MacroParameter> ParseParameters()
    {
        ExpectOperator("(");
        var parameters = new List<MacroParameter>();
        while (!Current.IsOperator(")"))
        {
            if (parameters.Count > 0) ExpectOperator(",");
            if (Current.IsOperator(")")) break;
            Token name = ExpectName();
            Expr? value = SkipOperator("=") ? ParseExpression() : null;
            if (value is null && parameters.Count > 0 && parameters[^1].Default is not null)
                throw Fail(name, "non-default argument follows default argument");
            if (parameters.Any(p => p.Name == name.Value)) throw Fail(name, $"duplicate parameter '{name.Value}'");
            parameters.Add(new MacroParameter(name.Value, value));
        }
        ExpectOperator(")");
        return parameters;
    }

    /// <summary>A set/for target: a name, names separated by commas, or (set only) <c>namespace.attribute</c>.</summary>
    private Expr ParseAssignTarget(bool allowNamespace, string? endName = null)
    {
        Token start = Current;
        if (allowNamespace && start.Kind == TokenKind.Name && Peek(1).IsOperator("."))
        {
            _index += 2;
            string attribute = ExpectName().Value;
            return new GetAttrExpr(start.Offset, new NameExpr(start.Offset, start.Value), attribute);
        }
        Expr target = ParseTuple(simplified: true, endName: endName);
        bool valid = target switch
        {
            NameExpr => true,
            TupleExpr t => t.Items.All(i => i is NameExpr),
            _ => false,
        };
        if (!valid) throw Fail(start, "can only assign to a name, a tuple of names, or namespace.attribute");
        foreach (NameExpr n in target is TupleExpr tuple ? tuple.Items.Cast<NameExpr>() : [(NameExpr)target])
            if (n.Name is "true" or "false" or "none" or "True" or "False" or "None")
                throw Fail(start, $"cannot assign to '{n.Name}'");
        return target;
    }

    // ---------------------------------------------------------------- expressions

    /// <summary>
    /// An expression, or a tuple when commas separate several (<c>{{ a, b }}</c>, <c>set a, b = 1, 2</c>).
    /// <paramref name="simplified"/> allows only primaries (assignment targets).
    /// </summary>
    private Expr ParseTuple(bool simplified = false, bool withCondExpr = true, bool explicitParentheses = false, string? endName = null)
    {
        int offset = Current.Offset;
        var items = new List<Expr>();
        bool isTuple = false;
        while (true)
        {
            if (items.Count > 0) ExpectOperator(",");
            if (IsTupleEnd(explicitParentheses, endName)) break;
            items.Add(simplified ? ParsePrimary() : withCondExpr ? ParseExpression() : ParseOr());
            if (Current.IsOperator(",")) isTuple = true;
            else break;
        }
        if (!isTuple)
        {
            if (items.Count > 0) return items[0];
            if (!explicitParentheses) throw Fail(Current, $"expected an expression, got {Current.Describe()}");
        }
        return new TupleExpr(offset, items);
    }

    private bool IsTupleEnd(bool explicitParentheses, string? endName) =>
        Current.Kind is TokenKind.VariableEnd or TokenKind.BlockEnd
        || (explicitParentheses && Current.IsOperator(")"))
        || (endName is not null && Current.IsName(endName));

    private Expr ParseExpression() => ParseConditional();

    private Expr ParseConditional()
    {
        Expr expr = ParseOr();
        while (Current.IsName("if"))
        {
            int offset = Next().Offset;
            Expr test = ParseOr();
            Expr? otherwise = SkipName("else") ? ParseConditional() : null;
            expr = new CondExpr(offset, test, expr, otherwise);
        }
        return expr;
    }

    private Expr ParseOr()
    {
        Expr left = ParseAnd();
        while (Current.IsName("or"))
        {
            int offset = Next().Offset;
            left = new BinaryExpr(offset, "or", left, ParseAnd());
        }
        return left;
    }

    private Expr ParseAnd()
    {
        Expr left = ParseNot();
        while (Current.IsName("and"))
        {
            int offset = Next().Offset;
            left = new BinaryExpr(offset, "and", left, ParseNot());
        }
        return left;
    }

    private Expr ParseNot()
    {
        if (Current.IsName("not"))
        {
            int offset = Next().Offset;
            return new UnaryExpr(offset, "not", ParseNot());
        }
        return ParseCompare();
    }

    private Expr ParseCompare()
    {
        int offset = Current.Offset;
        Expr first = ParseMath1();
        var rest = new List<(string, Expr)>();
        while (true)
        {
            if (Current.Kind == TokenKind.Operator && CompareOperators.Contains(Current.Value))
                rest.Add((Next().Value, ParseMath1()));
            else if (SkipName("in"))
                rest.Add(("in", ParseMath1()));
            else if (Current.IsName("not") && Peek(1).IsName("in"))
            {
                _index += 2;
                rest.Add(("not in", ParseMath1()));
            }
            else break;
        }
        return rest.Count == 0 ? first : new CompareExpr(offset, first, rest);
    }

    private Expr ParseMath1()
    {
        Expr left = ParseConcat();
        while (Current.IsOperator("+") || Current.IsOperator("-"))
        {
            Token op = Next();
            left = new BinaryExpr(op.Offset, op.Value, left, ParseConcat());
        }
        return left;
    }

    private Expr ParseConcat()
    {
        int offset = Current.Offset;
        var parts = new List<Expr> { ParseMath2() };
        while (SkipOperator("~")) parts.Add(ParseMath2());
        return parts.Count == 1 ? parts[0] : new ConcatExpr(offset, parts);
    }

    private Expr ParseMath2()
    {
        Expr left = ParsePower();
        while (Current.Kind == TokenKind.Operator && Current.Value is "*" or "/" or "//" or "%")
        {
            Token op = Next();
            left = new BinaryExpr(op.Offset, op.Value, left, ParsePower());
        }
        return left;
    }

    private Expr ParsePower()
    {
        Expr left = ParseUnary();
        while (Current.IsOperator("**"))
        {
            Token op = Next();
            left = new BinaryExpr(op.Offset, "**", left, ParseUnary());
        }
        return left;
    }

    private Expr ParseUnary(bool withFilter = true)
    {
        Expr node;
        if (Current.IsOperator("-") || Current.IsOperator("+"))
        {
            Token op = Next();
            node = new UnaryExpr(op.Offset, op.Value, ParseUnary(withFilter: false));
        }
        else node = ParsePrimary();
        node = ParsePostfix(node);
        return withFilter ? ParseFilterAndTests(node) : node;
    }

    private Expr ParsePrimary()
    {
        Token t = Current;
        switch (t.Kind)
        {
            case TokenKind.Name:
                _index++;
                return t.Value switch
                {
                    "true" or "True" => new ConstExpr(t.Offset, TemplateValue.True),
                    "false" or "False" => new ConstExpr(t.Offset, TemplateValue.False),
                    "none" or "None" => new ConstExpr(t.Offset, TemplateValue.None),
                    _ => new NameExpr(t.Offset, t.Value),
                };
            case TokenKind.String:
            {
                _index++;
                string value = t.Value;
                while (Current.Kind == TokenKind.String) value += Next().Value; // 'a' 'b' == 'ab'
                return new ConstExpr(t.Offset, new StringValue(value));
            }
            case TokenKind.Integer:
                _index++;
                if (!long.TryParse(t.Value, NumberStyles.None, CultureInfo.InvariantCulture, out long integer))
                    throw Fail(t, $"integer literal {t.Value} is out of range");
                return new ConstExpr(t.Offset, new IntValue(integer));
            case TokenKind.Float:
                _index++;
                return new ConstExpr(t.Offset, new FloatValue(double.Parse(t.Value, NumberStyles.Float, CultureInfo.InvariantCulture)));
            case TokenKind.Operator when t.Value == "(":
            {
                _index++;
                Expr inner = ParseTuple(explicitParentheses: true);
                ExpectOperator(")");
                return inner;
            }
            case TokenKind.Operator when t.Value == "[":
            {
                _index++;
                var items = new List<Expr>();
                while (!Current.IsOperator("]"))
                {
                    if (items.Count > 0) ExpectOperator(",");
                    if (Current.IsOperator("]")) break;
                    items.Add(ParseExpression());
                }
                ExpectOperator("]");
                return new ListExpr(t.Offset, items);
            }
            case TokenKind.Operator when t.Value == "{":
            {
                _index++;
                var items = new List<(Expr, Expr)>();
                while (!Current.IsOperator("}"))
                {
                    if (items.Count > 0) ExpectOperator(",");
                    if (Current.IsOperator("}")) break;
                    Expr key = ParseExpression();
                    ExpectOperator(":");
                    items.Add((key, ParseExpression()));
                }
                ExpectOperator("}");
                return new DictExpr(t.Offset, items);
            }
            default:
                throw Fail(t, $"unexpected {t.Describe()}");
        }
    }

    private Expr ParsePostfix(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator(".") || Current.IsOperator("[")) node = ParseSubscript(node);
            else if (Current.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseFilterAndTests(Expr node)
    {
        while (true)
        {
            if (Current.IsOperator("|")) node = ParseFilterChain(node);
            else if (Current.IsName("is")) node = ParseTest(node);
            else if (Current.IsOperator("(")) node = ParseCall(node);
            else return node;
        }
    }

    private Expr ParseSubscript(Expr node)
    {
        Token op = Next();
        if (op.Value == ".")
        {
            Token attribute = Next();
            if (attribute.Kind == TokenKind.Name) return new GetAttrExpr(attribute.Offset, node, attribute.Value);
            if (attribute.Kind == TokenKind.Integer)
                return new GetItemExpr(attribute.Offset, node, new ConstExpr(attribute.Offset, new IntValue(long.Parse(attribute.Value, CultureInfo.InvariantCulture))));
            throw Fail(attribute, $"expected an attribute name after '.', got {attribute.Describe()}");
        }
        var keys = new List<Expr>();
        while (!Current.IsOperator("]"))
        {
            if (keys.Count > 0) ExpectOperator(",");
            keys.Add(ParseSubscribed(node, op.Offset));
        }
        ExpectOperator("]");
        if (keys.Count == 0) throw Fail(op, "expected a key or slice inside '[]'");
        if (keys.Count == 1) return keys[0] is SliceExpr slice ? slice : new GetItemExpr(op.Offset, node, keys[0]);
        if (keys.Any(k => k is SliceExpr)) throw Fail(op, "multi-dimensional slices are not supported");
        return new GetItemExpr(op.Offset, node, new TupleExpr(op.Offset, keys));
    }

    /// <summary>One key inside <c>[]</c>: an expression, or a slice <c>start:stop:step</c> (returned as SliceExpr on <paramref name="owner"/>).</summary>
    private Expr ParseSubscribed(Expr owner, int offset)
    {
        Expr? start = null;
        if (!Current.IsOperator(":"))
        {
            start = ParseExpression();
            if (!Current.IsOperator(":")) return start;
        }
        _index++; // ':'
        Expr? stop = Current.IsOperator("]") || Current.IsOperator(",") || Current.IsOperator(":") ? null : ParseExpression();
        Expr? step = null;
        if (SkipOperator(":") && !(Current.IsOperator("]") || Current.IsOperator(",")))
            step = ParseExpression();
        return new SliceExpr(offset, owner, start, stop, step);
    }

    private CallExpr ParseCall(Expr callee)
    {
        Token open = Current;
        return new CallExpr(open.Offset, callee, ParseArguments());
    }

    private Arguments ParseArguments()
    {
        ExpectOperator("(");
        var positional = new List<Expr>();
        var keyword = new List<(string, Expr)>();
        Expr? starArgs = null, starStarKwargs = null;
        bool first = true;
        while (!Current.IsOperator(")"))
        {
            if (!first)
            {
                ExpectOperator(",");
                if (Current.IsOperator(")")) break;
            }
            first = false;
            Token t = Current;
            if (SkipOperator("**")) { starStarKwargs = ParseExpression(); continue; }
            if (SkipOperator("*")) { starArgs = ParseExpression(); continue; }
            if (t.Kind == TokenKind.Name && Peek(1).IsOperator("="))
            {
                _index += 2;
                if (keyword.Any(k => k.Item1 == t.Value)) throw Fail(t, $"keyword argument '{t.Value}' repeated");
                keyword.Add((t.Value, ParseExpression()));
                continue;
            }
            if (keyword.Count > 0 || starArgs is not null || starStarKwargs is not null)
                throw Fail(t, "positional argument follows keyword argument");
            positional.Add(ParseExpression());
        }
        ExpectOperator(")");
        return new Arguments(positional, keyword, starArgs, starStarKwargs);
    }

    /// <summary><c>| name(args) | name …</c>; with <paramref name="first"/> the first '|' is implicit (filter tag, set block).</summary>
    private Expr ParseFilterChain(Expr operand)
    {
        var chain = ParseFilterChain(first: false);
        Expr node = operand;
        foreach (FilterExpr f in chain) node = f with { Operand = node };
        return node;
    }

    private List<FilterExpr> ParseFilterChain(bool first = false)
    {
        var filters = new List<FilterExpr>();
        while (first || Current.IsOperator("|"))
        {
            if (!first) _index++;
            first = false;
            Token name = ExpectName();
            string full = name.Value;
            while (Current.IsOperator(".") && Peek(1).Kind == TokenKind.Name)
            {
                _index++;
                full += "." + Next().Value;
            }
            Arguments args = Current.IsOperator("(") ? ParseArguments() : Arguments.None;
            filters.Add(new FilterExpr(name.Offset, null, full, args));
        }
        return filters;
    }

    private TestExpr ParseTest(Expr operand)
    {
        Token isToken = Next();
        bool negated = SkipName("not");
        Token name = ExpectName();
        string full = name.Value;
        while (Current.IsOperator(".") && Peek(1).Kind == TokenKind.Name)
        {
            _index++;
            full += "." + Next().Value;
        }
        Arguments args = Arguments.None;
        if (Current.IsOperator("(")) args = ParseArguments();
        else if ((Current.Kind is TokenKind.Name or TokenKind.String or TokenKind.Integer or TokenKind.Float
                  || Current.IsOperator("[") || Current.IsOperator("{"))
                 && !(Current.IsName("else") || Current.IsName("or") || Current.IsName("and")))
        {
            if (Current.IsName("is")) throw Fail(Current, "tests cannot be chained with 'is'");
            Expr argument = ParsePostfix(ParsePrimary());
            args = new Arguments([argument], [], null, null);
        }
        return new TestExpr(isToken.Offset, operand, full, args, negated);
    }
}
