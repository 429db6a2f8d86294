using System.Text.Json;

namespace LlavaNative.Model.Formats;

/// <summary>
/// The shard index of a sharded Hugging Face checkpoint (<c>model.safetensors.index.json</c>,
/// <c>pytorch_model.bin.index.json</c>): <c>{"metadata": {...}, "weight_map": {"tensor name": "shard file"}}</c>.
/// </summary>
internal static class CheckpointIndex
{
    /// <summary>The <c>weight_map</c> in file order, shard names checked to stay inside the folder; problems via <paramref name="error"/>.</summary>
    public static List<KeyValuePair<string, string>> ReadWeightMap(string indexPath, Func<string, ModelFormatException> error)
    {
        JsonDocument document;
        try
        {
            document = JsonDocument.Parse(File.ReadAllBytes(indexPath));
        }
        catch (JsonException e)
        {
            throw error($"not valid JSON ({e.Message})");
        }
        using (document)
        {
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("weight_map", out var map) || map.ValueKind != JsonValueKind.Object)
                throw error("no 'weight_map' object (tensor name → shard file)");
            var entries = new List<KeyValuePair<string, string>>();
            var seen = new HashSet<string>(StringComparer.Ordinal);
            foreach (var entry in map.EnumerateObject())
            {
                if (entry.Value.ValueKind != JsonValueKind.String)
                    throw error($"weight_map entry '{entry.Name}' is a JSON {entry.Value.ValueKind}, expected a shard file name");
                if (!seen.Add(entry.Name))
                    throw error($"weight_map lists tensor '{entry.Name}' twice");
                string shard = entry.Value.GetString()!;
                if (shard.Length == 0 || Path.IsPathRooted(shard) || shard.Split('/', '\\').Any(part => part is ".." or ""))
                    throw error($"weight_map puts '{entry.Name}' in '{shard}', which is not a file name inside the checkpoint folder");
                entries.Add(new(entry.Name, shard));
            }
            if (entries.Count == 0)
                throw error("the weight_map is empty");
            return entries;
        }
    }
}
