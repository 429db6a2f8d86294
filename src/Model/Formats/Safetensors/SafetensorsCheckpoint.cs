namespace LlavaNative.Model.Formats.Safetensors;

/// <summary>
/// The weights of a Hugging Face checkpoint: one <c>model.safetensors</c>, or shards listed by
/// <c>model.safetensors.index.json</c> (<c>{"metadata": {...}, "weight_map": {"tensor name": "shard file"}}</c>).
/// All shards are opened (memory-mapped) up front and every tensor the index names is checked to be in its
/// shard, so a missing or mismatched shard fails at load time, not halfway through a forward pass.
/// </summary>
public sealed class SafetensorsCheckpoint : ITensorCheckpoint
{
    public const string SingleFileName = "model.safetensors";
    public const string IndexFileName = "model.safetensors.index.json";

    private readonly List<SafetensorsFile> _shards = [];
    private readonly Dictionary<string, SafetensorsFile> _shardOf = new(StringComparer.Ordinal);

    /// <summary>The index file for a sharded checkpoint, else the single safetensors file.</summary>
    public string Path { get; }

    public bool IsSharded { get; }
    public IReadOnlyList<SafetensorsFile> Shards => _shards;

    /// <summary>Every tensor name (index order for sharded checkpoints, header order otherwise).</summary>
    public IReadOnlyCollection<string> TensorNames => _shardOf.Keys;

    private SafetensorsCheckpoint(string path, bool sharded)
    {
        Path = path;
        IsSharded = sharded;
    }

    /// <summary>
    /// Opens <paramref name="path"/>: a folder (its <c>model.safetensors</c> if present, else its index, else its
    /// only <c>*.safetensors</c> file), an index <c>.json</c> file, or a single <c>.safetensors</c> file.
    /// </summary>
    public static SafetensorsCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            // transformers' from_pretrained order: model.safetensors, then the sharded index.
            string single = System.IO.Path.Combine(path, SingleFileName);
            if (File.Exists(single)) return OpenSingle(single);
            string index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(index)) return OpenIndex(index);
            var candidates = Directory.GetFiles(path, "*.safetensors");
            if (candidates.Length == 1) return OpenSingle(candidates[0]);
            if (candidates.Length == 0)
                throw new FileNotFoundException($"{path}: no {SingleFileName} or {IndexFileName} in the folder", System.IO.Path.Combine(path, SingleFileName));
            throw new SafetensorsFormatException(path, $"the folder holds {candidates.Length} .safetensors files ({string.Join(", ", candidates.Select(System.IO.Path.GetFileName).Order())}) but no {IndexFileName} saying which tensor is where");
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return OpenIndex(path);
        return OpenSingle(path);
    }

    private static SafetensorsCheckpoint OpenSingle(string path)
    {
        var checkpoint = new SafetensorsCheckpoint(path, sharded: false);
        var file = SafetensorsFile.Open(path);
        checkpoint._shards.Add(file);
        foreach (var t in file.Tensors) checkpoint._shardOf.Add(t.Name, file);
        return checkpoint;
    }

    private static SafetensorsCheckpoint OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"{indexPath}: file not found", indexPath);
        var weightMap = ReadWeightMap(indexPath);
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var checkpoint = new SafetensorsCheckpoint(indexPath, sharded: true);
        try
        {
            var opened = new Dictionary<string, SafetensorsFile>(StringComparer.Ordinal);
            foreach (var (tensor, shardName) in weightMap)
            {
                if (!opened.TryGetValue(shardName, out var shard))
                {
                    string shardPath = System.IO.Path.Combine(folder, shardName);
                    if (!File.Exists(shardPath))
                    {
                        int count = weightMap.Count(kv => kv.Value == shardName);
                        throw new SafetensorsFormatException(indexPath, $"shard '{shardName}' (holding '{tensor}' and {count - 1} other tensors) is missing from {folder}");
                    }
                    shard = SafetensorsFile.Open(shardPath);
                    opened.Add(shardName, shard);
                    checkpoint._shards.Add(shard);
                }
                if (!shard.HasTensor(tensor))
                    throw new SafetensorsFormatException(indexPath, $"the weight map puts tensor '{tensor}' in '{shardName}', which has no such tensor");
                checkpoint._shardOf.Add(tensor, shard);
            }
            return checkpoint;
        }
        catch
        {
            checkpoint.Dispose();
            throw;
        }
    }

    /// <summary>The <c>weight_map</c> of an index, in file order, with shard names checked to stay in the folder.</summary>
    private static List<KeyValuePair<string, string>> ReadWeightMap(string indexPath) =>
        CheckpointIndex.ReadWeightMap(indexPath, problem => new SafetensorsFormatException(indexPath, problem));

    // ---- lookup ------------------------------------------------------------------------------------------

    public bool TryGetTensor(string name, out SafetensorsTensorInfo tensor, out SafetensorsFile shard)
    {
        if (_shardOf.TryGetValue(name, out shard!))
        {
            tensor = shard.GetTensor(name);
            return true;
        }
        tensor = null!;
        return false;
    }

    public bool TryGetTensor(string name, out TensorView tensor)
    {
        if (TryGetTensor(name, out SafetensorsTensorInfo info, out _))
        {
            tensor = info.ToView();
            return true;
        }
        tensor = default;
        return false;
    }

    /// <summary>Names the shard holding <paramref name="tensorName"/>, else the index (or the single file).</summary>
    public ModelFormatException Error(string? tensorName, string problem)
    {
        string file = tensorName != null && _shardOf.TryGetValue(tensorName, out var shard) ? shard.Path : Path;
        return new SafetensorsFormatException(file, problem);
    }

    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
        _shards.Clear();
        _shardOf.Clear();
    }
}
