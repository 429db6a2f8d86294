using System.Text;

namespace LlavaNative.Model.Templates;

/// <summary>
/// Variables visible at one point of a template. Jinja2 scoping: a for-loop iteration and a macro call get their
/// own scope (a <c>set</c> inside them does not leak out, which is why templates use <c>namespace()</c>);
/// <c>if</c> does not.
/// </summary>
internal sealed class Scope(Scope? parent)
{
    private readonly Dictionary<string, TemplateValue> _variables = new(StringComparer.Ordinal);
    private readonly Scope? _parent = parent;

    public TemplateValue Lookup(string name)
    {
        for (Scope? s = this; s is not null; s = s._parent)
            if (s._variables.TryGetValue(name, out TemplateValue? v)) return v;
        return UndefinedValue.Named(name);
    }

    public void Set(string name, TemplateValue value) => _variables[name] = value;
}

/// <summary>The <c>loop</c> variable of a for-loop.</summary>
internal sealed class LoopValue(int index0, IReadOnlyList<TemplateValue> items) : TemplateValue
{
    private TemplateValue? _lastChanged;

    public override string TypeName => "LoopContext";
    public override bool IsTruthy => true;
    public override string Repr() => $"<LoopContext {index0 + 1}/{items.Count}>";

    public override TemplateValue GetAttribute(string name) => name switch
    {
        "index" => From((long)index0 + 1),
        "index0" => From((long)index0),
        "revindex" => From((long)(items.Count - index0)),
        "revindex0" => From((long)(items.Count - index0 - 1)),
        "first" => From(index0 == 0),
        "last" => From(index0 == items.Count - 1),
        "length" => From((long)items.Count),
        "previtem" => index0 > 0 ? items[index0 - 1] : UndefinedValue.Named("loop.previtem"),
        "nextitem" => index0 + 1 < items.Count ? items[index0 + 1] : UndefinedValue.Named("loop.nextitem"),
        "depth" => From(1L),
        "depth0" => From(0L),
        "cycle" => new CallableValue("loop.cycle", a =>
        {
            if (a.Positional.Count == 0) throw new TemplateRuntimeError("no items for cycling given");
            return a.Positional[index0 % a.Positional.Count];
        }),
        "changed" => new CallableValue("loop.changed", a =>
        {
            var value = new ListValue(a.Positional);
            if (_lastChanged is not null && AreEqual(_lastChanged, value)) return False;
            _lastChanged = value;
            return True;
        }),
        _ => UndefinedValue.MissingAttribute(this, name),
    };
}

/// <summary>
/// Walks the syntax tree: statements append to the output, expressions evaluate with Python semantics. A failure
/// inside an expression surfaces as <see cref="TemplateException"/> at that expression's line and column.
/// </summary>
internal sealed class TemplateInterpreter(TemplateSource source, Func<DateTime> clock)
{
    private enum Flow { Normal, Break, Continue }

    public TemplateSource Source { get; } = source;

    /// <summary>Local time for <c>strftime_now</c>.</summary>
    public Func<DateTime> Clock { get; } = clock;

    public string Render(IReadOnlyList<Node> template, Scope globals)
    {
        var output = new StringBuilder();
        RenderNodes(template, globals, output);
        return output.ToString();
    }

    private Flow RenderNodes(IReadOnlyList<Node> nodes, Scope scope, StringBuilder output)
    {
        foreach (Node node in nodes)
        {
            Flow flow = RenderNode(node, scope, output);
            if (flow != Flow.Normal) return flow;
        }
        return Flow.Normal;
    }

    private Flow RenderNode(Node node, Scope scope, StringBuilder output)
    {
        switch (node)
        {
            case TextNode text:
                output.Append(text.Text);
                return Flow.Normal;
            case OutputNode o:
                output.Append(Eval(o.Value, scope).ToStr());
                return Flow.Normal;
            case IfNode ifNode:
                foreach (var (test, body) in ifNode.Branches)
                    if (Eval(test, scope).IsTruthy) return RenderNodes(body, scope, output);
                return RenderNodes(ifNode.Else, scope, output);
            case ForNode forNode:
                RenderFor(forNode, scope, output);
                return Flow.Normal;
            case SetNode set:
                Assign(set.Target, Eval(set.Value, scope), scope);
                return Flow.Normal;
            case SetBlockNode setBlock:
            {
                var captured = new StringBuilder();
                RenderNodes(setBlock.Body, scope, captured);
                Assign(setBlock.Target, ApplyFilters(setBlock.Filters, new StringValue(captured.ToString()), scope), scope);
                return Flow.Normal;
            }
            case MacroNode macro:
                scope.Set(macro.Name, DefineMacro(macro.Name, macro.Parameters, macro.Body, scope));
                return Flow.Normal;
            case CallBlockNode call:
            {
                CallableValue caller = DefineMacro("caller", call.CallerParameters, call.Body, scope);
                TemplateValue callee = Eval(call.Call.Callee, scope);
                CallArguments args = EvalArguments(call.Call.Args, scope);
                args.Keyword["caller"] = caller;
                output.Append(Invoke(callee, args, call.Call).ToStr());
                return Flow.Normal;
            }
            case FilterBlockNode filterBlock:
            {
                var captured = new StringBuilder();
                RenderNodes(filterBlock.Body, scope, captured);
                output.Append(ApplyFilters(filterBlock.Filters, new StringValue(captured.ToString()), scope).ToStr());
                return Flow.Normal;
            }
            case GenerationNode generation:
                return RenderNodes(generation.Body, scope, output);
            case BreakNode:
                return Flow.Break;
            case ContinueNode:
                return Flow.Continue;
            default:
                throw Source.Error(node.Offset, $"cannot render a {node.GetType().Name}");
        }
    }

    private void RenderFor(ForNode node, Scope scope, StringBuilder output)
    {
        IReadOnlyList<TemplateValue> all = Guard(node.Iterable, () => Eval(node.Iterable, scope).Iterate());
        IReadOnlyList<TemplateValue> items = all;
        if (node.Filter is not null)
        {
            var kept = new List<TemplateValue>();
            foreach (TemplateValue item in all)
            {
                var test = new Scope(scope);
                Assign(node.Target, item, test);
                if (Eval(node.Filter, test).IsTruthy) kept.Add(item);
            }
            items = kept;
        }
        for (int i = 0; i < items.Count; i++)
        {
            var iteration = new Scope(scope);
            iteration.Set("loop", new LoopValue(i, items));
            Assign(node.Target, items[i], iteration);
            if (RenderNodes(node.Body, iteration, output) == Flow.Break) break;
        }
        if (items.Count == 0) RenderNodes(node.Else, scope, output);
    }

    private void Assign(Expr target, TemplateValue value, Scope scope)
    {
        switch (target)
        {
            case NameExpr name:
                scope.Set(name.Name, value);
                break;
            case TupleExpr tuple:
            {
                IReadOnlyList<TemplateValue> values = Guard(target, value.Iterate);
                if (values.Count != tuple.Items.Count)
                    throw Source.Error(target.Offset, values.Count > tuple.Items.Count
                        ? $"too many values to unpack (expected {tuple.Items.Count})"
                        : $"not enough values to unpack (expected {tuple.Items.Count}, got {values.Count})");
                for (int i = 0; i < values.Count; i++) Assign(tuple.Items[i], values[i], scope);
                break;
            }
            case GetAttrExpr { Object: NameExpr owner } attribute:
                if (scope.Lookup(owner.Name) is not NamespaceValue ns)
                    throw Source.Error(target.Offset, $"cannot assign attribute '{attribute.Name}' on non-namespace object '{owner.Name}'");
                ns.Attributes[attribute.Name] = value;
                break;
            default:
                throw Source.Error(target.Offset, "cannot assign to this expression");
        }
    }

    private CallableValue DefineMacro(string name, IReadOnlyList<MacroParameter> parameters, IReadOnlyList<Node> body, Scope definingScope)
    {
        bool usesVarargs = TemplateWalker.ReadsName(body, "varargs");
        bool usesKwargs = TemplateWalker.ReadsName(body, "kwargs");
        return new CallableValue(name, args =>
        {
            var scope = new Scope(definingScope);
            var keyword = new OrderedDictionary<string, TemplateValue>(args.Keyword, StringComparer.Ordinal);
            if (keyword.Remove("caller", out TemplateValue? caller)) scope.Set("caller", caller);
            for (int i = 0; i < parameters.Count; i++)
            {
                MacroParameter p = parameters[i];
                if (i < args.Positional.Count)
                {
                    if (keyword.ContainsKey(p.Name))
                        throw new TemplateRuntimeError($"macro '{name}' got multiple values for argument '{p.Name}'");
                    scope.Set(p.Name, args.Positional[i]);
                }
                else if (keyword.Remove(p.Name, out TemplateValue? v)) scope.Set(p.Name, v);
                else scope.Set(p.Name, p.Default is null ? UndefinedValue.Named(p.Name) : Eval(p.Default, scope));
            }
            var extra = args.Positional.Skip(parameters.Count).ToList();
            if (extra.Count > 0 && !usesVarargs)
                throw new TemplateRuntimeError($"macro '{name}' takes not more than {parameters.Count} argument(s)");
            if (keyword.Count > 0 && !usesKwargs)
                throw new TemplateRuntimeError($"macro '{name}' takes no keyword argument '{keyword.Keys.First()}'");
            scope.Set("varargs", new ListValue(extra, isTuple: true));
            scope.Set("kwargs", new DictValue(keyword));
            var output = new StringBuilder();
            RenderNodes(body, scope, output);
            return new StringValue(output.ToString());
        });
    }

    private TemplateValue ApplyFilters(IReadOnlyList<FilterExpr> filters, TemplateValue value, Scope scope)
    {
        foreach (FilterExpr f in filters)
        {
            CallArguments args = EvalArguments(f.Args, scope);
            value = Guard(f, () => TemplateFilters.Apply(f.Name, value, args, this));
        }
        return value;
    }

    // ---------------------------------------------------------------- expressions

    /// <summary>Runs <paramref name="action"/>, turning a value-level failure into an error at <paramref name="at"/>.</summary>
    private T Guard<T>(Node at, Func<T> action)
    {
        try
        {
            return action();
        }
        catch (TemplateRuntimeError e)
        {
            var (line, column) = Source.Position(at.Offset);
            throw new TemplateException(Source.Name, line, column, e.Message, e.RaisedByTemplate, e);
        }
    }

    public TemplateValue Eval(Expr expr, Scope scope) => expr switch
    {
        ConstExpr c => c.Value,
        NameExpr n => scope.Lookup(n.Name),
        ListExpr l => new ListValue(l.Items.Select(i => Eval(i, scope)).ToList()),
        TupleExpr t => new ListValue(t.Items.Select(i => Eval(i, scope)).ToList(), isTuple: true),
        DictExpr d => EvalDict(d, scope),
        GetAttrExpr g => EvalGetAttr(g, scope),
        GetItemExpr g => EvalGetItem(g, scope),
        SliceExpr s => EvalSlice(s, scope),
        CallExpr call => EvalCall(call, scope),
        FilterExpr f => EvalFilter(f, scope),
        TestExpr t => EvalTest(t, scope),
        UnaryExpr u => EvalUnary(u, scope),
        BinaryExpr b => EvalBinary(b, scope),
        ConcatExpr c => new StringValue(string.Concat(c.Parts.Select(p => Eval(p, scope).ToStr()))),
        CompareExpr c => EvalCompare(c, scope),
        CondExpr c => Eval(c.Test, scope).IsTruthy ? Eval(c.Then, scope)
            : c.Otherwise is null ? UndefinedValue.Anonymous : Eval(c.Otherwise, scope),
        _ => throw Source.Error(expr.Offset, $"cannot evaluate a {expr.GetType().Name}"),
    };

    private DictValue EvalDict(DictExpr d, Scope scope)
    {
        var entries = DictValue.NewEntries();
        foreach (var (keyExpr, valueExpr) in d.Items)
        {
            TemplateValue key = Eval(keyExpr, scope);
            if (!PythonKeyComparer.IsHashable(key)) throw Source.Error(keyExpr.Offset, $"unhashable type: '{key.TypeName}'");
            entries[key] = Eval(valueExpr, scope);
        }
        return new DictValue(entries);
    }

    private TemplateValue EvalGetAttr(GetAttrExpr g, Scope scope)
    {
        TemplateValue owner = Eval(g.Object, scope);
        return Guard(g, () => owner.GetAttribute(g.Name));
    }

    private TemplateValue EvalGetItem(GetItemExpr g, Scope scope)
    {
        TemplateValue owner = Eval(g.Object, scope);
        TemplateValue key = Eval(g.Key, scope);
        return Guard(g, () => owner.GetItem(key));
    }

    private TemplateValue EvalSlice(SliceExpr s, Scope scope)
    {
        TemplateValue owner = Eval(s.Object, scope);
        long? Bound(Expr? e)
        {
            if (e is null) return null;
            TemplateValue v = Eval(e, scope);
            if (v is NoneValue) return null;
            if (v is IntValue or BoolValue && v.TryGetNumber(out _, out long i, out _)) return i;
            throw Source.Error(e.Offset, $"slice indices must be integers or None, not {v.TypeName}");
        }
        long? start = Bound(s.Start), stop = Bound(s.Stop), step = Bound(s.Step);
        return Guard(s, () => Slicing.Slice(owner, start, stop, step));
    }

    private TemplateValue EvalCall(CallExpr call, Scope scope)
    {
        TemplateValue callee = Eval(call.Callee, scope);
        CallArguments args = EvalArguments(call.Args, scope);
        return Invoke(callee, args, call);
    }

    private TemplateValue Invoke(TemplateValue callee, CallArguments args, Node at) => Guard(at, () => callee switch
    {
        CallableValue f => f.Invoke(args),
        UndefinedValue u => throw new TemplateRuntimeError(u.Reason),
        _ => throw new TemplateRuntimeError($"'{callee.TypeName}' object is not callable"),
    });

    private CallArguments EvalArguments(Arguments a, Scope scope)
    {
        if (ReferenceEquals(a, Arguments.None)) return new CallArguments([], new OrderedDictionary<string, TemplateValue>());
        var positional = a.Positional.Select(p => Eval(p, scope)).ToList();
        if (a.StarArgs is not null)
        {
            TemplateValue extra = Eval(a.StarArgs, scope);
            positional.AddRange(Guard(a.StarArgs, extra.Iterate));
        }
        var keyword = new OrderedDictionary<string, TemplateValue>(StringComparer.Ordinal);
        foreach (var (name, value) in a.Keyword) keyword[name] = Eval(value, scope);
        if (a.StarStarKwargs is not null)
        {
            if (Eval(a.StarStarKwargs, scope) is not DictValue d)
                throw Source.Error(a.StarStarKwargs.Offset, "argument after ** must be a mapping");
            foreach (var (k, v) in d.Entries)
                keyword[k is StringValue s ? s.Value : throw Source.Error(a.StarStarKwargs.Offset, "keywords must be strings")] = v;
        }
        return new CallArguments(positional, keyword);
    }

    private TemplateValue EvalFilter(FilterExpr f, Scope scope)
    {
        TemplateValue operand = Eval(f.Operand!, scope);
        CallArguments args = EvalArguments(f.Args, scope);
        return Guard(f, () => TemplateFilters.Apply(f.Name, operand, args, this));
    }

    private TemplateValue EvalTest(TestExpr t, Scope scope)
    {
        TemplateValue operand = Eval(t.Operand, scope);
        CallArguments args = EvalArguments(t.Args, scope);
        bool result = Guard(t, () => TemplateTests.Apply(t.Name, operand, args));
        return TemplateValue.From(result != t.Negated);
    }

    private TemplateValue EvalUnary(UnaryExpr u, Scope scope)
    {
        TemplateValue v = Eval(u.Operand, scope);
        if (u.Operator == "not") return TemplateValue.From(!v.IsTruthy);
        return Guard(u, () => Arithmetic.Unary(u.Operator, v));
    }

    private TemplateValue EvalBinary(BinaryExpr b, Scope scope)
    {
        TemplateValue left = Eval(b.Left, scope);
        switch (b.Operator)
        {
            case "and": return left.IsTruthy ? Eval(b.Right, scope) : left;
            case "or": return left.IsTruthy ? left : Eval(b.Right, scope);
        }
        TemplateValue right = Eval(b.Right, scope);
        return Guard(b, () => Arithmetic.Binary(b.Operator, left, right));
    }

    private TemplateValue EvalCompare(CompareExpr c, Scope scope)
    {
        TemplateValue left = Eval(c.First, scope);
        foreach (var (op, operandExpr) in c.Rest)
        {
            TemplateValue right = Eval(operandExpr, scope);
            bool holds = Guard(c, () => Arithmetic.Compare(op, left, right));
            if (!holds) return TemplateValue.False;
            left = right;
        }
        return TemplateValue.True;
    }
}

/// <summary>Finds whether a macro body reads <c>varargs</c>/<c>kwargs</c> (Jinja rejects extra arguments otherwise).</summary>
internal static class TemplateWalker
{
    public static bool ReadsName(IEnumerable<Node> nodes, string name) => nodes.Any(n => ReadsName(n, name));

    private static bool ReadsName(Node? node, string name) => node switch
    {
        null => false,
        NameExpr n => n.Name == name,
        OutputNode o => ReadsName(o.Value, name),
        IfNode i => i.Branches.Any(b => ReadsName(b.Test, name) || ReadsName(b.Body, name)) || ReadsName(i.Else, name),
        ForNode f => ReadsName(f.Iterable, name) || ReadsName(f.Filter, name) || ReadsName(f.Body, name) || ReadsName(f.Else, name),
        SetNode s => ReadsName(s.Value, name),
        SetBlockNode s => ReadsName(s.Body, name) || s.Filters.Any(f => ReadsArguments(f.Args, name)),
        CallBlockNode c => ReadsName(c.Call, name) || ReadsName(c.Body, name),
        FilterBlockNode f => ReadsName(f.Body, name) || f.Filters.Any(x => ReadsArguments(x.Args, name)),
        GenerationNode g => ReadsName(g.Body, name),
        MacroNode => false, // a nested macro has its own varargs/kwargs
        ListExpr l => ReadsName(l.Items, name),
        TupleExpr t => ReadsName(t.Items, name),
        DictExpr d => d.Items.Any(i => ReadsName(i.Key, name) || ReadsName(i.Value, name)),
        GetAttrExpr g => ReadsName(g.Object, name),
        GetItemExpr g => ReadsName(g.Object, name) || ReadsName(g.Key, name),
        SliceExpr s => ReadsName(s.Object, name) || ReadsName(s.Start, name) || ReadsName(s.Stop, name) || ReadsName(s.Step, name),
        CallExpr c => ReadsName(c.Callee, name) || ReadsArguments(c.Args, name),
        FilterExpr f => ReadsName(f.Operand, name) || ReadsArguments(f.Args, name),
        TestExpr t => ReadsName(t.Operand, name) || ReadsArguments(t.Args, name),
        UnaryExpr u => ReadsName(u.Operand, name),
        BinaryExpr b => ReadsName(b.Left, name) || ReadsName(b.Right, name),
        ConcatExpr c => ReadsName(c.Parts, name),
        CompareExpr c => ReadsName(c.First, name) || c.Rest.Any(r => ReadsName(r.Operand, name)),
        CondExpr c => ReadsName(c.Test, name) || ReadsName(c.Then, name) || ReadsName(c.Otherwise, name),
        _ => false,
    };

    private static bool ReadsArguments(Arguments a, string name) =>
        ReadsName(a.Positional, name) || a.Keyword.Any(k => ReadsName(k.Value, name))
        || ReadsName(a.StarArgs, name) || ReadsName(a.StarStarKwargs, name);
}
