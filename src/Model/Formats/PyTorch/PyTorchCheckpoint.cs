namespace LlavaNative.Model.Formats.PyTorch;

/// <summary>
/// The weights of a Hugging Face checkpoint saved as PyTorch pickles: one <c>pytorch_model.bin</c>, or shards
/// listed by <c>pytorch_model.bin.index.json</c> (the same <c>weight_map</c> format as safetensors). As for
/// safetensors, every shard is opened and mapped up front and every tensor the index names is checked to be in
/// its shard. Each file is read by <see cref="PyTorchCheckpointFile"/>: a restricted unpickler, no code executed.
/// </summary>
public sealed class PyTorchCheckpoint : ITensorCheckpoint
{
    public const string SingleFileName = "pytorch_model.bin";
    public const string IndexFileName = "pytorch_model.bin.index.json";

    private readonly List<PyTorchCheckpointFile> _shards = [];
    private readonly Dictionary<string, PyTorchCheckpointFile> _shardOf = new(StringComparer.Ordinal);

    /// <summary>The index file for a sharded checkpoint, else the single .bin file.</summary>
    public string Path { get; }

    public bool IsSharded { get; }
    public IReadOnlyList<PyTorchCheckpointFile> Shards => _shards;
    public IReadOnlyCollection<string> TensorNames => _shardOf.Keys;

    private PyTorchCheckpoint(string path, bool sharded)
    {
        Path = path;
        IsSharded = sharded;
    }

    /// <summary>True when <paramref name="folder"/> holds <c>pytorch_model.bin</c> or its shard index.</summary>
    public static bool ExistsIn(string folder) =>
        File.Exists(System.IO.Path.Combine(folder, SingleFileName)) || File.Exists(System.IO.Path.Combine(folder, IndexFileName));

    /// <summary>
    /// Opens <paramref name="path"/>: a folder (its <c>pytorch_model.bin</c>, else its index), an index
    /// <c>.json</c> file, or a single <c>.bin</c> / <c>.pt</c> file.
    /// </summary>
    public static PyTorchCheckpoint Open(string path)
    {
        if (Directory.Exists(path))
        {
            string single = System.IO.Path.Combine(path, SingleFileName);
            if (File.Exists(single)) return OpenSingle(single);
            string index = System.IO.Path.Combine(path, IndexFileName);
            if (File.Exists(index)) return OpenIndex(index);
            throw new FileNotFoundException($"{path}: no {SingleFileName} or {IndexFileName} in the folder", single);
        }
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase)) return OpenIndex(path);
        return OpenSingle(path);
    }

    private static PyTorchCheckpoint OpenSingle(string path)
    {
        var checkpoint = new PyTorchCheckpoint(path, sharded: false);
        var file = PyTorchCheckpointFile.Open(path);
        checkpoint._shards.Add(file);
        foreach (string name in file.TensorNames) checkpoint._shardOf.Add(name, file);
        return checkpoint;
    }

    private static PyTorchCheckpoint OpenIndex(string indexPath)
    {
        if (!File.Exists(indexPath)) throw new FileNotFoundException($"{indexPath}: file not found", indexPath);
        var weightMap = CheckpointIndex.ReadWeightMap(indexPath, problem => new PyTorchFormatException(indexPath, problem));
        string folder = System.IO.Path.GetDirectoryName(System.IO.Path.GetFullPath(indexPath))!;
        var checkpoint = new PyTorchCheckpoint(indexPath, sharded: true);
        try
        {
            var opened = new Dictionary<string, PyTorchCheckpointFile>(StringComparer.Ordinal);
            foreach (var (tensor, shardName) in weightMap)
            {
                if (!opened.TryGetValue(shardName, out var shard))
                {
                    string shardPath = System.IO.Path.Combine(folder, shardName);
                    if (!File.Exists(shardPath))
                    {
                        int count = weightMap.Count(kv => kv.Value == shardName);
                        throw new PyTorchFormatException(indexPath, $"shard '{shardName}' (holding '{tensor}' and {count - 1} other tensors) is missing from {folder}");
                    }
                    shard = PyTorchCheckpointFile.Open(shardPath);
                    opened.Add(shardName, shard);
                    checkpoint._shards.Add(shard);
                }
                if (!shard.HasTensor(tensor))
                    throw new PyTorchFormatException(indexPath, $"the weight map puts tensor '{tensor}' in '{shardName}', which has no such tensor");
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

    public bool TryGetTensor(string name, out TensorView tensor)
    {
        if (_shardOf.TryGetValue(name, out var shard)) return shard.TryGetTensor(name, out tensor);
        tensor = default;
        return false;
    }

    /// <summary>Names the shard holding <paramref name="tensorName"/>, else the index (or the single file).</summary>
    public ModelFormatException Error(string? tensorName, string problem)
    {
        string file = tensorName != null && _shardOf.TryGetValue(tensorName, out var shard) ? shard.Path : Path;
        return new PyTorchFormatException(file, problem);
    }

    public void Dispose()
    {
        foreach (var shard in _shards) shard.Dispose();
        _shards.Clear();
        _shardOf.Clear();
    }
}
