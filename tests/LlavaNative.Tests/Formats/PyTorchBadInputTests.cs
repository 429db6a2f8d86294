using System.IO.Compression;
using System.Text;
using LlavaNative.Model;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.PyTorch;
using Xunit;

namespace LlavaNative.Tests.Formats;

/// <summary>
/// torch.save archives written here byte by byte (pickle opcodes and zip members), then broken one way at a time:
/// code-running globals, corrupt pickles, damaged archives and indexes. Every failure is a
/// <see cref="PyTorchFormatException"/> naming the file and the problem; nothing is ever executed. (Files that PyTorch
/// itself writes, and live code-running payloads, are checked in LlavaNative.Reference.Tests.PyTorchCheckpointTests.)
/// </summary>
public sealed unsafe class PyTorchBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-pytorch-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>Pickle opcodes, written the way Python's pickler does (protocol 2 unless PROTO says otherwise).</summary>
    private sealed class PickleBuilder
    {
        private readonly MemoryStream _s = new();

        public PickleBuilder Op(params byte[] bytes) { _s.Write(bytes); return this; }
        public PickleBuilder Proto(int p) => Op(0x80, (byte)p);
        public PickleBuilder Mark() => Op((byte)'(');
        public PickleBuilder Tuple() => Op((byte)'t');
        public PickleBuilder EmptyTuple() => Op((byte)')');
        public PickleBuilder EmptyDict() => Op((byte)'}');
        public PickleBuilder SetItems() => Op((byte)'u');
        public PickleBuilder Reduce() => Op((byte)'R');
        public PickleBuilder Stop() => Op((byte)'.');
        public PickleBuilder Global(string module, string name) => Op((byte)'c').Op(Encoding.ASCII.GetBytes($"{module}\n{name}\n"));

        public PickleBuilder Str(string s)
        {
            byte[] b = Encoding.UTF8.GetBytes(s);
            return Op((byte)'X').Op(BitConverter.GetBytes(b.Length)).Op(b);
        }

        public PickleBuilder Int(int v) => Op((byte)'J').Op(BitConverter.GetBytes(v));

        public PickleBuilder Ints(params long[] values)
        {
            Mark();
            foreach (long v in values) Int((int)v);
            return Tuple();
        }

        /// <summary>_rebuild_tensor_v2(pid(storage), offset, size, stride, False, OrderedDict()) on the stack.</summary>
        public PickleBuilder Tensor(string storageKey, long numel, long offset, long[] shape, long[] stride, string storageType = "FloatStorage")
        {
            Global("torch._utils", "_rebuild_tensor_v2").Mark();
            Mark().Str("storage").Global("torch", storageType).Str(storageKey).Str("cpu").Int((int)numel).Tuple().Op((byte)'Q');
            Int((int)offset).Ints(shape).Ints(stride).Op(0x89);
            Global("collections", "OrderedDict").EmptyTuple().Reduce();
            return Tuple().Reduce();
        }

        public byte[] ToArray() => _s.ToArray();
    }

    private static byte[] Floats(params float[] values) => values.SelectMany(BitConverter.GetBytes).ToArray();

    /// <summary>A zip archive laid out as torch.save does: archive/data.pkl, archive/data/KEY, archive/version.</summary>
    private string Archive(byte[] pickle, Dictionary<string, byte[]>? storages = null, string name = "model.bin",
        CompressionLevel level = CompressionLevel.NoCompression, bool withPickle = true)
    {
        string path = Path.Combine(_dir, name);
        using (var zip = new ZipArchive(File.Create(path), ZipArchiveMode.Create))
        {
            void Add(string member, byte[] bytes)
            {
                using var s = zip.CreateEntry("archive/" + member, level).Open();
                s.Write(bytes);
            }
            if (withPickle) Add("data.pkl", pickle);
            foreach (var (key, bytes) in storages ?? new()) Add("data/" + key, bytes);
            Add("version", "3\n"u8.ToArray());
        }
        return path;
    }

    /// <summary>{'w': tensor of shape [2, 3] at offset 1 of a 7-float storage}.</summary>
    private static byte[] ValidPickle(long numel = 7, long offset = 1, long[]? stride = null) =>
        new PickleBuilder().Proto(2).EmptyDict().Mark().Str("w").Tensor("0", numel, offset, [2, 3], stride ?? [3, 1]).SetItems().Stop().ToArray();

    private static readonly Dictionary<string, byte[]> SevenFloats = new() { ["0"] = Floats(0, 1, 2, 3, 4, 5, 6) };

    private PyTorchFormatException Fails(string path, params string[] fragments)
    {
        var e = Assert.Throws<PyTorchFormatException>(() => PyTorchCheckpoint.Open(path));
        Assert.Contains(Path.GetFileName(path), e.Message);
        foreach (string f in fragments) Assert.Contains(f, e.Message);
        return e;
    }

    [Fact]
    public void AHandWrittenArchiveLoads()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Archive(ValidPickle(), SevenFloats));
        Assert.True(checkpoint.TryGetTensor("w", out TensorView t));
        Assert.Equal([2L, 3L], t.Shape);
        Assert.Equal(new float[] { 1, 2, 3, 4, 5, 6 }, new ReadOnlySpan<float>(t.Data, 6).ToArray());
    }

    public static TheoryData<string, string, string> RefusedGlobals => new()
    {
        { "os", "system", "touch /tmp/llavanative-pwned" },
        { "posix", "system", "touch /tmp/llavanative-pwned" },
        { "builtins", "eval", "__import__('os').system('true')" },
        { "__builtin__", "exec", "import os" },
        { "subprocess", "getoutput", "id" },
        { "torch", "load", "x.pt" },
        { "numpy.core.multiarray", "_reconstruct", "x" },
    };

    [Theory, MemberData(nameof(RefusedGlobals))]
    public void GlobalsOutsideTensorRebuildingAreRefused(string module, string name, string argument)
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Mark().Str("w").Tensor("0", 7, 1, [2, 3], [3, 1])
            .Str("x").Global(module, name).Mark().Str(argument).Tuple().Reduce().SetItems().Stop().ToArray();
        Fails(Archive(pickle, SevenFloats), $"refusing global '{module}.{name}'", "never executes");
    }

    [Fact]
    public void StackGlobalIsCheckedLikeGlobal()
    {
        byte[] pickle = new PickleBuilder().Proto(4).EmptyDict().Mark().Str("x")
            .Op(0x8c, 2).Op("os"u8.ToArray()).Op(0x8c, 6).Op("system"u8.ToArray()).Op(0x93)
            .Mark().Str("true").Tuple().Reduce().SetItems().Stop().ToArray();
        Fails(Archive(pickle), "refusing global 'os.system'");
    }

    [Fact]
    public void AStorageTypeInAPersistentIdMustBeAStorage()
    {
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Mark().Str("w")
            .Global("torch._utils", "_rebuild_tensor_v2").Mark()
            .Mark().Str("storage").Global("os", "system").Str("0").Str("cpu").Int(7).Tuple().Op((byte)'Q')
            .ToArray();
        Fails(Archive(pickle, SevenFloats), "refusing global 'os.system'");
    }

    [Fact]
    public void AllowedNonFunctionsCannotBeCalled()
    {
        // torch.FloatStorage is allowed as a name (in persistent ids) but REDUCE on it would construct an object.
        byte[] pickle = new PickleBuilder().Proto(2).EmptyDict().Mark().Str("x").Global("torch", "FloatStorage").Mark().Int(5).Tuple().Reduce()
            .SetItems().Stop().ToArray();
        Fails(Archive(pickle), "REDUCE calls torch.FloatStorage, which is not an allowed function");
    }

    [Theory]
    [InlineData(new byte[] { 0x81 }, "NEWOBJ")]
    [InlineData(new byte[] { (byte)'o' }, "INST / OBJ")]
    [InlineData(new byte[] { 0x82, 1 }, "EXT1/2/4")]
    [InlineData(new byte[] { (byte)'b' }, "BUILD on a list")]
    [InlineData(new byte[] { (byte)'P' }, "PERSID")]
    public void ObjectBuildingOpcodesAreRefused(byte[] opcode, string expected)
    {
        byte[] pickle = new PickleBuilder().Proto(2).Global("collections", "OrderedDict").Op((byte)']').Op((byte)']').Op(opcode).Stop().ToArray();
        Fails(Archive(pickle), expected);
    }

    [Fact]
    public void ATruncatedPickleIsAnError()
    {
        byte[] pickle = ValidPickle();
        Fails(Archive(pickle[..(pickle.Length / 2)], SevenFloats), "truncated");
    }

    [Theory]
    [InlineData(new byte[] { 0x80, 2, 0xFF }, "unknown pickle opcode 0xFF")]
    [InlineData(new byte[] { 0x80, 2, (byte)'N', (byte)'N', (byte)'.' }, "STOP with 2 values")]
    [InlineData(new byte[] { 0x80, 2, (byte)']', (byte)'.' }, "not a state dict")]
    [InlineData(new byte[] { 0x80, 2, (byte)'h', 9, (byte)'.' }, "memo key 9 was never stored")]
    [InlineData(new byte[] { 0x80, 2, (byte)'}', (byte)'.' }, "holds no tensors")]
    [InlineData(new byte[] { 0x80, 2, (byte)'0', (byte)'.' }, "stack underflow")]
    [InlineData(new byte[] { 0x80, 9, (byte)'.' }, "protocol 9")]
    public void CorruptPicklesAreErrors(byte[] pickle, string expected) => Fails(Archive(pickle), expected);

    [Fact]
    public void AMissingStorageIsAnError() => Fails(Archive(ValidPickle()), "storage data/0 is missing");

    [Fact]
    public void AStorageShorterThanThePickleSaysIsAnError() =>
        Fails(Archive(ValidPickle(), new() { ["0"] = Floats(1, 2, 3) }), "holds 12 bytes, but the pickle says 7 FloatStorage elements");

    [Fact]
    public void ATensorPastTheEndOfItsStorageIsAnError() =>
        Fails(Archive(ValidPickle(offset: 4), SevenFloats), "runs past the end of its 7-element storage");

    [Fact]
    public void AStridedTensorIsRefused() =>
        Fails(Archive(ValidPickle(stride: [1, 2]), SevenFloats), "is not contiguous (strides [1, 2])", "contiguous()");

    [Fact]
    public void ImpossibleShapesAreErrors()
    {
        byte[] Pickle(long[] shape, long[] stride) =>
            new PickleBuilder().Proto(2).EmptyDict().Mark().Str("w").Tensor("0", 7, 0, shape, stride).SetItems().Stop().ToArray();
        Fails(Archive(Pickle([2, 3], [1]), SevenFloats), "tensor 'w' has 2 dimensions but 1 strides");
        Fails(Archive(Pickle([int.MaxValue, int.MaxValue, int.MaxValue], [1, 1, 1]), SevenFloats), "overflows");
    }

    [Fact]
    public void ACompressedMemberIsAnError() =>
        Fails(Archive(ValidPickle(), SevenFloats, level: CompressionLevel.Optimal), "compressed");

    [Fact]
    public void AnArchiveWithoutAPickleIsAnError() =>
        Fails(Archive([], SevenFloats, withPickle: false), "no data.pkl member");

    [Theory]
    [InlineData(0.5)]
    [InlineData(0.98)]
    public void ATruncatedArchiveIsAnError(double keep)
    {
        string path = Archive(ValidPickle(), SevenFloats);
        byte[] bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(int)(bytes.Length * keep)]);
        Fails(path, "truncated");
    }

    [Fact]
    public void ADamagedCentralDirectoryIsAnError()
    {
        string path = Archive(ValidPickle(), SevenFloats);
        byte[] bytes = File.ReadAllBytes(path);
        int end = bytes.Length - 22;
        BitConverter.GetBytes(int.MaxValue).CopyTo(bytes, end + 16); // central directory offset far past the end
        File.WriteAllBytes(path, bytes);
        Fails(path, "central directory");
    }

    [Theory]
    [InlineData(new byte[0], "too short")]
    [InlineData(new byte[] { 0x80, 2, 0x8a, 10, 0x6c, 0xfc, 0x9c, 0x46, 0xf9, 0x20, 0x6a, 0xa8, 0x50, 0x19, 0x2e, 0, 0, 0, 0, 0, 0, 0, 0, 0 }, "legacy (pre-1.6")]
    [InlineData(new byte[] { 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24 }, "not a zip archive")]
    public void FilesThatAreNotTorchZipArchivesAreErrors(byte[] content, string expected)
    {
        string path = Path.Combine(_dir, "pytorch_model.bin");
        File.WriteAllBytes(path, content);
        Fails(path, expected);
    }

    [Fact]
    public void ShardIndexProblemsNameTheIndex()
    {
        string index = Path.Combine(_dir, PyTorchCheckpoint.IndexFileName);
        File.WriteAllText(index, """{"weight_map": {"w": "pytorch_model-00001-of-00002.bin"}}""");
        Fails(index, "shard 'pytorch_model-00001-of-00002.bin'", "is missing");

        Archive(ValidPickle(), SevenFloats, name: "pytorch_model-00001-of-00002.bin");
        File.WriteAllText(index, """{"weight_map": {"v": "pytorch_model-00001-of-00002.bin"}}""");
        Fails(index, "puts tensor 'v' in 'pytorch_model-00001-of-00002.bin', which has no such tensor");

        File.WriteAllText(index, """{"weight_map": {"w": "../elsewhere.bin"}}""");
        Fails(index, "not a file name inside the checkpoint folder");

        File.WriteAllText(index, "{not json");
        Fails(index, "not valid JSON");

        File.WriteAllText(index, """{"weight_map": {"w": "pytorch_model-00001-of-00002.bin"}}""");
        using var checkpoint = PyTorchCheckpoint.Open(_dir); // no pytorch_model.bin: the folder's index is used
        Assert.True(checkpoint.IsSharded);
    }

    [Fact]
    public void AFolderWithoutWeightsNamesWhatItLookedFor()
    {
        var e = Assert.Throws<FileNotFoundException>(() => HuggingFaceCheckpoint.Open(_dir));
        Assert.Contains("model.safetensors", e.Message);
        Assert.Contains("pytorch_model.bin", e.Message);
    }

    [Fact]
    public void AnIntegerTensorUsedAsAWeightNamesTheBinFile()
    {
        // A llama folder whose first norm is stored as int64: the binder's error names the .bin file and the type.
        const int dim = 8, vocab = 10;
        var b = new PickleBuilder().Proto(2).EmptyDict().Mark()
            .Str("model.embed_tokens.weight").Tensor("0", vocab * dim, 0, [vocab, dim], [dim, 1])
            .Str("model.layers.0.input_layernorm.weight").Tensor("1", dim, 0, [dim], [1], storageType: "LongStorage")
            .SetItems().Stop();
        Archive(b.ToArray(), new() { ["0"] = new byte[vocab * dim * 4], ["1"] = new byte[dim * 8] }, name: PyTorchCheckpoint.SingleFileName);
        File.WriteAllText(Path.Combine(_dir, "config.json"), $$"""
            {"model_type": "llama", "hidden_size": {{dim}}, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": {{vocab}}, "num_hidden_layers": 1}
            """);
        var e = Assert.Throws<PyTorchFormatException>(() => ModelLoader.Load(_dir));
        Assert.Contains(PyTorchCheckpoint.SingleFileName, e.Message);
        Assert.Contains("'model.layers.0.input_layernorm.weight' has element type I64", e.Message);
    }
}
