using System.Text;
using LlavaNative.Kernels.Tensors;

using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Formats.Gguf;

/// <summary>One tensor of a GGUF file. <see cref="Data"/> points into the memory-mapped file.</summary>
public sealed unsafe class GgufTensorInfo
{
    public required string Name { get; init; }
    public required TensorType Type { get; init; }

    /// <summary>ggml dimension order: <c>Dimensions[0]</c> is the innermost (contiguous) one.</summary>
    public required long[] Dimensions { get; init; }

    /// <summary>Offset relative to the start of the data section.</summary>
    public required long Offset { get; init; }

    public required long ByteSize { get; init; }
    public long ElementCount { get; init; }
    public byte* Data { get; internal set; }

    public string ShapeText => "[" + string.Join(", ", Dimensions) + "]";
}

/// <summary>
/// A memory-mapped GGUF file (versions 2 and 3): metadata, tensor infos and pointers to tensor data.
/// Tensor bytes are never copied; they stay valid until the file is disposed. Every structural problem
/// (wrong magic, truncation, absurd counts, offsets past the end, unknown types) is a
/// <see cref="GgufFormatException"/> naming the file and the offending key or tensor.
/// </summary>
public sealed unsafe class GgufFile : IDisposable
{
    private const uint Magic = 0x46554747; // "GGUF" little-endian
    private const int MaxArrayNesting = 8;
    private const int MaxDimensions = 4;

    private readonly ReadOnlyFileMapping _mapping;
    private byte* _base;
    private readonly Dictionary<string, GgufValue> _metadata = new(StringComparer.Ordinal);
    private readonly Dictionary<string, GgufTensorInfo> _tensorsByName = new(StringComparer.Ordinal);

    public string Path { get; }
    public uint Version { get; }
    public long FileSize { get; }
    public int Alignment { get; }
    public long DataOffset { get; }

    /// <summary>Metadata in file order.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata { get; }

    /// <summary>Tensor infos in file order.</summary>
    public IReadOnlyList<GgufTensorInfo> Tensors { get; }

    private GgufFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        FileSize = new FileInfo(path).Length;
        if (FileSize < 24) throw Error($"file is {FileSize} bytes, too short for a GGUF header (24 bytes)");

        _mapping = new ReadOnlyFileMapping(path);
        try
        {
            _base = _mapping.Pointer;

            var r = new Cursor(this, _base, FileSize);
            uint magic = r.UInt32("magic");
            if (magic != Magic)
                throw Error($"not a GGUF file (magic 0x{magic:X8}, expected 0x{Magic:X8} \"GGUF\")");
            Version = r.UInt32("version");
            if (Version is not (2 or 3))
                throw Error($"GGUF version {Version} is not supported (supported: 2, 3)");
            ulong tensorCount = r.UInt64("tensor count");
            ulong kvCount = r.UInt64("metadata count");
            // Every tensor info needs at least 8+1+4+8+4+8 bytes and every key/value at least 8+1+4+1.
            if (tensorCount > (ulong)FileSize / 33) throw Error($"tensor count {tensorCount} is impossible for a {FileSize}-byte file");
            if (kvCount > (ulong)FileSize / 14) throw Error($"metadata count {kvCount} is impossible for a {FileSize}-byte file");

            var metadata = new List<KeyValuePair<string, GgufValue>>((int)kvCount);
            for (ulong i = 0; i < kvCount; i++)
            {
                string key = r.String($"metadata key #{i}");
                uint type = r.UInt32($"type of '{key}'");
                var value = ReadValue(ref r, (GgufValueType)type, key, 0);
                if (!_metadata.TryAdd(key, value)) throw Error($"metadata key '{key}' appears twice");
                metadata.Add(new(key, value));
            }
            Metadata = metadata;

            Alignment = 32;
            if (_metadata.TryGetValue("general.alignment", out var alignValue))
            {
                long a = ToInt64(alignValue, "general.alignment");
                if (a <= 0 || a > 1 << 20 || (a & (a - 1)) != 0)
                    throw Error($"general.alignment = {a} is not a power of two between 1 and 2^20");
                Alignment = (int)a;
            }

            var tensors = new List<GgufTensorInfo>((int)tensorCount);
            for (ulong i = 0; i < tensorCount; i++)
                tensors.Add(ReadTensorInfo(ref r, i));

            DataOffset = AlignUp(r.Position, Alignment);
            if (tensorCount > 0 && DataOffset > FileSize)
                throw Error($"data section starts at {DataOffset}, past the end of the {FileSize}-byte file (truncated?)");
            long dataSize = FileSize - DataOffset;
            foreach (var t in tensors)
            {
                if (t.Offset % Alignment != 0)
                    throw Error($"tensor '{t.Name}' offset {t.Offset} is not a multiple of the alignment {Alignment}");
                if (t.Offset > dataSize || t.ByteSize > dataSize - t.Offset)
                    throw Error($"tensor '{t.Name}' ({TensorTypeInfo.Name(t.Type)} {t.ShapeText}, {t.ByteSize} bytes at data offset {t.Offset}) extends past the end of the file: the file is truncated or corrupt ({dataSize} data bytes)");
                t.Data = _base + DataOffset + t.Offset;
                if (!_tensorsByName.TryAdd(t.Name, t)) throw Error($"tensor '{t.Name}' appears twice");
            }
            Tensors = tensors;
        }
        catch
        {
            ReleaseMapping();
            throw;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    public static GgufFile Open(string path) => new(path);

    private GgufFormatException Error(string problem) => new(Path, problem);

    private static long AlignUp(long v, long a) => (v + a - 1) / a * a;

    private GgufTensorInfo ReadTensorInfo(ref Cursor r, ulong index)
    {
        string name = r.String($"name of tensor #{index}");
        uint nDims = r.UInt32($"dimension count of tensor '{name}'");
        if (nDims is 0 or > MaxDimensions)
            throw Error($"tensor '{name}' has {nDims} dimensions (supported: 1 to {MaxDimensions})");
        var dims = new long[nDims];
        long elements = 1;
        for (int d = 0; d < nDims; d++)
        {
            ulong ne = r.UInt64($"dimension {d} of tensor '{name}'");
            if (ne == 0 || ne > (ulong)long.MaxValue / 2)
                throw Error($"tensor '{name}' dimension {d} is {ne}");
            dims[d] = (long)ne;
            try { elements = checked(elements * (long)ne); }
            catch (OverflowException) { throw Error($"tensor '{name}' element count overflows ({string.Join("×", dims.Take(d + 1))})"); }
        }
        uint rawType = r.UInt32($"type of tensor '{name}'");
        var type = (TensorType)rawType;
        if (!TensorTypeInfo.IsKnown(type))
            throw Error($"tensor '{name}' has type {rawType} (unknown); supported: {TensorTypeInfo.SupportedWeightTypeNames}");
        int blockElements = TensorTypeInfo.BlockElements(type);
        if (dims[0] % blockElements != 0)
            throw Error($"tensor '{name}' is {type} with a row of {dims[0]} elements, not a multiple of the block size {blockElements}");
        long bytes;
        try { bytes = checked(elements / blockElements * TensorTypeInfo.BlockBytes(type)); }
        catch (OverflowException) { throw Error($"tensor '{name}' byte size overflows"); }
        if (bytes > FileSize) throw Error($"tensor '{name}' ({type} {string.Join("×", dims)}) needs {bytes} bytes, more than the whole file ({FileSize})");
        ulong offset = r.UInt64($"offset of tensor '{name}'");
        if (offset > (ulong)FileSize) throw Error($"tensor '{name}' offset {offset} is past the end of the file");
        return new GgufTensorInfo
        {
            Name = name, Type = type, Dimensions = dims, Offset = (long)offset, ByteSize = bytes, ElementCount = elements,
        };
    }

    private GgufValue ReadValue(ref Cursor r, GgufValueType type, string key, int depth) => type switch
    {
        GgufValueType.UInt8 => new(type, r.Byte(key)),
        GgufValueType.Int8 => new(type, (sbyte)r.Byte(key)),
        GgufValueType.UInt16 => new(type, r.UInt16(key)),
        GgufValueType.Int16 => new(type, (short)r.UInt16(key)),
        GgufValueType.UInt32 => new(type, r.UInt32(key)),
        GgufValueType.Int32 => new(type, (int)r.UInt32(key)),
        GgufValueType.Float32 => new(type, BitConverter.Int32BitsToSingle((int)r.UInt32(key))),
        GgufValueType.Bool => new(type, ReadBool(ref r, key)),
        GgufValueType.String => new(type, r.String(key)),
        GgufValueType.UInt64 => new(type, r.UInt64(key)),
        GgufValueType.Int64 => new(type, (long)r.UInt64(key)),
        GgufValueType.Float64 => new(type, BitConverter.Int64BitsToDouble((long)r.UInt64(key))),
        GgufValueType.Array => new(type, ReadArray(ref r, key, depth)),
        _ => throw Error($"metadata '{key}' has value type {(uint)type} (unknown; expected 0..12)"),
    };

    private bool ReadBool(ref Cursor r, string key)
    {
        byte b = r.Byte(key);
        if (b > 1) throw Error($"metadata '{key}' is a bool with byte value {b}");
        return b == 1;
    }

    private GgufArray ReadArray(ref Cursor r, string key, int depth)
    {
        if (depth >= MaxArrayNesting) throw Error($"metadata '{key}' nests arrays deeper than {MaxArrayNesting} levels");
        var elementType = (GgufValueType)r.UInt32($"element type of '{key}'");
        ulong count = r.UInt64($"length of '{key}'");
        long minElementBytes = elementType switch
        {
            GgufValueType.UInt8 or GgufValueType.Int8 or GgufValueType.Bool => 1,
            GgufValueType.UInt16 or GgufValueType.Int16 => 2,
            GgufValueType.UInt32 or GgufValueType.Int32 or GgufValueType.Float32 => 4,
            GgufValueType.UInt64 or GgufValueType.Int64 or GgufValueType.Float64 or GgufValueType.String => 8,
            GgufValueType.Array => 12,
            _ => throw Error($"metadata '{key}' is an array of unknown element type {(uint)elementType}"),
        };
        if (count > (ulong)(r.Remaining / minElementBytes))
            throw Error($"metadata '{key}' claims {count} elements but only {r.Remaining} bytes remain (truncated or corrupt)");
        if (count > int.MaxValue) throw Error($"metadata '{key}' claims {count} elements");
        int n = (int)count;
        switch (elementType)
        {
            case GgufValueType.UInt8: { var a = new byte[n]; r.Copy(a.AsSpan(), key); return new(elementType, a); }
            case GgufValueType.Int8: { var a = new sbyte[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.UInt16: { var a = new ushort[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.Int16: { var a = new short[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.UInt32: { var a = new uint[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.Int32: { var a = new int[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.Float32: { var a = new float[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.UInt64: { var a = new ulong[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.Int64: { var a = new long[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.Float64: { var a = new double[n]; r.Copy(System.Runtime.InteropServices.MemoryMarshal.AsBytes(a.AsSpan()), key); return new(elementType, a); }
            case GgufValueType.Bool: { var a = new bool[n]; for (int i = 0; i < n; i++) a[i] = ReadBool(ref r, key); return new(elementType, a); }
            case GgufValueType.String: { var a = new string[n]; for (int i = 0; i < n; i++) a[i] = r.String(key); return new(elementType, a); }
            default:
            {
                var a = new GgufArray[n];
                // Each element of an array of arrays is itself (element type, count, items), as gguf-py writes it.
                for (int i = 0; i < n; i++) a[i] = ReadArray(ref r, $"{key}[{i}]", depth + 1);
                return new(elementType, a);
            }
        }
    }

    // ---- metadata accessors ------------------------------------------------------------------------------

    public bool Contains(string key) => _metadata.ContainsKey(key);

    public bool TryGetValue(string key, out GgufValue value) => _metadata.TryGetValue(key, out value!);

    public GgufValue GetValue(string key) =>
        _metadata.TryGetValue(key, out var v) ? v : throw Error($"required metadata key '{key}' is missing");

    public string GetString(string key)
    {
        var v = GetValue(key);
        return v.Value as string ?? throw Error($"metadata '{key}' is {v.Type}, expected a string");
    }

    public string? GetStringOrNull(string key) =>
        _metadata.TryGetValue(key, out var v) ? v.Value as string ?? throw Error($"metadata '{key}' is {v.Type}, expected a string") : null;

    /// <summary>Any integer-typed value that fits in an int.</summary>
    public int GetInt32(string key)
    {
        long v = ToInt64(GetValue(key), key);
        if (v is < int.MinValue or > int.MaxValue) throw Error($"metadata '{key}' = {v} is out of range");
        return (int)v;
    }

    public int GetInt32(string key, int fallback) => Contains(key) ? GetInt32(key) : fallback;

    public float GetFloat32(string key)
    {
        var v = GetValue(key);
        return v.Value switch
        {
            float f => f,
            double d => (float)d,
            _ => throw Error($"metadata '{key}' is {v.Type}, expected a float"),
        };
    }

    public float GetFloat32(string key, float fallback) => Contains(key) ? GetFloat32(key) : fallback;

    public bool GetBool(string key, bool fallback)
    {
        if (!_metadata.TryGetValue(key, out var v)) return fallback;
        return v.Value as bool? ?? throw Error($"metadata '{key}' is {v.Type}, expected a bool");
    }

    /// <summary>An array whose elements are <typeparamref name="T"/> (e.g. string, float, int).</summary>
    public T[] GetArray<T>(string key)
    {
        var v = GetValue(key);
        if (v.Value is GgufArray { Items: T[] items }) return items;
        string actual = v.Value is GgufArray a ? $"an array of {a.ElementType}" : v.Type.ToString();
        throw Error($"metadata '{key}' is {actual}, expected an array of {typeof(T).Name}");
    }

    /// <summary>An array of any integer element type, widened to int.</summary>
    public int[] GetIntArray(string key)
    {
        var v = GetValue(key);
        if (v.Value is not GgufArray a) throw Error($"metadata '{key}' is {v.Type}, expected an integer array");
        var result = new int[a.Length];
        for (int i = 0; i < a.Length; i++)
        {
            long x = a.Items.GetValue(i) switch
            {
                byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui, int ii => ii,
                ulong ul when ul <= int.MaxValue => (long)ul, long l => l,
                var other => throw Error($"metadata '{key}'[{i}] = {other} is not an int"),
            };
            if (x is < int.MinValue or > int.MaxValue) throw Error($"metadata '{key}'[{i}] = {x} is out of range");
            result[i] = (int)x;
        }
        return result;
    }

    private long ToInt64(GgufValue v, string key) => v.Value switch
    {
        byte b => b, sbyte sb => sb, ushort us => us, short s => s, uint ui => ui, int i => i, long l => l,
        ulong ul when ul <= long.MaxValue => (long)ul,
        _ => throw Error($"metadata '{key}' is {v.Type} ({v}), expected an integer"),
    };

    // ---- tensors -----------------------------------------------------------------------------------------

    public bool HasTensor(string name) => _tensorsByName.ContainsKey(name);

    public GgufTensorInfo? FindTensor(string name) => _tensorsByName.GetValueOrDefault(name);

    public GgufTensorInfo GetTensor(string name) =>
        _tensorsByName.TryGetValue(name, out var t) ? t : throw Error($"required tensor '{name}' is missing");

    public void Dispose()
    {
        ReleaseMapping();
        GC.SuppressFinalize(this);
    }

    private void ReleaseMapping()
    {
        _base = null;
        _mapping.Dispose();
    }

    /// <summary>Bounds-checked little-endian reader over the mapped header.</summary>
    private ref struct Cursor(GgufFile file, byte* start, long length)
    {
        private long _pos;
        public readonly long Position => _pos;
        public readonly long Remaining => length - _pos;

        private readonly void Need(long n, string what)
        {
            if (n > length - _pos)
                throw file.Error($"unexpected end of file reading {what} at byte {_pos} (needs {n} bytes, {length - _pos} left): the file is truncated or corrupt");
        }

        public byte Byte(string what) { Need(1, what); return start[_pos++]; }
        public ushort UInt16(string what) { Need(2, what); ushort v = *(ushort*)(start + _pos); _pos += 2; return v; }
        public uint UInt32(string what) { Need(4, what); uint v = *(uint*)(start + _pos); _pos += 4; return v; }
        public ulong UInt64(string what) { Need(8, what); ulong v = *(ulong*)(start + _pos); _pos += 8; return v; }

        public void Copy(Span<byte> destination, string what)
        {
            Need(destination.Length, what);
            new ReadOnlySpan<byte>(start + _pos, destination.Length).CopyTo(destination);
            _pos += destination.Length;
        }

        public string String(string what)
        {
            ulong n = UInt64(what);
            if (n > (ulong)Remaining || n > int.MaxValue)
                throw file.Error($"string length {n} of {what} exceeds the {Remaining} bytes left (truncated or corrupt)");
            var s = Encoding.UTF8.GetString(start + _pos, (int)n);
            _pos += (long)n;
            return s;
        }
    }
}
