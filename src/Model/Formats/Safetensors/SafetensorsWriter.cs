using System.Text.Json;

using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Formats.Safetensors;

/// <summary>
/// Builds safetensors files: tensors in the order added, packed back to back in the data buffer (the format
/// allows no holes), the JSON header padded with spaces to a multiple of 8 bytes so the data buffer — and
/// every tensor whose offset is a multiple of its element size — is aligned in a mapped file. Tensor bytes
/// are held in memory or produced by a callback while the file is written (for converters that stream).
/// <see cref="WriteSharded"/> splits the tensors over several files plus a <c>model.safetensors.index.json</c>,
/// as Hugging Face's <c>save_pretrained</c> does.
/// </summary>
public sealed class SafetensorsWriter
{
    private readonly List<PendingTensor> _tensors = [];
    private readonly HashSet<string> _names = new(StringComparer.Ordinal);
    private readonly Dictionary<string, string> _metadata = new(StringComparer.Ordinal);

    private sealed record PendingTensor(string Name, SafetensorsDType DType, long[] Shape, long ByteSize,
        ReadOnlyMemory<byte> Data, Action<Stream>? Producer);

    public int TensorCount => _tensors.Count;

    /// <summary>Sets a <c>__metadata__</c> entry (e.g. <c>"format": "pt"</c>, which transformers expects).</summary>
    public void SetMetadata(string key, string value) => _metadata[key] = value;

    /// <summary>Adds a tensor whose bytes are in memory (not copied: keep them unchanged until written).</summary>
    /// <param name="shape">Row-major dimensions, outermost first (PyTorch order).</param>
    public void AddTensor(string name, SafetensorsDType dtype, ReadOnlySpan<long> shape, ReadOnlyMemory<byte> data)
    {
        long size = CheckTensor(name, dtype, shape);
        if (data.Length != size)
            throw new ArgumentException($"tensor '{name}' ({dtype} [{string.Join(", ", shape.ToArray())}]) needs {size} bytes, {data.Length} were given");
        Add(new PendingTensor(name, dtype, shape.ToArray(), size, data, null));
    }

    /// <summary>Adds an F32 tensor.</summary>
    public void AddTensor(string name, ReadOnlySpan<long> shape, float[] values) =>
        AddTensor(name, SafetensorsDType.F32, shape, System.Runtime.InteropServices.MemoryMarshal.AsBytes(values.AsSpan()).ToArray());

    /// <summary>Adds a tensor whose bytes <paramref name="produce"/> writes when the file is written (exactly its size, checked).</summary>
    public void AddTensor(string name, SafetensorsDType dtype, ReadOnlySpan<long> shape, Action<Stream> produce)
    {
        long size = CheckTensor(name, dtype, shape);
        Add(new PendingTensor(name, dtype, shape.ToArray(), size, default, produce));
    }

    private long CheckTensor(string name, SafetensorsDType dtype, ReadOnlySpan<long> shape)
    {
        if (string.IsNullOrEmpty(name)) throw new ArgumentException("a tensor name must not be empty", nameof(name));
        if (name == SafetensorsFile.MetadataKey) throw new ArgumentException($"'{SafetensorsFile.MetadataKey}' is reserved for metadata", nameof(name));
        if (_names.Contains(name)) throw new ArgumentException($"tensor '{name}' was already added");
        long elements = 1;
        foreach (long d in shape)
        {
            if (d < 0) throw new ArgumentException($"tensor '{name}' has a negative dimension {d}");
            elements = checked(elements * d);
        }
        return checked(elements * SafetensorsDTypes.ElementBytes(dtype));
    }

    private void Add(PendingTensor t)
    {
        _names.Add(t.Name);
        _tensors.Add(t);
    }

    // ---- output ----------------------------------------------------------------------------------------------

    /// <summary>Writes one file (via a temporary sibling renamed at the end, so no truncated file is left behind).</summary>
    public void WriteTo(string path) => WriteFile(path, _tensors, _metadata);

    /// <summary>Writes one file to a stream.</summary>
    public void WriteTo(Stream output) => WriteStream(output, _tensors, _metadata);

    /// <summary>
    /// Writes <paramref name="shardCount"/> files <c>model-0000i-of-0000n.safetensors</c> into
    /// <paramref name="folder"/>, consecutive tensors in each with about equal byte sizes, and the index
    /// <c>model.safetensors.index.json</c> (<c>metadata.total_size</c> and the <c>weight_map</c>).
    /// Returns the paths of the shards.
    /// </summary>
    public IReadOnlyList<string> WriteSharded(string folder, int shardCount)
    {
        if (shardCount < 1 || shardCount > _tensors.Count)
            throw new ArgumentOutOfRangeException(nameof(shardCount), shardCount, $"between 1 and the tensor count {_tensors.Count}");
        Directory.CreateDirectory(folder);
        long total = _tensors.Sum(t => t.ByteSize);

        // Greedy split: start a new shard once this one holds its share of the bytes, keeping enough tensors
        // for the shards still to come.
        var groups = new List<List<PendingTensor>> { new() };
        long done = 0;
        for (int i = 0; i < _tensors.Count; i++)
        {
            var current = groups[^1];
            int shardsLeft = shardCount - groups.Count;
            int tensorsLeft = _tensors.Count - i;
            bool shareReached = current.Count > 0 && done >= total * groups.Count / shardCount;
            if (current.Count > 0 && shardsLeft > 0 && (shareReached || tensorsLeft == shardsLeft))
                groups.Add(current = new List<PendingTensor>());
            current.Add(_tensors[i]);
            done += _tensors[i].ByteSize;
        }
        if (groups.Count != shardCount) throw new InvalidOperationException($"unreachable: {groups.Count} shards instead of {shardCount}");

        var paths = new List<string>();
        var weightMap = new List<KeyValuePair<string, string>>();
        for (int s = 0; s < groups.Count; s++)
        {
            string name = $"model-{s + 1:D5}-of-{groups.Count:D5}.safetensors";
            string path = Path.Combine(folder, name);
            WriteFile(path, groups[s], _metadata);
            paths.Add(path);
            foreach (var t in groups[s]) weightMap.Add(new(t.Name, name));
        }

        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
        {
            json.WriteStartObject();
            json.WriteStartObject("metadata");
            json.WriteNumber("total_size", total);
            json.WriteEndObject();
            json.WriteStartObject("weight_map");
            foreach (var (tensor, shard) in weightMap) json.WriteString(tensor, shard);
            json.WriteEndObject();
            json.WriteEndObject();
        }
        File.WriteAllBytes(Path.Combine(folder, SafetensorsCheckpoint.IndexFileName), buffer.ToArray());
        return paths;
    }

    private static void WriteFile(string path, List<PendingTensor> tensors, Dictionary<string, string> metadata)
    {
        string full = Path.GetFullPath(path);
        string temp = full + $".{Environment.ProcessId}.{Guid.NewGuid():N}.partial";
        try
        {
            using (var file = new FileStream(temp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 20))
                WriteStream(file, tensors, metadata);
            File.Move(temp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(temp)) File.Delete(temp);
        }
    }

    private static void WriteStream(Stream output, List<PendingTensor> tensors, Dictionary<string, string> metadata)
    {
        byte[] header = Header(tensors, metadata);
        output.Write(BitConverter.GetBytes((ulong)header.Length));
        output.Write(header);
        foreach (var t in tensors)
        {
            if (t.Producer is null)
            {
                output.Write(t.Data.Span);
                continue;
            }
            var bounded = new BoundedWriteStream(output, t.ByteSize, t.Name);
            t.Producer(bounded);
            if (bounded.Written != t.ByteSize)
                throw new InvalidOperationException($"tensor '{t.Name}': the producer wrote {bounded.Written} bytes, the tensor has {t.ByteSize}");
        }
    }

    /// <summary>The JSON header, space-padded so that 8 + its length is a multiple of 8.</summary>
    private static byte[] Header(List<PendingTensor> tensors, Dictionary<string, string> metadata)
    {
        using var buffer = new MemoryStream();
        using (var json = new Utf8JsonWriter(buffer))
        {
            json.WriteStartObject();
            if (metadata.Count > 0)
            {
                json.WriteStartObject(SafetensorsFile.MetadataKey);
                foreach (var (key, value) in metadata) json.WriteString(key, value);
                json.WriteEndObject();
            }
            long offset = 0;
            foreach (var t in tensors)
            {
                json.WriteStartObject(t.Name);
                json.WriteString("dtype", t.DType.ToString());
                json.WriteStartArray("shape");
                foreach (long d in t.Shape) json.WriteNumberValue(d);
                json.WriteEndArray();
                json.WriteStartArray("data_offsets");
                json.WriteNumberValue(offset);
                json.WriteNumberValue(offset + t.ByteSize);
                json.WriteEndArray();
                json.WriteEndObject();
                offset += t.ByteSize;
            }
            json.WriteEndObject();
        }
        int pad = (int)((8 - buffer.Length % 8) % 8);
        for (int i = 0; i < pad; i++) buffer.WriteByte((byte)' ');
        return buffer.ToArray();
    }

}
