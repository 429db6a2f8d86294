using System.Text.Json;

using LlavaNative.Model.Formats;

namespace LlavaNative.Model.Formats.Safetensors;

/// <summary>One tensor of a safetensors file. <see cref="Data"/> points into the memory-mapped file.</summary>
public sealed unsafe class SafetensorsTensorInfo
{
    public required string Name { get; init; }
    public required SafetensorsDType DType { get; init; }

    /// <summary>Row-major (C order) dimensions, outermost first; empty for a scalar.</summary>
    public required long[] Shape { get; init; }

    /// <summary>[begin, end) of the bytes, relative to the start of the data buffer (after the header).</summary>
    public required long Begin { get; init; }
    public required long End { get; init; }

    public long ByteSize => End - Begin;
    public required long ElementCount { get; init; }
    public byte* Data { get; internal set; }

    public string ShapeText => "[" + string.Join(", ", Shape) + "]";

    public TensorView ToView() => new()
    {
        Name = Name, Type = SafetensorsDTypes.ToTensorType(DType), TypeName = DType.ToString(), Shape = Shape,
        Data = Data, ByteSize = ByteSize,
    };
}

/// <summary>
/// A memory-mapped safetensors file: an 8-byte little-endian header length N, N bytes of UTF-8 JSON
/// (<c>{"name": {"dtype", "shape", "data_offsets": [begin, end]}, ..., "__metadata__": {string: string}}</c>),
/// then the data buffer the offsets index. Validated as the format's reference implementation does: header
/// at most 100 MB, every tensor's byte range equal to dtype size × element count, ranges neither overlapping
/// nor leaving holes, and together covering the data buffer exactly. Every problem is a
/// <see cref="SafetensorsFormatException"/> naming the file and, where there is one, the tensor.
/// Tensor bytes are never copied; they stay valid until the file is disposed.
/// </summary>
public sealed unsafe class SafetensorsFile : IDisposable
{
    /// <summary>The reference implementation refuses larger headers (a defence against absurd JSON).</summary>
    public const long MaxHeaderBytes = 100_000_000;

    public const string MetadataKey = "__metadata__";

    private readonly ReadOnlyFileMapping _mapping;
    private byte* _base;
    private readonly Dictionary<string, SafetensorsTensorInfo> _byName = new(StringComparer.Ordinal);

    public string Path { get; }
    public long FileSize { get; }

    /// <summary>Byte position of the data buffer: 8 + header length.</summary>
    public long DataOffset { get; }

    /// <summary>The free-form <c>__metadata__</c> map (empty when absent).</summary>
    public IReadOnlyDictionary<string, string> Metadata { get; }

    /// <summary>Tensors in header order.</summary>
    public IReadOnlyList<SafetensorsTensorInfo> Tensors { get; }

    private SafetensorsFile(string path)
    {
        Path = path;
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: file not found", path);
        FileSize = new FileInfo(path).Length;
        if (FileSize < 8) throw Error($"file is {FileSize} bytes, too short for the 8-byte header length (truncated, or not a safetensors file)");

        _mapping = new ReadOnlyFileMapping(path);
        try
        {
            _base = _mapping.Pointer;

            ulong headerLength = *(ulong*)_base; // little-endian, as every platform this engine runs on
            if (headerLength > MaxHeaderBytes)
                throw Error($"header length {headerLength} is absurd (limit {MaxHeaderBytes} bytes): not a safetensors file, or corrupt");
            if (headerLength > (ulong)(FileSize - 8))
                throw Error($"header length {headerLength} runs past the end of the {FileSize}-byte file (truncated?)");
            if (headerLength < 2)
                throw Error($"header length {headerLength} is too short for a JSON object");
            DataOffset = 8 + (long)headerLength;

            var (tensors, metadata) = ParseHeader(new ReadOnlySpan<byte>(_base + 8, (int)headerLength));
            Metadata = metadata;
            CheckLayout(tensors, FileSize - DataOffset);
            foreach (var t in tensors) t.Data = _base + DataOffset + t.Begin;
            Tensors = tensors;
        }
        catch
        {
            ReleaseMapping();
            throw;
        }
    }

    /// <summary>Opens and validates <paramref name="path"/>.</summary>
    public static SafetensorsFile Open(string path) => new(path);

    private SafetensorsFormatException Error(string problem) => new(Path, problem);

    // ---- header ------------------------------------------------------------------------------------------

    private (List<SafetensorsTensorInfo>, Dictionary<string, string>) ParseHeader(ReadOnlySpan<byte> json)
    {
        JsonDocument document;
        try
        {
            var reader = new Utf8JsonReader(json, new JsonReaderOptions { CommentHandling = JsonCommentHandling.Disallow });
            document = JsonDocument.ParseValue(ref reader);
            // Only padding (spaces, as writers align the data buffer with) may follow the object.
            if (!json[(int)reader.BytesConsumed..].Trim(" \t\r\n"u8).IsEmpty)
                throw Error("the header has bytes after its JSON object that are not padding");
        }
        catch (JsonException e)
        {
            throw Error($"the header is not valid JSON ({e.Message})");
        }

        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object)
                throw Error($"the header is a JSON {root.ValueKind}, expected an object of tensors");

            var tensors = new List<SafetensorsTensorInfo>();
            var metadata = new Dictionary<string, string>(StringComparer.Ordinal);
            bool sawMetadata = false;
            foreach (var property in root.EnumerateObject())
            {
                if (property.Name == MetadataKey)
                {
                    if (sawMetadata) throw Error($"'{MetadataKey}' appears twice in the header");
                    sawMetadata = true;
                    ReadMetadata(property.Value, metadata);
                    continue;
                }
                if (_byName.ContainsKey(property.Name))
                    throw Error($"tensor '{property.Name}' appears twice in the header");
                var info = ReadTensorInfo(property.Name, property.Value);
                _byName.Add(info.Name, info);
                tensors.Add(info);
            }
            return (tensors, metadata);
        }
    }

    private void ReadMetadata(JsonElement value, Dictionary<string, string> metadata)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error($"'{MetadataKey}' is a JSON {value.ValueKind}, expected an object of strings");
        foreach (var entry in value.EnumerateObject())
        {
            if (entry.Value.ValueKind != JsonValueKind.String)
                throw Error($"'{MetadataKey}' entry '{entry.Name}' is a JSON {entry.Value.ValueKind}; metadata values must be strings");
            if (!metadata.TryAdd(entry.Name, entry.Value.GetString()!))
                throw Error($"'{MetadataKey}' entry '{entry.Name}' appears twice");
        }
    }

    private SafetensorsTensorInfo ReadTensorInfo(string name, JsonElement value)
    {
        if (value.ValueKind != JsonValueKind.Object)
            throw Error($"tensor '{name}' is described by a JSON {value.ValueKind}, expected an object with dtype, shape and data_offsets");

        if (!value.TryGetProperty("dtype", out var dtypeElement) || dtypeElement.ValueKind != JsonValueKind.String)
            throw Error($"tensor '{name}' has no string 'dtype'");
        string dtypeName = dtypeElement.GetString()!;
        if (!SafetensorsDTypes.TryParse(dtypeName, out var dtype))
            throw Error($"tensor '{name}' has dtype '{dtypeName}' (unknown); supported: {SafetensorsDTypes.SupportedNames}");

        if (!value.TryGetProperty("shape", out var shapeElement) || shapeElement.ValueKind != JsonValueKind.Array)
            throw Error($"tensor '{name}' has no 'shape' array");
        var shape = new long[shapeElement.GetArrayLength()];
        long elements = 1;
        int d = 0;
        foreach (var dim in shapeElement.EnumerateArray())
        {
            if (dim.ValueKind != JsonValueKind.Number || !dim.TryGetInt64(out long n) || n < 0)
                throw Error($"tensor '{name}' shape entry {d} is {dim.GetRawText()}, not a non-negative integer");
            shape[d++] = n;
            try { elements = checked(elements * n); }
            catch (OverflowException) { throw Error($"tensor '{name}' element count overflows (shape {shapeElement.GetRawText()})"); }
        }

        if (!value.TryGetProperty("data_offsets", out var offsetsElement) || offsetsElement.ValueKind != JsonValueKind.Array
            || offsetsElement.GetArrayLength() != 2)
            throw Error($"tensor '{name}' has no 'data_offsets' pair [begin, end]");
        long begin = ReadOffset(name, offsetsElement[0], "begin");
        long end = ReadOffset(name, offsetsElement[1], "end");
        if (end < begin)
            throw Error($"tensor '{name}' data_offsets [{begin}, {end}] end before they begin");

        long bytes;
        try { bytes = checked(elements * SafetensorsDTypes.ElementBytes(dtype)); }
        catch (OverflowException) { throw Error($"tensor '{name}' byte size overflows ({dtype} {string.Join("×", shape)})"); }
        if (end - begin != bytes)
            throw Error($"tensor '{name}' is {dtype} [{string.Join(", ", shape)}] = {bytes} bytes, but its data_offsets [{begin}, {end}] span {end - begin} bytes");

        return new SafetensorsTensorInfo { Name = name, DType = dtype, Shape = shape, Begin = begin, End = end, ElementCount = elements };
    }

    private long ReadOffset(string name, JsonElement e, string which)
    {
        if (e.ValueKind != JsonValueKind.Number || !e.TryGetInt64(out long v) || v < 0)
            throw Error($"tensor '{name}' data_offsets {which} is {e.GetRawText()}, not a non-negative integer");
        return v;
    }

    /// <summary>
    /// Byte ranges, in order of their start, must tile the data buffer: each begins where the previous ended
    /// (no overlap, no hole) and the last ends at the end of the file.
    /// </summary>
    private void CheckLayout(List<SafetensorsTensorInfo> tensors, long dataSize)
    {
        var ordered = tensors.OrderBy(t => t.Begin).ThenBy(t => t.End).ToList();
        long expected = 0;
        SafetensorsTensorInfo? previous = null;
        foreach (var t in ordered)
        {
            if (t.End > dataSize)
                throw Error($"tensor '{t.Name}' ({t.DType} {t.ShapeText}) occupies data bytes [{t.Begin}, {t.End}) but the file has only {dataSize} data bytes: the file is truncated or corrupt");
            if (t.Begin < expected)
                throw Error($"tensor '{t.Name}' data [{t.Begin}, {t.End}) overlaps tensor '{previous!.Name}' [{previous.Begin}, {previous.End})");
            if (t.Begin > expected)
                throw Error($"data bytes [{expected}, {t.Begin}) before tensor '{t.Name}' belong to no tensor (the data buffer must be fully indexed)");
            expected = t.End;
            previous = t;
        }
        if (expected != dataSize)
            throw Error($"the tensors cover {expected} data bytes but the file has {dataSize}: {dataSize - expected} trailing bytes belong to no tensor");
    }

    // ---- tensors -----------------------------------------------------------------------------------------

    public bool HasTensor(string name) => _byName.ContainsKey(name);

    public SafetensorsTensorInfo? FindTensor(string name) => _byName.GetValueOrDefault(name);

    public SafetensorsTensorInfo GetTensor(string name) =>
        _byName.TryGetValue(name, out var t) ? t : throw Error($"required tensor '{name}' is missing");

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
}
