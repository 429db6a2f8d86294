using System.Text;
using System.Text.Json;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Safetensors;
using Xunit;

namespace LlavaNative.Tests.HuggingFace;

/// <summary>
/// The safetensors reader on files laid out byte by byte from the format description (8-byte little-endian
/// header length, JSON header, data buffer indexed by data_offsets), and the writer's output read back both by
/// the reader and by a plain JSON parse of its header.
/// </summary>
public sealed class SafetensorsFileTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-safetensors-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>8-byte LE length, the header text as given, then the data buffer.</summary>
    internal static byte[] RawFile(string header, byte[] data)
    {
        byte[] json = Encoding.UTF8.GetBytes(header);
        var bytes = new byte[8 + json.Length + data.Length];
        BitConverter.GetBytes((ulong)json.Length).CopyTo(bytes, 0);
        json.CopyTo(bytes, 8);
        data.CopyTo(bytes, 8 + json.Length);
        return bytes;
    }

    private string Write(byte[] bytes, string name = "model.safetensors")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static byte[] Concat(params byte[][] parts) => parts.SelectMany(p => p).ToArray();
    private static byte[] F32(params float[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();
    private static byte[] F16(params float[] v) => v.SelectMany(x => BitConverter.GetBytes((Half)x)).ToArray();
    private static byte[] I64(params long[] v) => v.SelectMany(BitConverter.GetBytes).ToArray();

    [Fact]
    public unsafe void ReadsAHandWrittenFile()
    {
        // Header order differs from data order; whitespace padding after the object is allowed.
        string header = """
            {"b":{"dtype":"F16","shape":[3],"data_offsets":[8,14]},
             "__metadata__":{"format":"pt","note":"hand made"},
             "a":{"dtype":"F32","shape":[1,2],"data_offsets":[0,8]},
             "step":{"dtype":"I64","shape":[],"data_offsets":[14,22]},
             "empty":{"dtype":"BF16","shape":[0,4],"data_offsets":[22,22]}}
            """ + "    ";
        string path = Write(RawFile(header, Concat(F32(1.5f, -2f), F16(1f, 0.5f, -3f), I64(123456789012))));

        using var file = SafetensorsFile.Open(path);
        Assert.Equal(["b", "a", "step", "empty"], file.Tensors.Select(t => t.Name));
        Assert.Equal("pt", file.Metadata["format"]);
        Assert.Equal("hand made", file.Metadata["note"]);
        Assert.Equal(8 + Encoding.UTF8.GetByteCount(header), file.DataOffset);

        var a = file.GetTensor("a");
        Assert.Equal(SafetensorsDType.F32, a.DType);
        Assert.Equal([1L, 2L], a.Shape);
        Assert.Equal([1.5f, -2f], new ReadOnlySpan<float>(a.Data, 2).ToArray());

        var b = file.GetTensor("b");
        Assert.Equal(SafetensorsDType.F16, b.DType);
        Assert.Equal([(Half)1f, (Half)0.5f, (Half)(-3f)], new ReadOnlySpan<Half>(b.Data, 3).ToArray());

        var step = file.GetTensor("step");
        Assert.Empty(step.Shape);
        Assert.Equal(1, step.ElementCount);
        Assert.Equal(123456789012L, *(long*)step.Data);

        var empty = file.GetTensor("empty");
        Assert.Equal(0, empty.ElementCount);
        Assert.Equal(0, empty.ByteSize);

        // As a tensor source: F32/F16/BF16 map onto engine encodings, other dtypes have none.
        using var checkpoint = SafetensorsCheckpoint.Open(path);
        Assert.True(checkpoint.TryGetTensor("b", out TensorView view));
        Assert.Equal(TensorType.F16, view.Type);
        Assert.Equal([(Half)1f, (Half)0.5f, (Half)(-3f)], new ReadOnlySpan<Half>(view.Data, 3).ToArray());
        Assert.Equal([3L], view.Shape);
        Assert.True(checkpoint.TryGetTensor("step", out view));
        Assert.Null(view.Type);
        Assert.Equal("I64", view.TypeName);
        Assert.False(checkpoint.TryGetTensor("missing", out view));
    }

    [Fact]
    public unsafe void WriterOutputFollowsTheFormat()
    {
        var w = new SafetensorsWriter();
        w.SetMetadata("format", "pt");
        w.AddTensor("x.weight", [2, 3], [1f, 2f, 3f, 4f, 5f, 6f]);
        w.AddTensor("y.bias", SafetensorsDType.BF16, [3], new byte[] { 0x80, 0x3F, 0x00, 0x40, 0x40, 0xC0 }); // 1, 2, -3
        w.AddTensor("z.ids", SafetensorsDType.I32, [2], stream => stream.Write(BitConverter.GetBytes(7).Concat(BitConverter.GetBytes(-1)).ToArray()));
        string path = Path.Combine(_dir, "written.safetensors");
        w.WriteTo(path);

        // Independent look at the bytes: header length, JSON, contiguous offsets, 8-byte aligned data buffer.
        byte[] bytes = File.ReadAllBytes(path);
        ulong n = BitConverter.ToUInt64(bytes, 0);
        Assert.Equal(0ul, (8 + n) % 8);
        using var header = JsonDocument.Parse(bytes.AsMemory(8, (int)n));
        var root = header.RootElement;
        Assert.Equal("pt", root.GetProperty("__metadata__").GetProperty("format").GetString());
        Assert.Equal("F32", root.GetProperty("x.weight").GetProperty("dtype").GetString());
        Assert.Equal([2, 3], root.GetProperty("x.weight").GetProperty("shape").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([0, 24], root.GetProperty("x.weight").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([24, 30], root.GetProperty("y.bias").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal([30, 38], root.GetProperty("z.ids").GetProperty("data_offsets").EnumerateArray().Select(e => e.GetInt32()));
        Assert.Equal(8 + (long)n + 38, bytes.LongLength);
        Assert.Equal(6f, BitConverter.ToSingle(bytes, 8 + (int)n + 20));

        using var file = SafetensorsFile.Open(path);
        Assert.Equal([1f, 2f, 3f, 4f, 5f, 6f], new ReadOnlySpan<float>(file.GetTensor("x.weight").Data, 6).ToArray());
        Assert.Equal(SafetensorsDType.BF16, file.GetTensor("y.bias").DType);
        Assert.Equal([7, -1], new ReadOnlySpan<int>(file.GetTensor("z.ids").Data, 2).ToArray());
    }

    [Fact]
    public void WriterRejectsWrongSizesAndDuplicateNames()
    {
        var w = new SafetensorsWriter();
        w.AddTensor("a", [2], [1f, 2f]);
        Assert.Contains("'a'", Assert.Throws<ArgumentException>(() => w.AddTensor("a", [1], [1f])).Message);
        Assert.Contains("needs 8 bytes", Assert.Throws<ArgumentException>(() => w.AddTensor("b", SafetensorsDType.F32, [2], new byte[6])).Message);
        w.AddTensor("c", SafetensorsDType.F16, [4], stream => stream.Write(new byte[6]));
        Assert.Contains("'c'", Assert.Throws<InvalidOperationException>(() => w.WriteTo(Path.Combine(_dir, "short.safetensors"))).Message);
        Assert.False(File.Exists(Path.Combine(_dir, "short.safetensors")));
    }

    [Fact]
    public unsafe void ShardedCheckpointFindsEveryTensorInItsShard()
    {
        var w = new SafetensorsWriter();
        for (int i = 0; i < 7; i++)
            w.AddTensor($"layers.{i}.weight", [i + 1], Enumerable.Range(0, i + 1).Select(v => (float)(10 * i + v)).ToArray());
        var shards = w.WriteSharded(_dir, 3);
        Assert.Equal(["model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors", "model-00003-of-00003.safetensors"],
            shards.Select(Path.GetFileName));

        using (var index = JsonDocument.Parse(File.ReadAllBytes(Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName))))
        {
            Assert.Equal(28 * 4, index.RootElement.GetProperty("metadata").GetProperty("total_size").GetInt64());
            Assert.Equal(7, index.RootElement.GetProperty("weight_map").EnumerateObject().Count());
        }

        using var checkpoint = SafetensorsCheckpoint.Open(_dir);
        Assert.True(checkpoint.IsSharded);
        Assert.Equal(3, checkpoint.Shards.Count);
        Assert.Equal(7, checkpoint.TensorNames.Count);
        for (int i = 0; i < 7; i++)
        {
            Assert.True(checkpoint.TryGetTensor($"layers.{i}.weight", out SafetensorsTensorInfo t, out var shard));
            Assert.Contains(shard, checkpoint.Shards);
            Assert.Equal(10f * i + i, ((float*)t.Data)[i]);
        }
        // Opening the index file itself is the same as opening the folder.
        using var viaIndex = SafetensorsCheckpoint.Open(Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName));
        Assert.Equal(7, viaIndex.TensorNames.Count);
    }

    [Fact]
    public void FolderWithOneUnconventionallyNamedFileOpensIt()
    {
        var w = new SafetensorsWriter();
        w.AddTensor("t", [1], [3f]);
        w.WriteTo(Path.Combine(_dir, "weights.safetensors"));
        using var checkpoint = SafetensorsCheckpoint.Open(_dir);
        Assert.False(checkpoint.IsSharded);
        Assert.Equal(["t"], checkpoint.TensorNames);
    }

    [Fact]
    public void SingleFileIsPreferredToAnIndexAsTransformersDoes()
    {
        var sharded = new SafetensorsWriter();
        sharded.AddTensor("a", [1], [1f]);
        sharded.AddTensor("b", [1], [2f]);
        sharded.WriteSharded(_dir, 2);
        var single = new SafetensorsWriter();
        single.AddTensor("only", [1], [3f]);
        single.WriteTo(Path.Combine(_dir, SafetensorsCheckpoint.SingleFileName));
        using var checkpoint = SafetensorsCheckpoint.Open(_dir);
        Assert.False(checkpoint.IsSharded);
        Assert.Equal(["only"], checkpoint.TensorNames);
    }
}
