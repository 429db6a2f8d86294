using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Language;
using Xunit;

namespace LlavaNative.Tests.Formats;

/// <summary>Corrupt, truncated and inconsistent GGUF files: each is a GgufFormatException naming the file and the problem.</summary>
public sealed class GgufBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-gguf-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A small valid GGUF: a few metadata keys and two F32 tensors.</summary>
    private byte[] ValidFile(Action<GgufWriter>? customize = null)
    {
        var w = new GgufWriter();
        w.SetString("general.architecture", "llama");
        w.SetUInt32("llama.block_count", 1);
        w.SetArray("tokenizer.ggml.tokens", new[] { "a", "b", "c" });
        w.AddTensor("first.weight", [4, 2], new float[8]);
        w.AddTensor("second.weight", [8], Enumerable.Range(0, 8).Select(i => (float)i).ToArray());
        customize?.Invoke(w);
        var ms = new MemoryStream();
        w.WriteTo(ms);
        return ms.ToArray();
    }

    private string Write(byte[] bytes, string name = "model.gguf")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static GgufFormatException Fails(string path)
    {
        var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).Dispose());
        Assert.StartsWith(Path.GetFileName(path) + ": ", e.Message);
        return e;
    }

    [Fact]
    public unsafe void ValidFileReadsBack()
    {
        using var f = GgufFile.Open(Write(ValidFile()));
        Assert.Equal(3u, f.Version);
        Assert.Equal("llama", f.GetString("general.architecture"));
        Assert.Equal(["a", "b", "c"], f.GetArray<string>("tokenizer.ggml.tokens"));
        var t = f.GetTensor("second.weight");
        Assert.Equal(TensorType.F32, t.Type);
        Assert.Equal(7f, ((float*)t.Data)[7]);
    }

    [Fact]
    public void WrongMagic()
    {
        var bytes = ValidFile();
        bytes[0] = (byte)'X';
        Assert.Contains("not a GGUF file", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void UnsupportedVersion()
    {
        var bytes = ValidFile();
        BitConverter.GetBytes(1u).CopyTo(bytes, 4);
        Assert.Contains("version 1", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void EveryTruncationIsACleanError()
    {
        var bytes = ValidFile();
        // Cut at every header byte and inside the tensor data: never a crash, always a named error.
        for (int cut = 0; cut < bytes.Length; cut += cut < 300 ? 1 : 7)
        {
            string path = Write(bytes[..cut], $"cut{cut}.gguf");
            var e = Assert.Throws<GgufFormatException>(() => GgufFile.Open(path).Dispose());
            Assert.Contains($"cut{cut}.gguf", e.Message);
        }
    }

    [Fact]
    public void AbsurdTensorCount()
    {
        var bytes = ValidFile();
        BitConverter.GetBytes(ulong.MaxValue / 3).CopyTo(bytes, 8);
        Assert.Contains("tensor count", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void AbsurdStringLength()
    {
        var bytes = ValidFile();
        // First key's length field follows the 24-byte header.
        BitConverter.GetBytes(long.MaxValue).CopyTo(bytes, 24);
        Assert.Contains("string length", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void UnknownTensorTypeIsNamed()
    {
        var bytes = ValidFile(w => w.AddTensor("third.weight", TensorType.F32, [4], new byte[16]));
        // Patch the type of 'third.weight' (u32 after its dims) to 41.
        int at = IndexOf(bytes, "third.weight"u8) + "third.weight".Length + 4 + 8;
        BitConverter.GetBytes(41u).CopyTo(bytes, at);
        var e = Fails(Write(bytes));
        Assert.Contains("'third.weight' has type 41 (unknown)", e.Message);
        Assert.Contains("Q4_K", e.Message);
    }

    [Fact]
    public void TensorDataPastTheEnd()
    {
        var bytes = ValidFile();
        int at = IndexOf(bytes, "second.weight"u8) + "second.weight".Length + 4 + 8 + 4;
        BitConverter.GetBytes(1_000_000ul).CopyTo(bytes, at);
        Assert.Contains("'second.weight'", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void HugeDimensionOverflowIsCaught()
    {
        var bytes = ValidFile();
        int at = IndexOf(bytes, "first.weight"u8) + "first.weight".Length + 4;
        BitConverter.GetBytes(1ul << 40).CopyTo(bytes, at);
        BitConverter.GetBytes(1ul << 40).CopyTo(bytes, at + 8);
        Assert.Contains("'first.weight'", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        string path = Path.Combine(_dir, "nope.gguf");
        var e = Assert.Throws<FileNotFoundException>(() => GgufFile.Open(path));
        Assert.Contains("nope.gguf", e.Message);
    }

    [Fact]
    public void DecoderWithMissingMetadataOrTensorsIsNamed()
    {
        string path = Write(ValidFile());
        var e = Assert.Throws<GgufFormatException>(() => DecoderModel.LoadGguf(path));
        Assert.Contains("model.gguf", e.Message);
        Assert.Contains("llama.embedding_length", e.Message);
    }

    private static int IndexOf(byte[] haystack, ReadOnlySpan<byte> needle) => haystack.AsSpan().IndexOf(needle);
}
