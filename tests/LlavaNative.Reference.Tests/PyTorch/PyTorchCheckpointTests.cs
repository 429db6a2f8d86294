using System.Text.Json;
using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model;
using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.Conversion;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Formats.PyTorch;
using LlavaNative.Model.Formats.Safetensors;
using LlavaNative.Model.Language;
using LlavaNative.Reference.Tests.Models;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.PyTorch;

/// <summary>The checkpoints torch_save_cases.py writes once per test class (one PyTorch start for each mode).</summary>
public sealed class TorchSavedFiles : IDisposable
{
    public string Root { get; } = Directory.CreateTempSubdirectory("llavanative-torch-save-").FullName;
    public string Tensors => Path.Combine(Root, "tensors");
    public string Malicious => Path.Combine(Root, "malicious");

    public TorchSavedFiles()
    {
        TorchSave.Run("tensors", Tensors);
        TorchSave.Run("malicious", Malicious);
    }

    public void Dispose()
    {
        try { Directory.Delete(Root, recursive: true); }
        catch (IOException) { }
    }
}

/// <summary>
/// PyTorch <c>.bin</c> checkpoints against PyTorch itself: files written by <c>torch.save</c> (F32/F16/BF16, int64
/// buffers, shared storages, offset views, parameters, protocols 2 and 4, sharded) must give the bytes, dtypes and
/// shapes PyTorch reports; a Hugging Face folder whose safetensors weights PyTorch re-saved as pytorch_model.bin must
/// give bit-identical logits; pickles that run code under <c>torch.load</c> are refused and their payload never runs.
/// </summary>
public sealed unsafe class PyTorchCheckpointTests(TorchSavedFiles files, ITestOutputHelper output) : IClassFixture<TorchSavedFiles>
{
    public static TheoryData<string> ManifestFiles => new() { "module.bin", "shared.bin", "shared-protocol4.bin", "sharded/pytorch_model.bin.index.json" };

    [Theory, MemberData(nameof(ManifestFiles))]
    public void TensorsAreBitIdenticalToWhatPyTorchSaved(string file)
    {
        using var manifest = JsonDocument.Parse(File.ReadAllText(Path.Combine(files.Tensors, "manifest.json")));
        var expected = manifest.RootElement.GetProperty(file);
        using var checkpoint = PyTorchCheckpoint.Open(Path.Combine(files.Tensors, file));
        Assert.Equal(expected.EnumerateObject().Select(p => p.Name).Order(), checkpoint.TensorNames.Order());
        foreach (var entry in expected.EnumerateObject())
        {
            Assert.True(checkpoint.TryGetTensor(entry.Name, out TensorView t), entry.Name);
            Assert.Equal(entry.Value.GetProperty("dtype").GetString(), t.TypeName);
            Assert.Equal(entry.Value.GetProperty("shape").EnumerateArray().Select(d => d.GetInt64()), t.Shape);
            byte[] bytes = Convert.FromHexString(entry.Value.GetProperty("hex").GetString()!);
            Assert.Equal(bytes.Length, t.ByteSize);
            Assert.True(bytes.AsSpan().SequenceEqual(new ReadOnlySpan<byte>(t.Data, (int)t.ByteSize)), $"{file}: bytes of '{entry.Name}' differ");
            Assert.Equal(t.TypeName switch { "F32" => TensorType.F32, "F16" => TensorType.F16, "BF16" => TensorType.BF16, _ => (TensorType?)null }, t.Type);
        }
        output.WriteLine($"{file}: {checkpoint.TensorNames.Count} tensors bit-identical");
    }

    [Fact]
    public void ViewsOfOneStoragePointIntoTheSameMappedBytes()
    {
        using var checkpoint = PyTorchCheckpoint.Open(Path.Combine(files.Tensors, "shared.bin"));
        TensorView Get(string name) => checkpoint.TryGetTensor(name, out TensorView t) ? t : throw new KeyNotFoundException(name);
        Assert.True(Get("window").Data == Get("base").Data + 10 * sizeof(float));
        Assert.True(Get("tail").Data == Get("base").Data + 100 * sizeof(float));
        Assert.True(Get("rows").Data == Get("big").Data + 2 * 6 * sizeof(ushort));
        Assert.False(checkpoint.TryGetTensor("not_a_tensor", out TensorView _));
    }

    [Fact]
    public void AStridedViewIsRefusedWithAClearError()
    {
        string path = Path.Combine(files.Tensors, "strided.bin");
        var e = Assert.Throws<PyTorchFormatException>(() => PyTorchCheckpoint.Open(path));
        Assert.Contains("strided.bin", e.Message);
        Assert.Contains("tensor 't' of shape [6, 4] is not contiguous (strides [1, 6])", e.Message);
    }

    [Fact]
    public void TheLegacyFormatIsRefusedWithAClearError()
    {
        var e = Assert.Throws<PyTorchFormatException>(() => PyTorchCheckpoint.Open(Path.Combine(files.Tensors, "legacy.bin")));
        Assert.Contains("legacy.bin", e.Message);
        Assert.Contains("legacy (pre-1.6", e.Message);
    }

    [Theory]
    [InlineData("os-system.bin", "posix.system")]        // os.system pickles as posix.system on Linux
    [InlineData("os-system-protocol4.bin", "posix.system")] // STACK_GLOBAL instead of GLOBAL
    [InlineData("builtins-eval.bin", "__builtin__.eval")]   // protocol 2 writes Python 2 module names
    [InlineData("custom-class.bin", "__main__.CustomObject")]
    public void PicklesThatRunCodeAreRefusedAndNeverRun(string file, string global)
    {
        string path = Path.Combine(files.Malicious, file);
        var e = Assert.Throws<PyTorchFormatException>(() => PyTorchCheckpoint.Open(path));
        output.WriteLine(e.Message);
        Assert.Contains(file, e.Message);
        Assert.Contains($"refusing global '{global}'", e.Message);
        Assert.False(File.Exists(path + ".marker"), "the payload ran");

        // Through the model loader too: a folder holding only this file fails with the same error.
        string folder = Path.Combine(files.Root, "folder-" + file);
        Directory.CreateDirectory(folder);
        File.Copy(path, Path.Combine(folder, PyTorchCheckpoint.SingleFileName), overwrite: true);
        File.WriteAllText(Path.Combine(folder, "config.json"), """{"model_type": "llama", "hidden_size": 8, "num_attention_heads": 2, "intermediate_size": 12, "vocab_size": 10, "num_hidden_layers": 1}""");
        var viaLoader = Assert.Throws<PyTorchFormatException>(() => ModelLoader.Load(folder));
        Assert.Contains($"refusing global '{global}'", viaLoader.Message);
        Assert.False(File.Exists(path + ".marker"), "the payload ran");
    }

    public static TheoryData<RandomModelArchitecture, TensorType, int> ModelCases => new()
    {
        { RandomModelArchitecture.Llama, TensorType.F32, 1 },
        { RandomModelArchitecture.Qwen2, TensorType.F32, 2 },
        { RandomModelArchitecture.Llama, TensorType.F16, 2 },
    };

    /// <summary>
    /// The safetensors folder is already checked against llama.cpp (HuggingFaceDecoderAgreementTests); the same
    /// weights re-saved by PyTorch as pytorch_model.bin must bind to the same values, so logits are identical.
    /// </summary>
    [Theory, MemberData(nameof(ModelCases))]
    public void PytorchBinFolderGivesTheLogitsOfTheSafetensorsFolder(RandomModelArchitecture architecture, TensorType weightType, int shards)
    {
        string gguf = RandomModels.GetPath(RandomModelSpec.Tiny(architecture, RandomModelVocabulary.Synthetic) with { WeightType = weightType });
        string name = $"{architecture}-{weightType}-{shards}";
        string safetensors = Path.Combine(files.Root, name + "-safetensors");
        string bin = Path.Combine(files.Root, name + "-bin");
        GgufToHuggingFace.Export(gguf, safetensors, new HfExportOptions { Shards = shards });
        TorchSave.Run("model", safetensors, bin, shards.ToString());
        Assert.Equal(shards > 1, File.Exists(Path.Combine(bin, PyTorchCheckpoint.IndexFileName)));
        Assert.False(HuggingFaceCheckpoint.HasSafetensors(bin));

        using (var st = HuggingFaceCheckpoint.Open(safetensors))
        using (var pt = HuggingFaceCheckpoint.Open(bin))
        {
            Assert.IsType<PyTorchCheckpoint>(pt);
            Assert.Equal(st.TensorNames.Order(), pt.TensorNames.Order());
            foreach (string tensor in st.TensorNames)
            {
                st.TryGetTensor(tensor, out TensorView a);
                pt.TryGetTensor(tensor, out TensorView b);
                Assert.Equal(a.TypeName, b.TypeName);
                Assert.Equal(a.Shape, b.Shape);
                Assert.True(new ReadOnlySpan<byte>(a.Data, (int)a.ByteSize).SequenceEqual(new ReadOnlySpan<byte>(b.Data, (int)b.ByteSize)), tensor);
            }
        }

        using var fromSafetensors = ModelLoader.Load(safetensors);
        using var fromBin = ModelLoader.Load(bin);
        Assert.Equal(fromSafetensors.Config, fromBin.Config);
        Assert.Equal(weightType, fromBin.Weights.Layers[0].Query.Type);
        int[] tokens = DecoderAgreementTests.SampleTokens(fromBin.Config.VocabSize, 24, seed: 11);
        float[] expected = Logits(fromSafetensors, tokens);
        Assert.Equal(expected, Logits(fromBin, tokens));
        if (shards == 1)
        {
            // The .bin file given directly opens its folder; a GGUF named .bin (old llama.cpp habit) stays GGUF.
            using var direct = ModelLoader.Load(Path.Combine(bin, PyTorchCheckpoint.SingleFileName));
            Assert.Equal(expected, Logits(direct, tokens));
            string ggufNamedBin = Path.Combine(files.Root, name + "-ggml-model.bin");
            File.Copy(gguf, ggufNamedBin, overwrite: true);
            using var fromGguf = ModelLoader.Load(ggufNamedBin);
            Assert.Equal(RopeMode.Normal, fromGguf.Config.RopeMode); // llama GGUF, not the HF layout
        }

        // `llava convert` reads the .bin folder too: the GGUF is byte for byte the one converted from safetensors.
        string fromSafetensorsGguf = Path.Combine(files.Root, name + "-from-safetensors.gguf");
        string fromBinGguf = Path.Combine(files.Root, name + "-from-bin.gguf");
        TokenizerJsonFixtures.WriteSmallByteLevel(safetensors, 200); // a GGUF needs a tokenizer; the same one in both folders
        TokenizerJsonFixtures.WriteSmallByteLevel(bin, 200);
        HuggingFaceToGguf.Convert(safetensors, fromSafetensorsGguf, GgufOutputType.F16, name: "same");
        HuggingFaceToGguf.Convert(bin, fromBinGguf, GgufOutputType.F16, name: "same");
        Assert.True(File.ReadAllBytes(fromSafetensorsGguf).AsSpan().SequenceEqual(File.ReadAllBytes(fromBinGguf)));

        // Both kinds in one folder: safetensors wins, as in transformers.
        File.Copy(Path.Combine(bin, shards > 1 ? PyTorchCheckpoint.IndexFileName : PyTorchCheckpoint.SingleFileName),
            Path.Combine(safetensors, shards > 1 ? PyTorchCheckpoint.IndexFileName : PyTorchCheckpoint.SingleFileName));
        using var both = HuggingFaceCheckpoint.Open(safetensors);
        Assert.IsType<SafetensorsCheckpoint>(both);
    }

    private static float[] Logits(DecoderModel model, int[] tokens)
    {
        using var state = model.CreateState(tokens.Length);
        var logits = new float[tokens.Length * model.Config.VocabSize];
        model.Forward(state, tokens, LogitsMode.All, logits);
        return logits;
    }
}
