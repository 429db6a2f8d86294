using System.Text;
using LlavaNative.Model.Formats.Safetensors;
using Xunit;

namespace LlavaNative.Tests.HuggingFace;

/// <summary>
/// Truncated, corrupt and inconsistent safetensors files and shard indexes: each is a
/// <see cref="SafetensorsFormatException"/> whose message starts with the file name and names the tensor.
/// </summary>
public sealed class SafetensorsBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-safetensors-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private const string ValidHeader = """{"first.weight":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]},"second.bias":{"dtype":"F16","shape":[4],"data_offsets":[16,24]}}""";

    private string Write(string header, int dataBytes = 24, string name = "model.safetensors") =>
        Write(SafetensorsFileTests.RawFile(header, new byte[dataBytes]), name);

    private string Write(byte[] bytes, string name = "model.safetensors")
    {
        string path = Path.Combine(_dir, name);
        File.WriteAllBytes(path, bytes);
        return path;
    }

    private static SafetensorsFormatException Fails(string path)
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsFile.Open(path).Dispose());
        Assert.StartsWith(Path.GetFileName(path) + ": ", e.Message);
        return e;
    }

    [Fact]
    public void ValidBaselineOpens()
    {
        using var file = SafetensorsFile.Open(Write(ValidHeader));
        Assert.Equal(2, file.Tensors.Count);
    }

    [Fact]
    public void EveryTruncationIsAnError()
    {
        byte[] full = SafetensorsFileTests.RawFile(ValidHeader, new byte[24]);
        for (int length = 0; length < full.Length; length++)
        {
            string path = Write(full[..length], $"cut{length}.safetensors");
            var e = Fails(path);
            if (length >= 8 + Encoding.UTF8.GetByteCount(ValidHeader))
                Assert.Contains("truncated", e.Message); // data cut: names the tensor that runs past the end
        }
    }

    [Fact]
    public void TruncatedDataNamesTheTensor()
    {
        var e = Fails(Write(ValidHeader, dataBytes: 20));
        Assert.Contains("'second.bias'", e.Message);
        Assert.Contains("truncated", e.Message);
    }

    [Fact]
    public void AbsurdHeaderLength()
    {
        byte[] bytes = SafetensorsFileTests.RawFile(ValidHeader, new byte[24]);
        BitConverter.GetBytes(1ul << 40).CopyTo(bytes, 0);
        Assert.Contains("absurd", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void HeaderLengthPastTheEnd()
    {
        byte[] bytes = SafetensorsFileTests.RawFile(ValidHeader, new byte[24]);
        BitConverter.GetBytes((ulong)bytes.Length).CopyTo(bytes, 0);
        Assert.Contains("past the end", Fails(Write(bytes)).Message);
    }

    [Fact]
    public void BadHeaderJson()
    {
        Assert.Contains("not valid JSON", Fails(Write(ValidHeader[..^1] + " ", dataBytes: 24)).Message);
        Assert.Contains("not valid JSON", Fails(Write("{\"a\": {\"dtype\": F32}}", dataBytes: 0)).Message);
        Assert.Contains("expected an object", Fails(Write("[1, 2, 3]", dataBytes: 0)).Message);
        Assert.Contains("not padding", Fails(Write(ValidHeader + "x", dataBytes: 24)).Message);
    }

    [Fact]
    public void OverlappingOffsetsNameBothTensors()
    {
        string header = ValidHeader.Replace("[16,24]", "[12,20]");
        var e = Fails(Write(header));
        Assert.Contains("overlaps", e.Message);
        Assert.Contains("'first.weight'", e.Message);
        Assert.Contains("'second.bias'", e.Message);
    }

    [Fact]
    public void HolesAndTrailingBytesAreErrors()
    {
        Assert.Contains("belong to no tensor", Fails(Write(ValidHeader.Replace("[16,24]", "[18,26]"), dataBytes: 26)).Message);
        Assert.Contains("trailing", Fails(Write(ValidHeader, dataBytes: 30)).Message);
    }

    [Fact]
    public void OffsetsThatDoNotMatchDtypeTimesShape()
    {
        var e = Fails(Write(ValidHeader.Replace("\"shape\":[2,2]", "\"shape\":[2,3]")));
        Assert.Contains("'first.weight'", e.Message);
        Assert.Contains("24 bytes", e.Message);
        Assert.Contains("span 16 bytes", e.Message);
    }

    [Fact]
    public void UnknownDtypeListsTheSupportedOnes()
    {
        var e = Fails(Write(ValidHeader.Replace("\"F16\"", "\"Q4_K\"")));
        Assert.Contains("'second.bias'", e.Message);
        Assert.Contains("'Q4_K' (unknown)", e.Message);
        Assert.Contains("BF16", e.Message);
    }

    [Fact]
    public void MalformedTensorEntries()
    {
        Assert.Contains("'second.bias'", Fails(Write(ValidHeader.Replace("\"shape\":[4]", "\"shape\":[-4]"))).Message);
        Assert.Contains("'second.bias'", Fails(Write(ValidHeader.Replace("[16,24]", "[24,16]"))).Message);
        Assert.Contains("'second.bias'", Fails(Write(ValidHeader.Replace("\"data_offsets\":[16,24]", "\"data_offsets\":[16]"))).Message);
        Assert.Contains("'first.weight'", Fails(Write(ValidHeader.Replace("\"dtype\":\"F32\",", ""))).Message);
        Assert.Contains("overflows", Fails(Write(ValidHeader.Replace("[2,2]", "[4294967296,4294967296,4294967296]"))).Message);
    }

    [Fact]
    public void DuplicateTensorNames()
    {
        string header = ValidHeader[..^1] + ""","first.weight":{"dtype":"F32","shape":[0],"data_offsets":[24,24]}}""";
        var e = Fails(Write(header));
        Assert.Contains("'first.weight' appears twice", e.Message);
    }

    [Fact]
    public void MetadataMustMapStringsToStrings()
    {
        string header = ValidHeader[..^1] + ""","__metadata__":{"epoch":3}}""";
        Assert.Contains("'epoch'", Fails(Write(header)).Message);
    }

    [Fact]
    public void MissingFileNamesThePath()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SafetensorsFile.Open(Path.Combine(_dir, "nope.safetensors")));
        Assert.Contains("nope.safetensors", e.Message);
    }

    // ---- sharded checkpoints -----------------------------------------------------------------------------

    private void WriteIndex(string weightMapJson) =>
        File.WriteAllText(Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName), $$"""{"metadata":{"total_size":24},"weight_map":{{weightMapJson}}}""");

    private SafetensorsFormatException IndexFails()
    {
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(_dir).Dispose());
        Assert.StartsWith(SafetensorsCheckpoint.IndexFileName + ": ", e.Message);
        return e;
    }

    [Fact]
    public void IndexNamingAMissingShard()
    {
        Write(ValidHeader, name: "model-00001-of-00002.safetensors");
        WriteIndex("""{"first.weight":"model-00001-of-00002.safetensors","second.bias":"model-00002-of-00002.safetensors"}""");
        var e = IndexFails();
        Assert.Contains("'model-00002-of-00002.safetensors'", e.Message);
        Assert.Contains("'second.bias'", e.Message);
        Assert.Contains("missing", e.Message);
    }

    [Fact]
    public void IndexPuttingATensorInTheWrongShard()
    {
        Write(ValidHeader, name: "model-00001-of-00001.safetensors");
        WriteIndex("""{"first.weight":"model-00001-of-00001.safetensors","third.weight":"model-00001-of-00001.safetensors"}""");
        var e = IndexFails();
        Assert.Contains("'third.weight'", e.Message);
    }

    [Fact]
    public void MalformedIndexes()
    {
        Write(ValidHeader, name: "model-00001-of-00001.safetensors");
        File.WriteAllText(Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName), "{\"weight_map\": {");
        Assert.Contains("not valid JSON", IndexFails().Message);
        File.WriteAllText(Path.Combine(_dir, SafetensorsCheckpoint.IndexFileName), "{\"metadata\": {}}");
        Assert.Contains("weight_map", IndexFails().Message);
        WriteIndex("""{"first.weight":"../elsewhere/model.safetensors"}""");
        Assert.Contains("not a file name inside the checkpoint folder", IndexFails().Message);
        WriteIndex("""{"first.weight":3}""");
        Assert.Contains("'first.weight'", IndexFails().Message);
    }

    [Fact]
    public void ACorruptShardIsNamed()
    {
        Write(ValidHeader, dataBytes: 10, name: "model-00001-of-00001.safetensors");
        WriteIndex("""{"first.weight":"model-00001-of-00001.safetensors"}""");
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(_dir).Dispose());
        Assert.StartsWith("model-00001-of-00001.safetensors: ", e.Message);
    }

    [Fact]
    public void FolderWithSeveralFilesButNoIndex()
    {
        Write(ValidHeader, name: "a.safetensors");
        Write(ValidHeader, name: "b.safetensors");
        var e = Assert.Throws<SafetensorsFormatException>(() => SafetensorsCheckpoint.Open(_dir).Dispose());
        Assert.Contains("a.safetensors, b.safetensors", e.Message);
        Assert.Contains(SafetensorsCheckpoint.IndexFileName, e.Message);
    }

    [Fact]
    public void FolderWithoutWeights()
    {
        var e = Assert.Throws<FileNotFoundException>(() => SafetensorsCheckpoint.Open(_dir).Dispose());
        Assert.Contains(SafetensorsCheckpoint.SingleFileName, e.Message);
    }
}
