namespace LlavaNative.Model.Templates;

/// <summary>Python's operators on template values (int overflow is an error rather than a bignum).</summary>
internal static class Arithmetic
{
    public static TemplateValue Unary(string op, TemplateValue v)
    {
        if (v is UndefinedValue u) throw new TemplateRuntimeError(u.Reason);
        if (!v.TryGetNumber(out double d, out long i, out bool isInt))
            throw new TemplateRuntimeError($"bad operand type for unary {op}: '{v.TypeName}'");
        if (op == "+") return isInt ? new IntValue(i) : v;
        return isInt ? new IntValue(checked(-i)) : new FloatValue(-d);
    }

    public static TemplateValue Binary(string op, TemplateValue a, TemplateValue b)
    {
        if (a is UndefinedValue ua) throw new TemplateRuntimeError(ua.Reason);
        if (b is UndefinedValue ub) throw new TemplateRuntimeError(ub.Reason);
        try
        {
            if (a.TryGetNumber(out double x, out long xi, out bool xInt) && b.TryGetNumber(out double y, out long yi, out bool yInt))
                return Numeric(op, x, xi, xInt && yInt, y, yi);
            return op switch
            {
                "+" when a is StringValue s && b is StringValue t => new StringValue(s.Value + t.Value),
                "+" when a is ListValue l && b is ListValue m && l.IsTuple == m.IsTuple => new ListValue([.. l.Items, .. m.Items], l.IsTuple),
                "+" when a is StringValue => throw new TemplateRuntimeError($"can only concatenate str (not \"{b.TypeName}\") to str"),
                "+" when a is ListValue l => throw new TemplateRuntimeError($"can only concatenate {l.TypeName} (not \"{b.TypeName}\") to {l.TypeName}"),
                "*" when a is StringValue or ListValue && b is IntValue or BoolValue => Repeat(a, b),
                "*" when b is StringValue or ListValue && a is IntValue or BoolValue => Repeat(b, a),
                "%" when a is StringValue => throw new TemplateRuntimeError("printf-style string formatting ('...' % value) is not supported; use ~ or the format of each part"),
                _ => throw new TemplateRuntimeError($"unsupported operand type(s) for {op}: '{a.TypeName}' and '{b.TypeName}'"),
            };
        }
        catch (OverflowException)
        {
            throw new TemplateRuntimeError($"integer overflow in {a.Repr()} {op} {b.Repr()}");
        }
    }

    private static TemplateValue Repeat(TemplateValue sequence, TemplateValue count)
    {
        count.TryGetNumber(out _, out long n, out _);
        if (n <= 0) return sequence is StringValue ? StringValue.Empty : new ListValue([], ((ListValue)sequence).IsTuple);
        if (n > 1_000_000) throw new TemplateRuntimeError("repetition count too large");
        if (sequence is StringValue s) return new StringValue(string.Concat(Enumerable.Repeat(s.Value, (int)n)));
        var l = (ListValue)sequence;
        return new ListValue(Enumerable.Repeat(l.Items, (int)n).SelectMany(i => i).ToList(), l.IsTuple);
    }

    private static TemplateValue Numeric(string op, double x, long xi, bool ints, double y, long yi)
    {
        switch (op)
        {
            case "+": return ints ? new IntValue(checked(xi + yi)) : new FloatValue(x + y);
            case "-": return ints ? new IntValue(checked(xi - yi)) : new FloatValue(x - y);
            case "*": return ints ? new IntValue(checked(xi * yi)) : new FloatValue(x * y);
            case "/":
                if (y == 0) throw new TemplateRuntimeError("division by zero");
                return new FloatValue(x / y);
            case "//":
                if (y == 0) throw new TemplateRuntimeError("integer division or modulo by zero");
                if (ints) return new IntValue(FloorDiv(xi, yi));
                return new FloatValue(Math.Floor(x / y));
            case "%":
                if (y == 0) throw new TemplateRuntimeError("integer division or modulo by zero");
                if (ints) return new IntValue(xi - FloorDiv(xi, yi) * yi);
                double r = x % y;
                return new FloatValue(r != 0 && (r < 0) != (y < 0) ? r + y : r);
            case "**":
                if (ints && yi >= 0)
                {
                    long result = 1;
                    for (long k = 0; k < yi; k++) result = checked(result * xi);
                    return new IntValue(result);
                }
                if (x == 0 && y < 0) throw new TemplateRuntimeError("0.0 cannot be raised to a negative power");
                return new FloatValue(Math.Pow(x, y));
            default:
                throw new TemplateRuntimeError($"unknown operator {op}");
        }
    }

    private static long FloorDiv(long a, long b)
    {
        long q = a / b;
        return (a % b != 0) && ((a < 0) != (b < 0)) ? q - 1 : q;
    }

    /// <summary>One link of a comparison chain: == != &lt; &lt;= &gt; &gt;= in, not in.</summary>
    public static bool Compare(string op, TemplateValue a, TemplateValue b)
    {
        switch (op)
        {
            case "==": return TemplateValue.AreEqual(a, b);
            case "!=": return !TemplateValue.AreEqual(a, b);
            case "in": return Contains(b, a);
            case "not in": return !Contains(b, a);
        }
        if (a is UndefinedValue ua) throw new TemplateRuntimeError(ua.Reason);
        if (b is UndefinedValue ub) throw new TemplateRuntimeError(ub.Reason);
        int c;
        try
        {
            c = TemplateValue.Compare(a, b);
        }
        catch (TemplateRuntimeError)
        {
            throw new TemplateRuntimeError($"'{op}' not supported between instances of '{a.TypeName}' and '{b.TypeName}'");
        }
        return op switch
        {
            "<" => c < 0,
            "<=" => c <= 0,
            ">" => c > 0,
            _ => c >= 0,
        };
    }

    /// <summary>Python's <c>item in container</c>.</summary>
    public static bool Contains(TemplateValue container, TemplateValue item) => container switch
    {
        StringValue s => item is StringValue t
            ? s.Value.Contains(t.Value, StringComparison.Ordinal)
            : throw new TemplateRuntimeError($"'in <string>' requires string as left operand, not {item.TypeName}"),
        ListValue l => l.Items.Any(x => TemplateValue.AreEqual(x, item)),
        DictValue d => PythonKeyComparer.IsHashable(item) ? d.Entries.ContainsKey(item) : throw new TemplateRuntimeError($"unhashable type: '{item.TypeName}'"),
        UndefinedValue => false,
        _ => throw new TemplateRuntimeError($"argument of type '{container.TypeName}' is not iterable"),
    };
}

/// <summary>Python slicing of lists, tuples and strings (by code point), including negative steps.</summary>
internal static class Slicing
{
    public static TemplateValue Slice(TemplateValue owner, long? start, long? stop, long? step)
    {
        if (owner is UndefinedValue u) throw new TemplateRuntimeError(u.Reason);
        long st = step ?? 1;
        if (st == 0) throw new TemplateRuntimeError("slice step cannot be zero");
        switch (owner)
        {
            case ListValue l:
                return new ListValue(Indices(l.Items.Count, start, stop, st).Select(i => l.Items[i]).ToList(), l.IsTuple);
            case StringValue s:
            {
                IReadOnlyList<string> points = s.CodePoints();
                return new StringValue(string.Concat(Indices(points.Count, start, stop, st).Select(i => points[i])));
            }
            default:
                throw new TemplateRuntimeError($"'{owner.TypeName}' object is not subscriptable");
        }
    }

    private static IEnumerable<int> Indices(int length, long? start, long? stop, long step)
    {
        long lo, hi;
        if (step > 0)
        {
            lo = Clamp(start ?? 0, length, 0, length);
            hi = Clamp(stop ?? length, length, 0, length);
            for (long i = lo; i < hi; i += step) yield return (int)i;
        }
        else
        {
            lo = Clamp(start ?? length - 1, length, -1, length - 1);
            hi = stop is null ? -1 : Clamp(stop.Value, length, -1, length - 1);
            for (long i = lo; i > hi; i += step) yield return (int)i;
        }
    }

    private static long Clamp(long index, int length, long min, long max)
    {
        if (index < 0) index += length;
        return Math.Clamp(index, min, max);
    }
}
