using System.Globalization;
using System.Text;
using System.Text.Json;

namespace LlavaNative.Model.Templates;

/// <summary>
/// A value inside a template, with Python semantics because Hugging Face renders chat templates with Python's
/// Jinja2: <c>str()</c> of <c>True</c> is "True", of <c>None</c> is "None", of a list is its repr; ints and floats
/// compare equal across types; strings are sequences of code points. Values coming from the caller (messages,
/// tools, extra variables) are converted by <see cref="From"/>; inside the sandbox lists and dicts are immutable,
/// as in transformers' <c>ImmutableSandboxedEnvironment</c>, and only <c>namespace()</c> objects can be assigned to.
/// </summary>
public abstract class TemplateValue
{
    public static readonly TemplateValue None = NoneValue.Instance;
    public static readonly TemplateValue True = BoolValue.TrueValue;
    public static readonly TemplateValue False = BoolValue.FalseValue;

    /// <summary>Python type name, used in error messages ('str', 'int', 'list', 'dict', 'NoneType', …).</summary>
    public abstract string TypeName { get; }

    /// <summary>Python truthiness.</summary>
    public abstract bool IsTruthy { get; }

    /// <summary>Python <c>str(value)</c>: what <c>{{ value }}</c> prints.</summary>
    public virtual string ToStr() => Repr();

    /// <summary>Python <c>repr(value)</c>: how the value prints inside a list or dict.</summary>
    public abstract string Repr();

    public bool IsUndefined => this is UndefinedValue;
    public bool IsNone => this is NoneValue;

    /// <summary>The value of <c>value.name</c>: attribute first (methods), then item, as Jinja's getattr.</summary>
    public virtual TemplateValue GetAttribute(string name) =>
        UndefinedValue.MissingAttribute(this, name);

    /// <summary>The value of <c>value[key]</c>: item first, then attribute, as Jinja's getitem.</summary>
    public virtual TemplateValue GetItem(TemplateValue key) =>
        key is StringValue s ? GetAttribute(s.Value) : UndefinedValue.MissingItem(this, key);

    public static TemplateValue From(bool value) => value ? True : False;
    public static TemplateValue From(long value) => new IntValue(value);
    public static TemplateValue From(double value) => new FloatValue(value);
    public static TemplateValue From(string? value) => value is null ? None : new StringValue(value);

    /// <summary>
    /// Converts a caller's value: null, string, bool, integer and floating types, <see cref="JsonElement"/>,
    /// <see cref="ChatMessage"/>, dictionaries with string keys (order kept) and other sequences.
    /// </summary>
    public static TemplateValue From(object? value)
    {
        switch (value)
        {
            case null: return None;
            case TemplateValue v: return v;
            case string s: return new StringValue(s);
            case bool b: return From(b);
            case int i: return new IntValue(i);
            case long l: return new IntValue(l);
            case short sh: return new IntValue(sh);
            case byte by: return new IntValue(by);
            case uint ui: return new IntValue(ui);
            case double d: return new FloatValue(d);
            case float f: return new FloatValue(f);
            case decimal m: return new FloatValue((double)m);
            case JsonElement json: return FromJson(json);
            case ChatMessage message: return message.ToTemplateValue();
            case ChatContentPart part: return part.ToTemplateValue();
            case IEnumerable<KeyValuePair<string, object?>> pairs:
            {
                var entries = DictValue.NewEntries();
                foreach (var (k, v) in pairs) entries[new StringValue(k)] = From(v);
                return new DictValue(entries);
            }
            case IEnumerable<KeyValuePair<string, string>> stringPairs:
            {
                var entries = DictValue.NewEntries();
                foreach (var (k, v) in stringPairs) entries[new StringValue(k)] = From(v);
                return new DictValue(entries);
            }
            case System.Collections.IEnumerable sequence:
            {
                var items = new List<TemplateValue>();
                foreach (object? item in sequence) items.Add(From(item));
                return new ListValue(items);
            }
            default:
                throw new ArgumentException($"cannot pass a {value.GetType().Name} to a chat template; " +
                                            "use strings, numbers, booleans, lists, string-keyed dictionaries or JsonElement");
        }
    }

    /// <summary>JSON → value as Python's json.loads: integers stay ints, numbers with '.', 'e' are floats.</summary>
    public static TemplateValue FromJson(JsonElement json)
    {
        switch (json.ValueKind)
        {
            case JsonValueKind.Null:
            case JsonValueKind.Undefined:
                return None;
            case JsonValueKind.True: return True;
            case JsonValueKind.False: return False;
            case JsonValueKind.String: return new StringValue(json.GetString()!);
            case JsonValueKind.Number:
                return json.TryGetInt64(out long l) ? new IntValue(l) : new FloatValue(json.GetDouble());
            case JsonValueKind.Array:
            {
                var items = new List<TemplateValue>(json.GetArrayLength());
                foreach (JsonElement item in json.EnumerateArray()) items.Add(FromJson(item));
                return new ListValue(items);
            }
            default:
            {
                var entries = DictValue.NewEntries();
                foreach (JsonProperty p in json.EnumerateObject()) entries[new StringValue(p.Name)] = FromJson(p.Value);
                return new DictValue(entries);
            }
        }
    }

    /// <summary>Python <c>==</c>: numbers across int/float/bool, sequences and dicts by content.</summary>
    public static bool AreEqual(TemplateValue a, TemplateValue b)
    {
        if (ReferenceEquals(a, b)) return true;
        if (a.TryGetNumber(out double x, out long xi, out bool xIsInt) && b.TryGetNumber(out double y, out long yi, out bool yIsInt))
            return xIsInt && yIsInt ? xi == yi : x == y;
        switch (a)
        {
            case StringValue s: return b is StringValue t && string.Equals(s.Value, t.Value, StringComparison.Ordinal);
            case NoneValue: return b is NoneValue;
            case UndefinedValue: return b is UndefinedValue;
            case ListValue l:
            {
                if (b is not ListValue m || l.IsTuple != m.IsTuple || l.Items.Count != m.Items.Count) return false;
                for (int i = 0; i < l.Items.Count; i++)
                    if (!AreEqual(l.Items[i], m.Items[i])) return false;
                return true;
            }
            case DictValue d:
            {
                if (b is not DictValue e || d.Entries.Count != e.Entries.Count) return false;
                foreach (var (k, v) in d.Entries)
                    if (!e.Entries.TryGetValue(k, out TemplateValue? w) || !AreEqual(v, w)) return false;
                return true;
            }
            default: return false;
        }
    }

    /// <summary>Python ordering for <c>&lt;</c>, sort, min, max: numbers, strings (by code point), sequences.</summary>
    public static int Compare(TemplateValue a, TemplateValue b)
    {
        if (a.TryGetNumber(out double x, out long xi, out bool xIsInt) && b.TryGetNumber(out double y, out long yi, out bool yIsInt))
            return xIsInt && yIsInt ? xi.CompareTo(yi) : x.CompareTo(y);
        if (a is StringValue s && b is StringValue t) return CompareCodePoints(s.Value, t.Value);
        if (a is ListValue l && b is ListValue m && l.IsTuple == m.IsTuple)
        {
            for (int i = 0; i < Math.Min(l.Items.Count, m.Items.Count); i++)
            {
                if (AreEqual(l.Items[i], m.Items[i])) continue;
                return Compare(l.Items[i], m.Items[i]);
            }
            return l.Items.Count.CompareTo(m.Items.Count);
        }
        throw new TemplateRuntimeError($"'<' not supported between instances of '{a.TypeName}' and '{b.TypeName}'");
    }

    private static int CompareCodePoints(string a, string b)
    {
        // Ordinal UTF-16 order differs from code point order only when surrogates meet U+E000..U+FFFF.
        var ra = a.EnumerateRunes();
        var rb = b.EnumerateRunes();
        while (true)
        {
            bool ha = ra.MoveNext(), hb = rb.MoveNext();
            if (!ha || !hb) return ha.CompareTo(hb);
            int c = ra.Current.Value.CompareTo(rb.Current.Value);
            if (c != 0) return c;
        }
    }

    /// <summary>Numeric view of bool, int and float (Python treats bools as ints in arithmetic).</summary>
    internal bool TryGetNumber(out double value, out long integer, out bool isInteger)
    {
        switch (this)
        {
            case IntValue i: integer = i.Value; value = i.Value; isInteger = true; return true;
            case BoolValue b: integer = b.Value ? 1 : 0; value = integer; isInteger = true; return true;
            case FloatValue f: integer = 0; value = f.Value; isInteger = false; return true;
            default: integer = 0; value = 0; isInteger = false; return false;
        }
    }

    /// <summary>Python iteration: lists and tuples by item, dicts by key, strings by code point, undefined as empty.</summary>
    internal IReadOnlyList<TemplateValue> Iterate() => this switch
    {
        ListValue l => l.Items,
        DictValue d => d.Entries.Keys.ToList(),
        StringValue s => s.CodePoints().Select(c => (TemplateValue)new StringValue(c)).ToList(),
        UndefinedValue => [],
        _ => throw new TemplateRuntimeError($"'{TypeName}' object is not iterable"),
    };

    /// <summary>Python <c>len()</c>.</summary>
    internal long Length() => this switch
    {
        ListValue l => l.Items.Count,
        DictValue d => d.Entries.Count,
        StringValue s => s.CodePointCount,
        UndefinedValue => 0,
        NamespaceValue n => throw new TemplateRuntimeError("object of type 'Namespace' has no len()"),
        _ => throw new TemplateRuntimeError($"object of type '{TypeName}' has no len()"),
    };
}

/// <summary>
/// Jinja2's default <c>Undefined</c>: prints as "", is false, iterates as empty, has length 0; any other use
/// (attribute access, arithmetic, calling) fails with the reason it is undefined.
/// </summary>
public sealed class UndefinedValue : TemplateValue
{
    public static readonly UndefinedValue Anonymous = new("value is undefined");

    private UndefinedValue(string reason) { Reason = reason; }

    /// <summary>e.g. "'tools' is undefined" or "'dict object' has no attribute 'name'".</summary>
    public string Reason { get; }

    public static UndefinedValue Named(string name) => new($"'{name}' is undefined");

    public static UndefinedValue MissingAttribute(TemplateValue owner, string name) =>
        new($"'{owner.TypeName} object' has no attribute '{name}'");

    public static UndefinedValue MissingItem(TemplateValue owner, TemplateValue key) =>
        new($"'{owner.TypeName} object' has no attribute {key.Repr()}");

    public override string TypeName => "Undefined";
    public override bool IsTruthy => false;
    public override string ToStr() => "";
    public override string Repr() => "Undefined";

    public override TemplateValue GetAttribute(string name) => throw new TemplateRuntimeError(Reason);
    public override TemplateValue GetItem(TemplateValue key) => throw new TemplateRuntimeError(Reason);
}

public sealed class NoneValue : TemplateValue
{
    public static readonly NoneValue Instance = new();
    private NoneValue() { }
    public override string TypeName => "NoneType";
    public override bool IsTruthy => false;
    public override string Repr() => "None";
}

public sealed class BoolValue : TemplateValue
{
    internal static readonly BoolValue TrueValue = new(true);
    internal static readonly BoolValue FalseValue = new(false);
    private BoolValue(bool value) { Value = value; }
    public bool Value { get; }
    public override string TypeName => "bool";
    public override bool IsTruthy => Value;
    public override string Repr() => Value ? "True" : "False";
}

public sealed class IntValue(long value) : TemplateValue
{
    public long Value { get; } = value;
    public override string TypeName => "int";
    public override bool IsTruthy => Value != 0;
    public override string Repr() => Value.ToString(CultureInfo.InvariantCulture);
}

public sealed class FloatValue(double value) : TemplateValue
{
    public double Value { get; } = value;
    public override string TypeName => "float";
    public override bool IsTruthy => Value != 0;
    public override string Repr() => PythonFloat.Repr(Value);
}

public sealed class StringValue(string value) : TemplateValue
{
    public static readonly StringValue Empty = new("");

    public string Value { get; } = value;
    public override string TypeName => "str";
    public override bool IsTruthy => Value.Length > 0;
    public override string ToStr() => Value;
    public override string Repr() => PythonRepr.String(Value);

    private bool HasSurrogates => Value.AsSpan().IndexOfAnyInRange('\uD800', '\uDFFF') >= 0;

    /// <summary>Length in code points, as Python's len().</summary>
    public int CodePointCount => HasSurrogates ? Value.EnumerateRunes().Count() : Value.Length;

    /// <summary>The string's code points, each as a string (one or two UTF-16 units).</summary>
    public IReadOnlyList<string> CodePoints()
    {
        if (!HasSurrogates) return Value.Select(c => c.ToString()).ToList();
        return Value.EnumerateRunes().Select(r => r.ToString()).ToList();
    }

    public override TemplateValue GetAttribute(string name) =>
        (TemplateValue?)StringMethods.Bind(this, name) ?? UndefinedValue.MissingAttribute(this, name);

    public override TemplateValue GetItem(TemplateValue key)
    {
        if (key is IntValue or BoolValue)
        {
            key.TryGetNumber(out _, out long index, out _);
            IReadOnlyList<string> points = CodePoints();
            if (index < 0) index += points.Count;
            return index >= 0 && index < points.Count ? new StringValue(points[(int)index]) : UndefinedValue.MissingItem(this, key);
        }
        return base.GetItem(key);
    }
}

public sealed class ListValue(IReadOnlyList<TemplateValue> items, bool isTuple = false) : TemplateValue
{
    public IReadOnlyList<TemplateValue> Items { get; } = items;

    /// <summary>Tuples print with parentheses and never equal a list, as in Python.</summary>
    public bool IsTuple { get; } = isTuple;

    public override string TypeName => IsTuple ? "tuple" : "list";
    public override bool IsTruthy => Items.Count > 0;

    public override string Repr()
    {
        var sb = new StringBuilder(IsTuple ? "(" : "[");
        for (int i = 0; i < Items.Count; i++)
        {
            if (i > 0) sb.Append(", ");
            sb.Append(Items[i].Repr());
        }
        if (IsTuple && Items.Count == 1) sb.Append(',');
        return sb.Append(IsTuple ? ')' : ']').ToString();
    }

    public override TemplateValue GetAttribute(string name) =>
        (TemplateValue?)SequenceMethods.Bind(this, name) ?? UndefinedValue.MissingAttribute(this, name);

    public override TemplateValue GetItem(TemplateValue key)
    {
        if (key is IntValue or BoolValue)
        {
            key.TryGetNumber(out _, out long index, out _);
            if (index < 0) index += Items.Count;
            return index >= 0 && index < Items.Count ? Items[(int)index] : UndefinedValue.MissingItem(this, key);
        }
        return base.GetItem(key);
    }
}

/// <summary>
/// A dict in insertion order (Python dicts keep order; tojson prints in that order). Keys are any hashable value
/// with Python's equality (1, 1.0 and True are one key); JSON and caller dicts have string keys.
/// </summary>
public sealed class DictValue : TemplateValue
{
    public DictValue(OrderedDictionary<TemplateValue, TemplateValue> entries) { Entries = entries; }

    public DictValue(IEnumerable<KeyValuePair<string, TemplateValue>> entries)
    {
        Entries = NewEntries();
        foreach (var (k, v) in entries) Entries[new StringValue(k)] = v;
    }

    public static OrderedDictionary<TemplateValue, TemplateValue> NewEntries() => new(PythonKeyComparer.Instance);

    public OrderedDictionary<TemplateValue, TemplateValue> Entries { get; }

    public override string TypeName => "dict";
    public override bool IsTruthy => Entries.Count > 0;

    public bool TryGetValue(string key, out TemplateValue value) =>
        Entries.TryGetValue(new StringValue(key), out value!);

    public override string Repr()
    {
        var sb = new StringBuilder("{");
        bool first = true;
        foreach (var (k, v) in Entries)
        {
            if (!first) sb.Append(", ");
            first = false;
            sb.Append(k.Repr()).Append(": ").Append(v.Repr());
        }
        return sb.Append('}').ToString();
    }

    public override TemplateValue GetAttribute(string name) =>
        (TemplateValue?)DictMethods.Bind(this, name)
        ?? (TryGetValue(name, out TemplateValue v) ? v : UndefinedValue.MissingAttribute(this, name));

    public override TemplateValue GetItem(TemplateValue key)
    {
        if (PythonKeyComparer.IsHashable(key) && Entries.TryGetValue(key, out TemplateValue? v)) return v;
        return key is StringValue name ? (TemplateValue?)DictMethods.Bind(this, name.Value) ?? UndefinedValue.MissingItem(this, key)
                                       : UndefinedValue.MissingItem(this, key);
    }
}

/// <summary>Python's hash/eq for dict keys: strings, numbers (1 == 1.0 == True), None, tuples of those.</summary>
internal sealed class PythonKeyComparer : IEqualityComparer<TemplateValue>
{
    public static readonly PythonKeyComparer Instance = new();

    public static bool IsHashable(TemplateValue v) => v switch
    {
        StringValue or IntValue or FloatValue or BoolValue or NoneValue => true,
        ListValue { IsTuple: true } t => t.Items.All(IsHashable),
        _ => false,
    };

    public bool Equals(TemplateValue? x, TemplateValue? y) => x is not null && y is not null && TemplateValue.AreEqual(x, y);

    public int GetHashCode(TemplateValue v)
    {
        switch (v)
        {
            case StringValue s: return StringComparer.Ordinal.GetHashCode(s.Value);
            case NoneValue: return 0x5bd1e995;
            case ListValue { IsTuple: true } t:
            {
                var h = new HashCode();
                foreach (TemplateValue item in t.Items) h.Add(GetHashCode(item));
                return h.ToHashCode();
            }
        }
        if (v.TryGetNumber(out double d, out long i, out bool isInt))
            return isInt ? i.GetHashCode() : d == Math.Floor(d) && Math.Abs(d) < 9.2e18 ? ((long)d).GetHashCode() : d.GetHashCode();
        throw new TemplateRuntimeError($"unhashable type: '{v.TypeName}'");
    }
}

/// <summary>Jinja's <c>namespace()</c>: the one mutable object, so that loops can carry state out.</summary>
public sealed class NamespaceValue(OrderedDictionary<string, TemplateValue> attributes) : TemplateValue
{
    public OrderedDictionary<string, TemplateValue> Attributes { get; } = attributes;

    public override string TypeName => "Namespace";
    public override bool IsTruthy => true;

    public override string Repr()
    {
        var sb = new StringBuilder("<Namespace {");
        bool first = true;
        foreach (var (k, v) in Attributes)
        {
            if (!first) sb.Append(", ");
            first = false;
            sb.Append(PythonRepr.String(k)).Append(": ").Append(v.Repr());
        }
        return sb.Append("}>").ToString();
    }

    public override TemplateValue GetAttribute(string name) =>
        Attributes.TryGetValue(name, out TemplateValue? v) ? v : UndefinedValue.MissingAttribute(this, name);

    public override TemplateValue GetItem(TemplateValue key) =>
        key is StringValue s ? GetAttribute(s.Value) : UndefinedValue.MissingItem(this, key);
}

/// <summary>Arguments of a call: positional, then keyword in the order written.</summary>
public sealed class CallArguments(IReadOnlyList<TemplateValue> positional, OrderedDictionary<string, TemplateValue> keyword)
{
    public static readonly CallArguments Empty = new([], new OrderedDictionary<string, TemplateValue>());

    public IReadOnlyList<TemplateValue> Positional { get; } = positional;
    public OrderedDictionary<string, TemplateValue> Keyword { get; } = keyword;

    /// <summary>Parameter <paramref name="index"/>/<paramref name="name"/> of a Python signature, or null when absent.</summary>
    public TemplateValue? Get(int index, string name)
    {
        if (index < Positional.Count) return Positional[index];
        return Keyword.TryGetValue(name, out TemplateValue? v) ? v : null;
    }

    /// <summary>Fails the way Python does for extra positional or unknown keyword arguments.</summary>
    public void Check(string function, params string[] parameters)
    {
        if (Positional.Count > parameters.Length)
            throw new TemplateRuntimeError($"{function}() takes at most {parameters.Length} argument(s) ({Positional.Count} given)");
        foreach (string k in Keyword.Keys)
        {
            int at = Array.IndexOf(parameters, k);
            if (at < 0) throw new TemplateRuntimeError($"{function}() got an unexpected keyword argument '{k}'");
            if (at < Positional.Count) throw new TemplateRuntimeError($"{function}() got multiple values for argument '{k}'");
        }
    }
}

/// <summary>Anything callable: built-in functions, bound methods, macros, <c>caller</c>.</summary>
public sealed class CallableValue(string name, Func<CallArguments, TemplateValue> invoke) : TemplateValue
{
    public string Name { get; } = name;
    public override string TypeName => "function";
    public override bool IsTruthy => true;
    public override string Repr() => $"<function {Name}>";
    public TemplateValue Invoke(CallArguments arguments) => invoke(arguments);
}
