using System.Runtime.InteropServices;
using System.Text;
using LlavaNative.Kernels.Tensors;

using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Formats.Gguf;

/// <summary>
/// Builds a GGUF v3 file: metadata in insertion order, tensor infos, then the tensor data section, each tensor
/// starting at a multiple of the alignment (<c>general.alignment</c> if set, else 32) and zero-padded to the
/// next one, which is the layout ggml's reader requires (offsets are consecutive padded sizes).
/// Tensor bytes are supplied by the caller in their final encoding (F32, F16, any quant type) with ggml
/// dimensions (<c>ne[0]</c> = contiguous row length, e.g. the input features of a Linear layer); they are
/// either held in memory or produced by a callback while the file is written, so a converter can stream a
/// model larger than memory.
/// </summary>
public sealed class GgufWriter
{
    public const uint Version = 3;
    public const int DefaultAlignment = 32;
    public const string AlignmentKey = "general.alignment";

    /// <summary>ggml's GGML_MAX_NAME is 64 including the terminating zero.</summary>
    public const int MaxTensorNameBytes = 63;

    private const uint Magic = 0x46554747; // "GGUF" little-endian

    private readonly List<KeyValuePair<string, GgufValue>> _metadata = [];
    private readonly Dictionary<string, int> _metadataIndex = new(StringComparer.Ordinal);
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _tensorNames = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, TensorType Type, long[] Dimensions, long ByteSize,
        ReadOnlyMemory<byte> Data, Action<Stream>? Producer);

    /// <summary>Metadata in the order it will be written.</summary>
    public IReadOnlyList<KeyValuePair<string, GgufValue>> Metadata => _metadata;

    public int TensorCount => _tensors.Count;

    /// <summary>Alignment of the data section and of every tensor: <c>general.alignment</c> if set, else 32.</summary>
    public int Alignment =>
        _metadataIndex.TryGetValue(AlignmentKey, out int i) ? checked((int)(uint)_metadata[i].Value.Value) : DefaultAlignment;

    // ---- metadata --------------------------------------------------------------------------------------------

    /// <summary>Adds a key, or replaces its value in place (the key keeps its position).</summary>
    public void Set(string key, GgufValue value)
    {
        if (string.IsNullOrEmpty(key))
            throw new ArgumentException("a GGUF metadata key must not be empty", nameof(key));
        Validate(key, value);
        if (key == AlignmentKey)
        {
            if (value.Type != GgufValueType.UInt32)
                throw new ArgumentException($"'{AlignmentKey}' must be a UInt32 (ggml rejects other types), not {value.Type}");
            uint a = (uint)value.Value;
            if (a == 0 || (a & (a - 1)) != 0 || a > 1 << 20)
                throw new ArgumentException($"'{AlignmentKey}' = {a} is not a power of two between 1 and 2^20");
        }
        var entry = new KeyValuePair<string, GgufValue>(key, value);
        if (_metadataIndex.TryGetValue(key, out int index))
            _metadata[index] = entry;
        else
        {
            _metadataIndex[key] = _metadata.Count;
            _metadata.Add(entry);
        }
    }

    public void SetUInt8(string key, byte value) => Set(key, new GgufValue(GgufValueType.UInt8, value));
    public void SetInt8(string key, sbyte value) => Set(key, new GgufValue(GgufValueType.Int8, value));
    public void SetUInt16(string key, ushort value) => Set(key, new GgufValue(GgufValueType.UInt16, value));
    public void SetInt16(string key, short value) => Set(key, new GgufValue(GgufValueType.Int16, value));
    public void SetUInt32(string key, uint value) => Set(key, new GgufValue(GgufValueType.UInt32, value));
    public void SetInt32(string key, int value) => Set(key, new GgufValue(GgufValueType.Int32, value));
    public void SetFloat32(string key, float value) => Set(key, new GgufValue(GgufValueType.Float32, value));
    public void SetBool(string key, bool value) => Set(key, new GgufValue(GgufValueType.Bool, value));
    public void SetString(string key, string value) => Set(key, new GgufValue(GgufValueType.String, value));
    public void SetUInt64(string key, ulong value) => Set(key, new GgufValue(GgufValueType.UInt64, value));
    public void SetInt64(string key, long value) => Set(key, new GgufValue(GgufValueType.Int64, value));
    public void SetFloat64(string key, double value) => Set(key, new GgufValue(GgufValueType.Float64, value));

    /// <summary>An array value (nested arrays: element type Array with <c>GgufArray[]</c> items).</summary>
    public void SetArray(string key, GgufArray array) => Set(key, new GgufValue(GgufValueType.Array, array));

    /// <summary>
    /// A flat array of byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long or double, or
    /// <see cref="GgufArray"/> (nested).
    /// </summary>
    public void SetArray<T>(string key, T[] items) => SetArray(key, new GgufArray(ElementTypeOf(typeof(T)), items));

    public bool Remove(string key)
    {
        if (!_metadataIndex.Remove(key, out int index))
            return false;
        _metadata.RemoveAt(index);
        for (int i = index; i < _metadata.Count; i++)
            _metadataIndex[_metadata[i].Key] = i;
        return true;
    }

    /// <summary>Copies the metadata of an opened GGUF whose key satisfies <paramref name="include"/>, in file order.</summary>
    public void CopyMetadata(GgufFile source, Func<string, bool> include)
    {
        foreach (var (key, value) in source.Metadata)
            if (include(key))
                Set(key, value);
    }

    private static GgufValueType ElementTypeOf(Type t) =>
        t == typeof(byte) ? GgufValueType.UInt8 :
        t == typeof(sbyte) ? GgufValueType.Int8 :
        t == typeof(ushort) ? GgufValueType.UInt16 :
        t == typeof(short) ? GgufValueType.Int16 :
        t == typeof(uint) ? GgufValueType.UInt32 :
        t == typeof(int) ? GgufValueType.Int32 :
        t == typeof(float) ? GgufValueType.Float32 :
        t == typeof(bool) ? GgufValueType.Bool :
        t == typeof(string) ? GgufValueType.String :
        t == typeof(ulong) ? GgufValueType.UInt64 :
        t == typeof(long) ? GgufValueType.Int64 :
        t == typeof(double) ? GgufValueType.Float64 :
        t == typeof(GgufArray) ? GgufValueType.Array :
        throw new ArgumentException($"{t.Name} has no GGUF value type; supported: byte, sbyte, ushort, short, uint, int, float, bool, string, ulong, long, double, GgufArray");

    private static Type ClrTypeOf(GgufValueType t, string key) => t switch
    {
        GgufValueType.UInt8 => typeof(byte),
        GgufValueType.Int8 => typeof(sbyte),
        GgufValueType.UInt16 => typeof(ushort),
        GgufValueType.Int16 => typeof(short),
        GgufValueType.UInt32 => typeof(uint),
        GgufValueType.Int32 => typeof(int),
        GgufValueType.Float32 => typeof(float),
        GgufValueType.Bool => typeof(bool),
        GgufValueType.String => typeof(string),
        GgufValueType.UInt64 => typeof(ulong),
        GgufValueType.Int64 => typeof(long),
        GgufValueType.Float64 => typeof(double),
        GgufValueType.Array => typeof(GgufArray),
        _ => throw new ArgumentException($"metadata '{key}': value type {(uint)t} is not a GGUF type (0..12)"),
    };

    /// <summary>A value's CLR payload must match its declared type, recursively, so the file cannot lie.</summary>
    private static void Validate(string key, GgufValue value)
    {
        Type expected = ClrTypeOf(value.Type, key);
        if (value.Value is null || value.Value.GetType() != expected)
            throw new ArgumentException($"metadata '{key}' is declared {value.Type} but holds {value.Value?.GetType().Name ?? "null"}");
        if (value.Value is GgufArray array)
            ValidateArray(key, array);
    }

    private static void ValidateArray(string key, GgufArray array)
    {
        Type element = ClrTypeOf(array.ElementType, key);
        if (array.Items.GetType().GetElementType() != element || array.Items.Rank != 1)
            throw new ArgumentException($"metadata '{key}' is declared an array of {array.ElementType} but holds {array.Items.GetType().Name}");
        if (array.ElementType == GgufValueType.String)
            foreach (string? s in (string[])array.Items)
                if (s is null)
                    throw new ArgumentException($"metadata '{key}' holds a null string");
        if (array.ElementType == GgufValueType.Array)
            foreach (GgufArray? inner in (GgufArray[])array.Items)
            {
                if (inner is null)
                    throw new ArgumentException($"metadata '{key}' holds a null nested array");
                ValidateArray(key, inner);
            }
    }

    // ---- tensors ---------------------------------------------------------------------------------------------

    /// <summary>Adds a tensor whose encoded bytes are in memory (they are not copied; keep them unchanged until written).</summary>
    /// <param name="dimensions">ggml <c>ne</c>, innermost first; 1 to 4 dimensions.</param>
    public void AddTensor(string name, TensorType type, ReadOnlySpan<long> dimensions, ReadOnlyMemory<byte> data)
    {
        long size = CheckTensor(name, type, dimensions);
        if (data.Length != size)
            throw new ArgumentException($"tensor '{name}' ({type} [{string.Join(", ", dimensions.ToArray())}]) needs {size} bytes, {data.Length} were given");
        AddChecked(new PendingTensor(name, type, dimensions.ToArray(), size, data, null));
    }

    /// <summary>Adds an F32 tensor.</summary>
    public void AddTensor(string name, ReadOnlySpan<long> dimensions, float[] values) =>
        AddTensor(name, TensorType.F32, dimensions, MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>
    /// Adds a tensor whose bytes <paramref name="produce"/> writes to the stream it is given, when the file is
    /// written; it must write exactly the tensor's byte size (checked).
    /// </summary>
    public void AddTensor(string name, TensorType type, ReadOnlySpan<long> dimensions, Action<Stream> produce)
    {
        long size = CheckTensor(name, type, dimensions);
        AddChecked(new PendingTensor(name, type, dimensions.ToArray(), size, default, produce));
    }

    /// <summary>Byte size of a tensor of this type and shape (rows must be whole blocks).</summary>
    public static long TensorByteSize(TensorType type, ReadOnlySpan<long> dimensions)
    {
        long rows = 1;
        for (int d = 1; d < dimensions.Length; d++)
            rows = checked(rows * dimensions[d]);
        return checked(TensorTypeInfo.RowBytes(type, dimensions[0]) * rows);
    }

    private long CheckTensor(string name, TensorType type, ReadOnlySpan<long> dimensions)
    {
        if (string.IsNullOrEmpty(name))
            throw new ArgumentException("a tensor name must not be empty", nameof(name));
        if (Encoding.UTF8.GetByteCount(name) > MaxTensorNameBytes)
            throw new ArgumentException($"tensor name '{name}' is longer than {MaxTensorNameBytes} bytes (ggml's GGML_MAX_NAME)");
        if (_tensorNames.Contains(name))
            throw new ArgumentException($"tensor '{name}' was already added");
        if (!TensorTypeInfo.IsKnown(type))
            throw new ArgumentException($"tensor '{name}' has type {TensorTypeInfo.Name(type)}; supported: {TensorTypeInfo.SupportedWeightTypeNames}");
        if (dimensions.Length is < 1 or > 4)
            throw new ArgumentException($"tensor '{name}' has {dimensions.Length} dimensions; GGUF allows 1 to 4");
        foreach (long ne in dimensions)
            if (ne < 1)
                throw new ArgumentException($"tensor '{name}' has a dimension of {ne}; every dimension must be at least 1");
        int block = TensorTypeInfo.BlockElements(type);
        if (dimensions[0] % block != 0)
            throw new ArgumentException($"tensor '{name}' is {type} with rows of {dimensions[0]} elements, not a multiple of its block size {block}");
        return TensorByteSize(type, dimensions);
    }

    private void AddChecked(PendingTensor tensor)
    {
        _tensorNames.Add(tensor.Name);
        _tensors.Add(tensor);
    }

    // ---- output ----------------------------------------------------------------------------------------------

    /// <summary>
    /// Writes the file. Output goes to a temporary sibling first and is renamed into place at the end, so a
    /// failed or interrupted write never leaves a truncated file under <paramref name="path"/>.
    /// </summary>
    public void WriteTo(string path)
    {
        string full = Path.GetFullPath(path);
        string temp = full + $".{Environment.ProcessId}.{Guid.NewGuid():N}.partial";
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                WriteTo(file);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp))
                File.Delete(temp);
        }
    }

    /// <summary>Writes the file to a stream (positioned at the start of the GGUF; offsets are relative to it).</summary>
    public void WriteTo(Stream output)
    {
        int alignment = Alignment;
        var counter = new CountingStream(output);
        using (var w = new BinaryWriter(counter, Encoding.UTF8, leaveOpen: true))
        {
            w.Write(Magic);
            w.Write(Version);
            w.Write((ulong)_tensors.Count);
            w.Write((ulong)_metadata.Count);
            foreach (var (key, value) in _metadata)
            {
                WriteString(w, key);
                w.Write((uint)value.Type);
                WriteValue(w, value.Type, value.Value);
            }

            long offset = 0;
            foreach (PendingTensor t in _tensors)
            {
                WriteString(w, t.Name);
                w.Write((uint)t.Dimensions.Length);
                foreach (long ne in t.Dimensions)
                    w.Write((ulong)ne);
                w.Write((uint)t.Type);
                w.Write((ulong)offset);
                offset += AlignUp(t.ByteSize, alignment);
            }
            w.Flush();
        }

        // The data section starts at the first aligned position after the tensor infos.
        WritePadding(counter, alignment);
        foreach (PendingTensor t in _tensors)
        {
            long start = counter.Written;
            if (t.Producer is null)
                counter.Write(t.Data.Span);
            else
            {
                var bounded = new BoundedWriteStream(counter, t.ByteSize, t.Name);
                t.Producer(bounded);
                if (bounded.Written != t.ByteSize)
                    throw new InvalidOperationException($"tensor '{t.Name}': the producer wrote {bounded.Written} bytes, expected {t.ByteSize}");
            }
            if (counter.Written - start != t.ByteSize)
                throw new InvalidOperationException($"tensor '{t.Name}': {counter.Written - start} bytes written, expected {t.ByteSize}");
            WritePadding(counter, alignment);
        }
        counter.Flush();
    }

    private static long AlignUp(long v, long a) => (v + a - 1) / a * a;

    private static void WritePadding(CountingStream s, int alignment)
    {
        long pad = AlignUp(s.Written, alignment) - s.Written;
        Span<byte> zeros = stackalloc byte[64];
        zeros.Clear();
        while (pad > 0)
        {
            int n = (int)Math.Min(pad, zeros.Length);
            s.Write(zeros[..n]);
            pad -= n;
        }
    }

    private static void WriteString(BinaryWriter w, string s)
    {
        byte[] bytes = Encoding.UTF8.GetBytes(s);
        w.Write((ulong)bytes.Length);
        w.Write(bytes);
    }

    private static void WriteValue(BinaryWriter w, GgufValueType type, object value)
    {
        switch (type)
        {
            case GgufValueType.UInt8: w.Write((byte)value); break;
            case GgufValueType.Int8: w.Write((sbyte)value); break;
            case GgufValueType.UInt16: w.Write((ushort)value); break;
            case GgufValueType.Int16: w.Write((short)value); break;
            case GgufValueType.UInt32: w.Write((uint)value); break;
            case GgufValueType.Int32: w.Write((int)value); break;
            case GgufValueType.Float32: w.Write((float)value); break;
            case GgufValueType.Bool: w.Write((byte)((bool)value ? 1 : 0)); break;
            case GgufValueType.String: WriteString(w, (string)value); break;
            case GgufValueType.UInt64: w.Write((ulong)value); break;
            case GgufValueType.Int64: w.Write((long)value); break;
            case GgufValueType.Float64: w.Write((double)value); break;
            case GgufValueType.Array: WriteArray(w, (GgufArray)value); break;
            default: throw new InvalidOperationException($"unreachable: value type {type}");
        }
    }

    /// <summary>Array payload: u32 element type, u64 count, elements (a nested array element repeats this header).</summary>
    private static void WriteArray(BinaryWriter w, GgufArray array)
    {
        w.Write((uint)array.ElementType);
        w.Write((ulong)array.Items.Length);
        switch (array.Items)
        {
            case byte[] a: w.Write(a); break;
            case sbyte[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case ushort[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case short[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case uint[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case int[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case float[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case ulong[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case long[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case double[] a: w.Write(MemoryMarshal.AsBytes(a.AsSpan())); break;
            case bool[] a:
                foreach (bool b in a)
                    w.Write((byte)(b ? 1 : 0));
                break;
            case string[] a:
                foreach (string s in a)
                    WriteString(w, s);
                break;
            case GgufArray[] a:
                foreach (GgufArray inner in a)
                    WriteArray(w, inner);
                break;
            default: throw new InvalidOperationException($"unreachable: array of {array.Items.GetType().Name}");
        }
    }

    /// <summary>Write-only pass-through that counts bytes (the data-section offsets depend on the count).</summary>
    private sealed class CountingStream(Stream inner) : Stream
    {
        public long Written { get; private set; }
        public override bool CanRead => false;
        public override bool CanSeek => false;
        public override bool CanWrite => true;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => Written; set => throw new NotSupportedException(); }
        public override void Flush() => inner.Flush();
        public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

        public override void Write(ReadOnlySpan<byte> buffer)
        {
            inner.Write(buffer);
            Written += buffer.Length;
        }
    }

}
