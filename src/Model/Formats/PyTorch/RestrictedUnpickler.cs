using System.Buffers.Binary;
using System.Globalization;
using System.Text;

namespace LlavaNative.Model.Formats.PyTorch;

/// <summary>A Python tuple read from a pickle.</summary>
internal sealed record PickleTuple(object?[] Items);

/// <summary>A Python dict or <c>collections.OrderedDict</c>, keeping insertion order.</summary>
internal sealed class PickleDict
{
    public List<KeyValuePair<object, object?>> Items { get; } = [];
}

/// <summary>The few callables a weights pickle may name (anything else is refused when the GLOBAL is read).</summary>
internal enum PickleCallable
{
    OrderedDict,
    RebuildTensorV2,
    RebuildTensor,
    RebuildParameter,
    RebuildParameterWithState,
    StorageType,
}

/// <summary>An allowed global: a callable above, or a <c>torch.*Storage</c> class naming an element type.</summary>
internal sealed record PickleGlobal(string Module, string Name, PickleCallable Kind, TorchStorageType? Storage = null)
{
    public string FullName => $"{Module}.{Name}";
}

/// <summary>A <c>torch.*Storage</c> class: its element type, as safetensors names it, and its size.</summary>
internal sealed record TorchStorageType(string ClassName, string TypeName, int ElementBytes, Kernels.Tensors.TensorType? Type);

/// <summary>A storage named by a persistent id: bytes in the archive member <c>data/{Key}</c>.</summary>
internal sealed record StorageReference(string Key, TorchStorageType Type, long ElementCount);

/// <summary>What <c>torch._utils._rebuild_tensor_v2</c> would build: a view of a storage.</summary>
internal sealed record TensorReference(StorageReference Storage, long StorageOffset, long[] Shape, long[] Stride);

/// <summary>
/// A pickle (protocols 2–5) interpreter that builds plain values only: None, bool, int, float, str, bytes, tuple,
/// list, dict, <c>collections.OrderedDict</c>, torch storages (persistent ids) and tensor views
/// (<c>torch._utils._rebuild_tensor_v2</c>, <c>_rebuild_parameter</c>). It never imports or calls anything: every
/// GLOBAL / STACK_GLOBAL outside that list, and every REDUCE / BUILD / NEWOBJ on something that is not one of those
/// values, is refused with a <see cref="PyTorchFormatException"/> naming the file, the byte position and the global.
/// Truncation and malformed opcodes are errors too; each opcode consumes input, so a hostile pickle cannot loop.
/// </summary>
internal sealed class RestrictedUnpickler
{
    /// <summary>The allowed globals: torch.save's state dicts need nothing else.</summary>
    private static readonly Dictionary<string, PickleCallable> AllowedCallables = new(StringComparer.Ordinal)
    {
        ["collections.OrderedDict"] = PickleCallable.OrderedDict,
        ["torch._utils._rebuild_tensor_v2"] = PickleCallable.RebuildTensorV2,
        ["torch._utils._rebuild_tensor"] = PickleCallable.RebuildTensor,
        ["torch._utils._rebuild_parameter"] = PickleCallable.RebuildParameter,
        ["torch._utils._rebuild_parameter_with_state"] = PickleCallable.RebuildParameterWithState,
    };

    private static readonly Dictionary<string, TorchStorageType> StorageTypes = new TorchStorageType[]
    {
        new("FloatStorage", "F32", 4, Kernels.Tensors.TensorType.F32),
        new("HalfStorage", "F16", 2, Kernels.Tensors.TensorType.F16),
        new("BFloat16Storage", "BF16", 2, Kernels.Tensors.TensorType.BF16),
        new("DoubleStorage", "F64", 8, null),
        new("LongStorage", "I64", 8, null),
        new("IntStorage", "I32", 4, null),
        new("ShortStorage", "I16", 2, null),
        new("CharStorage", "I8", 1, null),
        new("ByteStorage", "U8", 1, null),
        new("BoolStorage", "BOOL", 1, null),
    }.ToDictionary(s => s.ClassName, StringComparer.Ordinal);

    private static readonly object Mark = new();

    private readonly string _path;
    private readonly byte[] _data;
    private int _pos;
    private int _opStart;
    private readonly List<object?> _stack = [];
    private readonly List<int> _marks = [];
    private readonly Dictionary<long, object?> _memo = [];

    private RestrictedUnpickler(string path, byte[] data)
    {
        _path = path;
        _data = data;
    }

    /// <summary>The object the pickle in <paramref name="data"/> describes (from a member of <paramref name="path"/>).</summary>
    public static object? Load(string path, byte[] data) => new RestrictedUnpickler(path, data).Run();

    private PyTorchFormatException Error(string problem) => new(_path, $"pickle byte {_opStart}: {problem}");

    private object? Run()
    {
        while (true)
        {
            _opStart = _pos;
            byte op = ReadByte();
            switch (op)
            {
                case 0x80: // PROTO
                    int protocol = ReadByte();
                    if (protocol > 5) throw Error($"pickle protocol {protocol} is newer than 5");
                    break;
                case 0x95: Skip(8); break; // FRAME: a length hint only
                case (byte)'.': // STOP
                    if (_stack.Count != 1 || _marks.Count != 0) throw Error($"STOP with {_stack.Count} values on the stack (malformed pickle)");
                    return _stack[0];
                case (byte)'(': _marks.Add(_stack.Count); _stack.Add(Mark); break;
                case (byte)'0': Pop(); break;
                case (byte)'1': PopMark(); break;
                case (byte)'2': Push(Peek()); break;

                case (byte)'N': Push(null); break;
                case 0x88: Push(true); break;
                case 0x89: Push(false); break;
                case (byte)'J': Push((long)BinaryPrimitives.ReadInt32LittleEndian(Take(4))); break;
                case (byte)'K': Push((long)ReadByte()); break;
                case (byte)'M': Push((long)BinaryPrimitives.ReadUInt16LittleEndian(Take(2))); break;
                case 0x8a: Push(ReadLong(ReadByte())); break; // LONG1
                case 0x8b: Push(ReadLong(checked((int)ReadLength(4)))); break; // LONG4
                case (byte)'I': Push(ParseTextInt(ReadLine(), allowBool: true)); break;
                case (byte)'L': Push(ParseTextInt(ReadLine().TrimEnd('L'), allowBool: false)); break;
                case (byte)'G': Push(BinaryPrimitives.ReadDoubleBigEndian(Take(8))); break;
                case (byte)'F':
                    string f = ReadLine();
                    Push(double.TryParse(f, NumberStyles.Float, CultureInfo.InvariantCulture, out double d) ? d : throw Error($"FLOAT '{f}' is not a number"));
                    break;

                case (byte)'X': Push(Utf8(ReadLength(4))); break;      // BINUNICODE
                case 0x8c: Push(Utf8(ReadByte())); break;             // SHORT_BINUNICODE
                case 0x8d: Push(Utf8(ReadLength(8))); break;          // BINUNICODE8
                case (byte)'T': Push(Latin1(ReadLength(4))); break;   // BINSTRING (Python 2 str)
                case (byte)'U': Push(Latin1(ReadByte())); break;      // SHORT_BINSTRING
                case (byte)'B': Push(Take(ReadLength(4)).ToArray()); break; // BINBYTES
                case (byte)'C': Push(Take(ReadByte()).ToArray()); break;    // SHORT_BINBYTES
                case 0x8e: Push(Take(ReadLength(8)).ToArray()); break;      // BINBYTES8

                case (byte)')': Push(new PickleTuple([])); break;
                case (byte)'t': Push(new PickleTuple(PopMark().ToArray())); break;
                case 0x85: Push(new PickleTuple([Pop()])); break;
                case 0x86: { var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b])); break; }
                case 0x87: { var c = Pop(); var b = Pop(); var a = Pop(); Push(new PickleTuple([a, b, c])); break; }

                case (byte)']': Push(new List<object?>()); break;
                case (byte)'l': Push(PopMark()); break;
                case (byte)'a': { var v = Pop(); ListAt(-1).Add(v); break; }
                case (byte)'e': { var items = PopMark(); ListAt(-1).AddRange(items); break; }

                case (byte)'}': Push(new PickleDict()); break;
                case (byte)'d': { var items = PopMark(); var dict = new PickleDict(); AddPairs(dict, items); Push(dict); break; }
                case (byte)'s': { var v = Pop(); var k = Pop(); AddPairs(DictAt(-1), [k, v]); break; }
                case (byte)'u': { var items = PopMark(); AddPairs(DictAt(-1), items); break; }

                case (byte)'q': _memo[ReadByte()] = Peek(); break;           // BINPUT
                case (byte)'r': _memo[ReadLength(4)] = Peek(); break;        // LONG_BINPUT
                case (byte)'p': _memo[ParseMemoKey(ReadLine())] = Peek(); break; // PUT
                case 0x94: _memo[_memo.Count] = Peek(); break;               // MEMOIZE
                case (byte)'h': Push(MemoGet(ReadByte())); break;            // BINGET
                case (byte)'j': Push(MemoGet(ReadLength(4))); break;         // LONG_BINGET
                case (byte)'g': Push(MemoGet(ParseMemoKey(ReadLine()))); break; // GET

                case (byte)'c': // GLOBAL "module\nname\n"
                {
                    string module = ReadLine(), name = ReadLine();
                    Push(ResolveGlobal(module, name));
                    break;
                }
                case 0x93: // STACK_GLOBAL
                {
                    object? name = Pop(), module = Pop();
                    if (module is not string m || name is not string n) throw Error("STACK_GLOBAL needs two strings (module, name)");
                    Push(ResolveGlobal(m, n));
                    break;
                }
                case (byte)'R': // REDUCE
                {
                    var args = Pop();
                    var callable = Pop();
                    if (args is not PickleTuple tuple) throw Error("REDUCE arguments are not a tuple");
                    Push(Call(callable, tuple.Items));
                    break;
                }
                case (byte)'b': // BUILD: set state on an object
                {
                    Pop(); // state: an OrderedDict's attributes (e.g. a state dict's _metadata), not needed
                    if (Peek() is not (PickleDict or TensorReference))
                        throw Error($"BUILD on a {Describe(Peek())} is not allowed (only a state dict's attributes are accepted)");
                    break;
                }
                case (byte)'Q': Push(PersistentLoad(Pop())); break; // BINPERSID

                case (byte)'P': throw Error("text persistent ids (PERSID, protocol 0) are not supported");
                case 0x81 or 0x92: throw Error($"{(op == 0x81 ? "NEWOBJ" : "NEWOBJ_EX")} (creating an instance of {Describe(_stack.Count >= 2 ? _stack[^2] : null)}) is not allowed in a weights file");
                case (byte)'i' or (byte)'o': throw Error("INST / OBJ (calling a class to build an object) are not allowed in a weights file");
                case 0x82 or 0x83 or 0x84: throw Error("extension-registry globals (EXT1/2/4) are not allowed in a weights file");
                case 0x8f or 0x90 or 0x91: throw Error("sets are not expected in a weights file");
                case 0x96 or 0x97 or 0x98: throw Error("out-of-band buffers (protocol 5) are not supported");
                default: throw Error($"unknown pickle opcode 0x{op:X2} (corrupt file?)");
            }
        }
    }

    private object ResolveGlobal(string module, string name)
    {
        string full = $"{module}.{name}";
        if (AllowedCallables.TryGetValue(full, out var kind)) return new PickleGlobal(module, name, kind);
        if (module == "torch" && StorageTypes.TryGetValue(name, out var storage))
            return new PickleGlobal(module, name, PickleCallable.StorageType, storage);
        throw Error($"refusing global '{full}': a weights pickle may only name tensor rebuilding (torch._utils._rebuild_tensor_v2, " +
                    "_rebuild_parameter), torch.*Storage types and collections.OrderedDict; this file would run other code when " +
                    "unpickled by PyTorch, so it is not loaded (LlavaNative never executes pickled code)");
    }

    private object Call(object? callable, object?[] args)
    {
        if (callable is not PickleGlobal g || g.Kind == PickleCallable.StorageType)
            throw Error($"REDUCE calls {Describe(callable)}, which is not an allowed function");
        switch (g.Kind)
        {
            case PickleCallable.OrderedDict:
            {
                var dict = new PickleDict();
                if (args.Length == 0) return dict;
                if (args.Length == 1 && args[0] is List<object?> pairs)
                {
                    foreach (var p in pairs)
                        if (p is PickleTuple { Items.Length: 2 } kv) AddPairs(dict, kv.Items);
                        else throw Error("OrderedDict(...) argument is not a list of (key, value) pairs");
                    return dict;
                }
                throw Error("OrderedDict(...) called with unexpected arguments");
            }
            case PickleCallable.RebuildTensorV2 or PickleCallable.RebuildTensor:
            {
                if (args.Length < 4) throw Error($"{g.FullName} needs (storage, offset, size, stride), got {args.Length} arguments");
                if (args[0] is not StorageReference storage) throw Error($"{g.FullName}: first argument is a {Describe(args[0])}, not a storage");
                if (args[1] is not long offset || offset < 0) throw Error($"{g.FullName}: storage offset is not a non-negative integer");
                return new TensorReference(storage, offset, LongTuple(args[2], "size"), LongTuple(args[3], "stride"));
            }
            case PickleCallable.RebuildParameter or PickleCallable.RebuildParameterWithState:
                if (args.Length < 1 || args[0] is not TensorReference tensor) throw Error($"{g.FullName}: first argument is not a tensor");
                return tensor;
            default:
                throw Error($"REDUCE calls {g.FullName}, which is not an allowed function");
        }
    }

    private long[] LongTuple(object? value, string what)
    {
        if (value is not PickleTuple t) throw Error($"tensor {what} is a {Describe(value)}, not a tuple of integers");
        var result = new long[t.Items.Length];
        for (int i = 0; i < result.Length; i++)
            result[i] = t.Items[i] is long v && v >= 0 ? v : throw Error($"tensor {what} holds {Describe(t.Items[i])}, not a non-negative integer");
        return result;
    }

    /// <summary>torch.save's persistent id: <c>('storage', torch.XStorage, key, location, numel)</c>.</summary>
    private StorageReference PersistentLoad(object? pid)
    {
        if (pid is not PickleTuple { Items: ["storage", PickleGlobal { Kind: PickleCallable.StorageType, Storage: { } type }, string key, _, long numel, ..] } || numel < 0)
            throw Error($"persistent id {Describe(pid)} is not a torch storage ('storage', torch.XStorage, key, location, numel)");
        return new StorageReference(key, type, numel);
    }

    private void AddPairs(PickleDict dict, IReadOnlyList<object?> items)
    {
        if (items.Count % 2 != 0) throw Error("dict items are not key/value pairs");
        for (int i = 0; i < items.Count; i += 2)
        {
            if (items[i] is not (string or long or bool or double or PickleTuple or null))
                throw Error($"a {Describe(items[i])} cannot be a dict key");
            dict.Items.Add(new(items[i] ?? "None", items[i + 1]));
        }
    }

    private static string Describe(object? value) => value switch
    {
        null => "None",
        PickleGlobal g => g.FullName,
        PickleTuple t => $"tuple of {t.Items.Length}",
        PickleDict => "dict",
        List<object?> => "list",
        TensorReference => "tensor",
        StorageReference => "storage",
        string s => $"'{(s.Length > 40 ? s[..40] + "…" : s)}'",
        _ => value.GetType().Name switch { "Int64" => "int", "Double" => "float", "Boolean" => "bool", "Byte[]" => "bytes", var n => n },
    };

    // ---- stack, memo and input --------------------------------------------------------------------------

    private void Push(object? value) => _stack.Add(value);

    private object? Pop()
    {
        if (_stack.Count == 0 || (_marks.Count > 0 && _marks[^1] == _stack.Count - 1)) throw Error("stack underflow (malformed pickle)");
        var v = _stack[^1];
        _stack.RemoveAt(_stack.Count - 1);
        return v;
    }

    private object? Peek()
    {
        if (_stack.Count == 0 || ReferenceEquals(_stack[^1], Mark)) throw Error("stack underflow (malformed pickle)");
        return _stack[^1];
    }

    private List<object?> PopMark()
    {
        if (_marks.Count == 0) throw Error("no MARK on the stack (malformed pickle)");
        int at = _marks[^1];
        _marks.RemoveAt(_marks.Count - 1);
        var items = _stack.GetRange(at + 1, _stack.Count - at - 1);
        _stack.RemoveRange(at, _stack.Count - at);
        return items;
    }

    private List<object?> ListAt(int index) =>
        _stack.Count >= -index && _stack[^(-index)] is List<object?> l ? l : throw Error("APPEND to something that is not a list");

    private PickleDict DictAt(int index) =>
        _stack.Count >= -index && _stack[^(-index)] is PickleDict d ? d : throw Error("SETITEM(S) on something that is not a dict");

    private object? MemoGet(long key) => _memo.TryGetValue(key, out var v) ? v : throw Error($"memo key {key} was never stored (corrupt pickle)");

    private byte ReadByte() => _pos < _data.Length ? _data[_pos++] : throw Error("the pickle ends early (truncated)");

    private ReadOnlySpan<byte> Take(long n)
    {
        if (n < 0 || n > _data.Length - _pos) throw Error($"a {n}-byte value runs past the end of the {_data.Length}-byte pickle (truncated)");
        var span = new ReadOnlySpan<byte>(_data, _pos, (int)n);
        _pos += (int)n;
        return span;
    }

    private void Skip(int n) => Take(n);

    private long ReadLength(int bytes) => bytes == 4 ? BinaryPrimitives.ReadUInt32LittleEndian(Take(4)) : (long)Math.Min(BinaryPrimitives.ReadUInt64LittleEndian(Take(8)), long.MaxValue);

    private string Utf8(long n)
    {
        var bytes = Take(n);
        try { return new UTF8Encoding(false, true).GetString(bytes); }
        catch (DecoderFallbackException) { throw Error("a string is not valid UTF-8"); }
    }

    private string Latin1(long n) => Encoding.Latin1.GetString(Take(n));

    private string ReadLine()
    {
        int end = Array.IndexOf(_data, (byte)'\n', _pos);
        if (end < 0) throw Error("a text argument has no terminating newline (truncated)");
        string s = Encoding.UTF8.GetString(_data, _pos, end - _pos);
        _pos = end + 1;
        return s;
    }

    /// <summary>Two's-complement little-endian integer of <paramref name="n"/> bytes (LONG1/LONG4); up to 8 bytes.</summary>
    private long ReadLong(int n)
    {
        var bytes = Take(n);
        if (n == 0) return 0;
        if (n > 8) throw Error($"a {n}-byte integer is larger than any tensor shape or offset");
        long v = 0;
        for (int i = n - 1; i >= 0; i--) v = (v << 8) | bytes[i];
        if (n < 8 && (bytes[n - 1] & 0x80) != 0) v -= 1L << (8 * n);
        return v;
    }

    private object ParseTextInt(string text, bool allowBool)
    {
        if (allowBool && text == "00") return false;
        if (allowBool && text == "01") return true;
        return long.TryParse(text, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out long v) ? v : throw Error($"'{text}' is not an integer");
    }

    private long ParseMemoKey(string text) => (long)ParseTextInt(text, allowBool: false);
}
