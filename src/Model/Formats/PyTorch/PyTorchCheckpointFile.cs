using System.Text;

namespace LlavaNative.Model.Formats.PyTorch;

/// <summary>
/// One file written by <c>torch.save(state_dict)</c> (PyTorch ≥ 1.6 zip format): a zip archive with
/// <c>{prefix}/data.pkl</c> (the state dict, pickled) and one member <c>{prefix}/data/{key}</c> per storage, stored
/// uncompressed. The pickle is read by <see cref="RestrictedUnpickler"/> (no code is ever run); each tensor is a
/// view of a storage — several tensors may share one, at different offsets — and points straight into the
/// memory-mapped file. Tensors must be contiguous (what <c>save_pretrained</c> writes); a strided view is refused
/// with a message saying so. The pre-1.6 format (a pickle or tar stream, not a zip) is refused with a clear error.
/// </summary>
public sealed unsafe class PyTorchCheckpointFile : IDisposable
{
    private readonly ReadOnlyFileMapping _mapping;
    private readonly Dictionary<string, TensorView> _tensors;

    public string Path { get; }
    public long FileSize { get; }

    /// <summary>Tensor names in the state dict's order.</summary>
    public IReadOnlyList<string> TensorNames { get; }

    private PyTorchCheckpointFile(string path, ReadOnlyFileMapping mapping, long size, List<string> names, Dictionary<string, TensorView> tensors)
    {
        Path = path;
        _mapping = mapping;
        FileSize = size;
        TensorNames = names;
        _tensors = tensors;
    }

    public static PyTorchCheckpointFile Open(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        long size = new FileInfo(path).Length;
        if (size < 22) throw new PyTorchFormatException(path, $"file is {size} bytes, too short for a torch.save zip archive (truncated?)");
        var mapping = new ReadOnlyFileMapping(path);
        try
        {
            var (names, tensors) = ReadTensors(path, mapping.Pointer, size);
            return new PyTorchCheckpointFile(path, mapping, size, names, tensors);
        }
        catch
        {
            mapping.Dispose();
            throw;
        }
    }

    public bool HasTensor(string name) => _tensors.ContainsKey(name);

    public bool TryGetTensor(string name, out TensorView tensor) => _tensors.TryGetValue(name, out tensor);

    private static (List<string>, Dictionary<string, TensorView>) ReadTensors(string path, byte* data, long size)
    {
        if (!ZipDirectory.LooksLikeZip(data, size))
        {
            bool legacyPickle = data[0] == 0x80 && data[1] <= 5;
            bool tar = size > 262 && Encoding.ASCII.GetString(data + 257, 5) == "ustar";
            throw new PyTorchFormatException(path, legacyPickle || tar
                ? $"this is PyTorch's legacy (pre-1.6, {(tar ? "tar" : "pickle stream")}) torch.save format, which is not supported; " +
                  "re-save it with torch.save(state_dict, f) from PyTorch ≥ 1.6 or convert it to safetensors"
                : "not a zip archive: not a torch.save checkpoint (or the file is damaged)");
        }
        var entries = ZipDirectory.Read(path, data, size);
        var pickles = entries.Where(e => e.Name == "data.pkl" || e.Name.EndsWith("/data.pkl", StringComparison.Ordinal)).ToList();
        if (pickles.Count != 1)
            throw new PyTorchFormatException(path, pickles.Count == 0
                ? "the zip archive has no data.pkl member: not a torch.save checkpoint"
                : $"the zip archive has {pickles.Count} data.pkl members ({string.Join(", ", pickles.Select(p => p.Name))})");
        var pickle = pickles[0];
        string prefix = pickle.Name[..^"data.pkl".Length];
        var members = new Dictionary<string, ZipEntry>(StringComparer.Ordinal);
        foreach (var e in entries.Where(e => e.Name.StartsWith(prefix, StringComparison.Ordinal)))
            if (!members.TryAdd(e.Name[prefix.Length..], e))
                throw new PyTorchFormatException(path, $"the zip archive holds member '{e.Name}' twice");
        if (pickle.Method != 0)
            throw new PyTorchFormatException(path, $"{pickle.Name} is compressed (zip method {pickle.Method}); torch.save stores members uncompressed");
        if (pickle.Size > int.MaxValue) throw new PyTorchFormatException(path, $"{pickle.Name} is {pickle.Size} bytes, larger than any state dict pickle");
        var bytes = new ReadOnlySpan<byte>(data + pickle.DataOffset, (int)pickle.Size).ToArray();

        object? root = RestrictedUnpickler.Load(path, bytes);
        if (root is not PickleDict dict)
            throw new PyTorchFormatException(path, $"the pickle holds a {(root == null ? "None" : root.GetType().Name)}, not a state dict (a dict of name → tensor)");

        var names = new List<string>();
        var tensors = new Dictionary<string, TensorView>(StringComparer.Ordinal);
        foreach (var (key, value) in dict.Items)
        {
            if (value is not TensorReference t) continue; // non-tensor entries (e.g. an epoch counter) are not weights
            if (key is not string name) throw new PyTorchFormatException(path, $"a tensor is stored under the non-string key {key}");
            TensorView view;
            try { view = View(path, data, members, name, t); }
            catch (OverflowException) { throw new PyTorchFormatException(path, $"tensor '{name}': its size [{string.Join(", ", t.Shape)}] overflows 64-bit byte counts (corrupt pickle)"); }
            if (!tensors.TryAdd(name, view))
                throw new PyTorchFormatException(path, $"tensor '{name}' appears twice in the state dict");
            names.Add(name);
        }
        if (tensors.Count == 0) throw new PyTorchFormatException(path, "the state dict holds no tensors");
        return (names, tensors);
    }

    private static TensorView View(string path, byte* data, Dictionary<string, ZipEntry> members, string name, TensorReference t)
    {
        var storage = t.Storage;
        var type = storage.Type;
        if (!members.TryGetValue("data/" + storage.Key, out var member))
            throw new PyTorchFormatException(path, $"tensor '{name}': its storage data/{storage.Key} is missing from the archive");
        if (member.Method != 0)
            throw new PyTorchFormatException(path, $"tensor '{name}': storage data/{storage.Key} is compressed (zip method {member.Method}); torch.save stores storages uncompressed");
        long storageBytes = checked(storage.ElementCount * type.ElementBytes);
        if (member.Size < storageBytes)
            throw new PyTorchFormatException(path, $"tensor '{name}': storage data/{storage.Key} holds {member.Size} bytes, but the pickle says {storage.ElementCount} {type.ClassName} elements ({storageBytes} bytes)");

        if (t.Stride.Length != t.Shape.Length)
            throw new PyTorchFormatException(path, $"tensor '{name}' has {t.Shape.Length} dimensions but {t.Stride.Length} strides");
        long count = 1;
        foreach (long d in t.Shape) count = checked(count * d);
        // Row-major (C order) strides; dimensions of size 1 may carry any stride.
        long expected = 1;
        for (int i = t.Shape.Length - 1; i >= 0; i--)
        {
            if (t.Shape[i] != 1 && t.Stride[i] != expected)
                throw new PyTorchFormatException(path, $"tensor '{name}' of shape [{string.Join(", ", t.Shape)}] is not contiguous " +
                                                       $"(strides [{string.Join(", ", t.Stride)}]); re-save it with tensor.contiguous()");
            expected *= t.Shape[i];
        }
        if (count > 0 && t.StorageOffset + count > storage.ElementCount)
            throw new PyTorchFormatException(path, $"tensor '{name}' ({count} elements from offset {t.StorageOffset}) runs past the end of its {storage.ElementCount}-element storage data/{storage.Key}");
        return new TensorView
        {
            Name = name, Type = type.Type, TypeName = type.TypeName, Shape = t.Shape,
            Data = data + member.DataOffset + t.StorageOffset * type.ElementBytes, ByteSize = count * type.ElementBytes,
        };
    }

    public void Dispose() => _mapping.Dispose();
}
