using System.Runtime.InteropServices;

namespace LlavaNative.TestSupport.LlamaCpp;

/// <summary>
/// ggml's own GGUF reader (gguf.h in libggml-base.so), as an independent check of files we write. Metadata
/// only (<c>no_alloc</c>): tensor data is located by <see cref="DataOffset"/> + <see cref="TensorOffset"/>.
/// Note ggml rejects nested arrays (it reports "invalid GGUF type 9").
/// </summary>
public sealed unsafe class GgmlGgufReader : IDisposable
{
    [StructLayout(LayoutKind.Sequential)]
    private struct GgufInitParams
    {
        public byte NoAlloc;                 // bool
        public nint Ctx;                     // struct ggml_context ** (NULL: no tensor allocation)
    }

    private static readonly object Gate = new();
    private static bool _loaded;
    private static delegate* unmanaged<byte*, GgufInitParams, nint> gguf_init_from_file;
    private static delegate* unmanaged<nint, void> gguf_free;
    private static delegate* unmanaged<nint, uint> gguf_get_version;
    private static delegate* unmanaged<nint, nuint> gguf_get_alignment;
    private static delegate* unmanaged<nint, nuint> gguf_get_data_offset;
    private static delegate* unmanaged<nint, long> gguf_get_n_kv;
    private static delegate* unmanaged<nint, byte*, long> gguf_find_key;
    private static delegate* unmanaged<nint, long, byte*> gguf_get_key;
    private static delegate* unmanaged<nint, long, int> gguf_get_kv_type;
    private static delegate* unmanaged<nint, long, int> gguf_get_arr_type;
    private static delegate* unmanaged<nint, long, byte> gguf_get_val_u8;
    private static delegate* unmanaged<nint, long, sbyte> gguf_get_val_i8;
    private static delegate* unmanaged<nint, long, ushort> gguf_get_val_u16;
    private static delegate* unmanaged<nint, long, short> gguf_get_val_i16;
    private static delegate* unmanaged<nint, long, uint> gguf_get_val_u32;
    private static delegate* unmanaged<nint, long, int> gguf_get_val_i32;
    private static delegate* unmanaged<nint, long, float> gguf_get_val_f32;
    private static delegate* unmanaged<nint, long, ulong> gguf_get_val_u64;
    private static delegate* unmanaged<nint, long, long> gguf_get_val_i64;
    private static delegate* unmanaged<nint, long, double> gguf_get_val_f64;
    private static delegate* unmanaged<nint, long, byte> gguf_get_val_bool;
    private static delegate* unmanaged<nint, long, byte*> gguf_get_val_str;
    private static delegate* unmanaged<nint, long, nuint> gguf_get_arr_n;
    private static delegate* unmanaged<nint, long, void*> gguf_get_arr_data;
    private static delegate* unmanaged<nint, long, nuint, byte*> gguf_get_arr_str;
    private static delegate* unmanaged<nint, long> gguf_get_n_tensors;
    private static delegate* unmanaged<nint, byte*, long> gguf_find_tensor;
    private static delegate* unmanaged<nint, long, nuint> gguf_get_tensor_offset;
    private static delegate* unmanaged<nint, long, byte*> gguf_get_tensor_name;
    private static delegate* unmanaged<nint, long, long*> gguf_get_tensor_ne;
    private static delegate* unmanaged<nint, long, int> gguf_get_tensor_type;
    private static delegate* unmanaged<nint, long, nuint> gguf_get_tensor_size;

    private nint _ctx;

    private GgmlGgufReader(nint ctx) => _ctx = ctx;

    /// <summary>gguf.h <c>enum gguf_type</c> ids (same values as GgufValueType).</summary>
    public const int TypeArray = 9;

    /// <summary>Opens a file with gguf_init_from_file; throws with ggml's logged reason when it refuses the file.</summary>
    public static GgmlGgufReader Open(string path)
    {
        EnsureLoaded();
        LlamaNative.ClearRecentLog();
        byte[] p = LlamaNative.Utf8Z(path);
        nint ctx;
        fixed (byte* pp = p)
            ctx = gguf_init_from_file(pp, new GgufInitParams { NoAlloc = 1, Ctx = 0 });
        if (ctx == 0)
            throw new InvalidOperationException($"ggml's gguf_init_from_file refused {path}{LlamaNative.RecentLog()}");
        return new GgmlGgufReader(ctx);
    }

    private static void EnsureLoaded()
    {
        lock (Gate)
        {
            if (_loaded)
                return;
            // Initialising llama.cpp installs the log callback, so ggml's reasons end up in exception messages.
            LlamaNative.EnsureInitialized();
            nint lib = ReferenceLibraries.GgmlBase;
            gguf_init_from_file = (delegate* unmanaged<byte*, GgufInitParams, nint>)ReferenceLibraries.Export(lib, "gguf_init_from_file");
            gguf_free = (delegate* unmanaged<nint, void>)ReferenceLibraries.Export(lib, "gguf_free");
            gguf_get_version = (delegate* unmanaged<nint, uint>)ReferenceLibraries.Export(lib, "gguf_get_version");
            gguf_get_alignment = (delegate* unmanaged<nint, nuint>)ReferenceLibraries.Export(lib, "gguf_get_alignment");
            gguf_get_data_offset = (delegate* unmanaged<nint, nuint>)ReferenceLibraries.Export(lib, "gguf_get_data_offset");
            gguf_get_n_kv = (delegate* unmanaged<nint, long>)ReferenceLibraries.Export(lib, "gguf_get_n_kv");
            gguf_find_key = (delegate* unmanaged<nint, byte*, long>)ReferenceLibraries.Export(lib, "gguf_find_key");
            gguf_get_key = (delegate* unmanaged<nint, long, byte*>)ReferenceLibraries.Export(lib, "gguf_get_key");
            gguf_get_kv_type = (delegate* unmanaged<nint, long, int>)ReferenceLibraries.Export(lib, "gguf_get_kv_type");
            gguf_get_arr_type = (delegate* unmanaged<nint, long, int>)ReferenceLibraries.Export(lib, "gguf_get_arr_type");
            gguf_get_val_u8 = (delegate* unmanaged<nint, long, byte>)ReferenceLibraries.Export(lib, "gguf_get_val_u8");
            gguf_get_val_i8 = (delegate* unmanaged<nint, long, sbyte>)ReferenceLibraries.Export(lib, "gguf_get_val_i8");
            gguf_get_val_u16 = (delegate* unmanaged<nint, long, ushort>)ReferenceLibraries.Export(lib, "gguf_get_val_u16");
            gguf_get_val_i16 = (delegate* unmanaged<nint, long, short>)ReferenceLibraries.Export(lib, "gguf_get_val_i16");
            gguf_get_val_u32 = (delegate* unmanaged<nint, long, uint>)ReferenceLibraries.Export(lib, "gguf_get_val_u32");
            gguf_get_val_i32 = (delegate* unmanaged<nint, long, int>)ReferenceLibraries.Export(lib, "gguf_get_val_i32");
            gguf_get_val_f32 = (delegate* unmanaged<nint, long, float>)ReferenceLibraries.Export(lib, "gguf_get_val_f32");
            gguf_get_val_u64 = (delegate* unmanaged<nint, long, ulong>)ReferenceLibraries.Export(lib, "gguf_get_val_u64");
            gguf_get_val_i64 = (delegate* unmanaged<nint, long, long>)ReferenceLibraries.Export(lib, "gguf_get_val_i64");
            gguf_get_val_f64 = (delegate* unmanaged<nint, long, double>)ReferenceLibraries.Export(lib, "gguf_get_val_f64");
            gguf_get_val_bool = (delegate* unmanaged<nint, long, byte>)ReferenceLibraries.Export(lib, "gguf_get_val_bool");
            gguf_get_val_str = (delegate* unmanaged<nint, long, byte*>)ReferenceLibraries.Export(lib, "gguf_get_val_str");
            gguf_get_arr_n = (delegate* unmanaged<nint, long, nuint>)ReferenceLibraries.Export(lib, "gguf_get_arr_n");
            gguf_get_arr_data = (delegate* unmanaged<nint, long, void*>)ReferenceLibraries.Export(lib, "gguf_get_arr_data");
            gguf_get_arr_str = (delegate* unmanaged<nint, long, nuint, byte*>)ReferenceLibraries.Export(lib, "gguf_get_arr_str");
            gguf_get_n_tensors = (delegate* unmanaged<nint, long>)ReferenceLibraries.Export(lib, "gguf_get_n_tensors");
            gguf_find_tensor = (delegate* unmanaged<nint, byte*, long>)ReferenceLibraries.Export(lib, "gguf_find_tensor");
            gguf_get_tensor_offset = (delegate* unmanaged<nint, long, nuint>)ReferenceLibraries.Export(lib, "gguf_get_tensor_offset");
            gguf_get_tensor_name = (delegate* unmanaged<nint, long, byte*>)ReferenceLibraries.Export(lib, "gguf_get_tensor_name");
            gguf_get_tensor_ne = (delegate* unmanaged<nint, long, long*>)ReferenceLibraries.Export(lib, "gguf_get_tensor_ne");
            gguf_get_tensor_type = (delegate* unmanaged<nint, long, int>)ReferenceLibraries.Export(lib, "gguf_get_tensor_type");
            gguf_get_tensor_size = (delegate* unmanaged<nint, long, nuint>)ReferenceLibraries.Export(lib, "gguf_get_tensor_size");
            _loaded = true;
        }
    }

    private nint Ctx
    {
        get
        {
            ObjectDisposedException.ThrowIf(_ctx == 0, this);
            return _ctx;
        }
    }

    public uint Version => gguf_get_version(Ctx);
    public long Alignment => (long)gguf_get_alignment(Ctx);

    /// <summary>File offset of the data section.</summary>
    public long DataOffset => (long)gguf_get_data_offset(Ctx);

    public long KeyCount => gguf_get_n_kv(Ctx);

    /// <summary>Index of a key, or -1.</summary>
    public long FindKey(string key)
    {
        byte[] k = LlamaNative.Utf8Z(key);
        fixed (byte* kp = k)
            return gguf_find_key(Ctx, kp);
    }

    public string Key(long id) => Utf8(gguf_get_key(KeyIndex(id), id));

    /// <summary>gguf_type of a value (9 = array).</summary>
    public int KeyType(long id) => gguf_get_kv_type(KeyIndex(id), id);

    /// <summary>Element gguf_type of an array value.</summary>
    public int ArrayType(long id) => gguf_get_arr_type(Array(id), id);

    // ggml aborts the process (GGML_ASSERT) on a wrong type or index, so every getter checks first and throws.
    public byte GetUInt8(long id) => gguf_get_val_u8(Scalar(id, 0), id);
    public sbyte GetInt8(long id) => gguf_get_val_i8(Scalar(id, 1), id);
    public ushort GetUInt16(long id) => gguf_get_val_u16(Scalar(id, 2), id);
    public short GetInt16(long id) => gguf_get_val_i16(Scalar(id, 3), id);
    public uint GetUInt32(long id) => gguf_get_val_u32(Scalar(id, 4), id);
    public int GetInt32(long id) => gguf_get_val_i32(Scalar(id, 5), id);
    public float GetFloat32(long id) => gguf_get_val_f32(Scalar(id, 6), id);
    public bool GetBool(long id) => gguf_get_val_bool(Scalar(id, 7), id) != 0;
    public string GetString(long id) => Utf8(gguf_get_val_str(Scalar(id, 8), id));
    public ulong GetUInt64(long id) => gguf_get_val_u64(Scalar(id, 10), id);
    public long GetInt64(long id) => gguf_get_val_i64(Scalar(id, 11), id);
    public double GetFloat64(long id) => gguf_get_val_f64(Scalar(id, 12), id);

    public long ArrayLength(long id) => (long)gguf_get_arr_n(Array(id), id);

    /// <summary>Copy of a numeric array's elements (bool arrays as one byte each); T must have the element size.</summary>
    public T[] GetArray<T>(long id) where T : unmanaged
    {
        nint ctx = Array(id);
        int type = gguf_get_arr_type(ctx, id);
        int size = type switch { 0 or 1 or 7 => 1, 2 or 3 => 2, 4 or 5 or 6 => 4, 10 or 11 or 12 => 8, _ => 0 };
        if (size != sizeof(T))
            throw new InvalidOperationException($"'{Key(id)}' is an array of gguf type {type}, not of {typeof(T).Name}");
        long n = (long)gguf_get_arr_n(ctx, id);
        void* data = gguf_get_arr_data(ctx, id);
        if (data == null && n > 0)
            throw new InvalidOperationException($"gguf_get_arr_data({Key(id)}) returned NULL");
        return new ReadOnlySpan<T>(data, checked((int)n)).ToArray();
    }

    public string GetArrayString(long id, long index)
    {
        nint ctx = Array(id);
        if (gguf_get_arr_type(ctx, id) != 8)
            throw new InvalidOperationException($"'{Key(id)}' is not an array of strings");
        if ((ulong)index >= (ulong)gguf_get_arr_n(ctx, id))
            throw new ArgumentOutOfRangeException(nameof(index));
        return Utf8(gguf_get_arr_str(ctx, id, (nuint)index));
    }

    private nint KeyIndex(long id)
    {
        nint ctx = Ctx;
        if ((ulong)id >= (ulong)gguf_get_n_kv(ctx))
            throw new ArgumentOutOfRangeException(nameof(id), id, "no such key index");
        return ctx;
    }

    private nint Scalar(long id, int type)
    {
        nint ctx = KeyIndex(id);
        int actual = gguf_get_kv_type(ctx, id);
        if (actual != type)
            throw new InvalidOperationException($"'{Key(id)}' has gguf type {actual}, not {type}");
        return ctx;
    }

    private nint Array(long id) => Scalar(id, TypeArray);

    private nint Tensor(long id)
    {
        nint ctx = Ctx;
        if ((ulong)id >= (ulong)gguf_get_n_tensors(ctx))
            throw new ArgumentOutOfRangeException(nameof(id), id, "no such tensor index");
        return ctx;
    }

    public long TensorCount => gguf_get_n_tensors(Ctx);

    /// <summary>Index of a tensor, or -1.</summary>
    public long FindTensor(string name)
    {
        byte[] k = LlamaNative.Utf8Z(name);
        fixed (byte* kp = k)
            return gguf_find_tensor(Ctx, kp);
    }

    public string TensorName(long id) => Utf8(gguf_get_tensor_name(Tensor(id), id));

    /// <summary>Offset within the data section.</summary>
    public long TensorOffset(long id) => (long)gguf_get_tensor_offset(Tensor(id), id);

    /// <summary>ggml ne[4] (trailing dimensions are 1).</summary>
    public long[] TensorDimensions(long id) => new ReadOnlySpan<long>(gguf_get_tensor_ne(Tensor(id), id), 4).ToArray();

    /// <summary>ggml_type id.</summary>
    public int TensorType(long id) => gguf_get_tensor_type(Tensor(id), id);

    public long TensorSize(long id) => (long)gguf_get_tensor_size(Tensor(id), id);

    private static string Utf8(byte* p) => p == null ? throw new InvalidOperationException("ggml returned a NULL string") : Marshal.PtrToStringUTF8((nint)p)!;

    public void Dispose()
    {
        if (_ctx != 0)
            gguf_free(_ctx);
        _ctx = 0;
    }
}
