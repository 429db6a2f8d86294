using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Formats.Gguf;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport.Vision;
using Xunit;

namespace LlavaNative.Tests.Vision;

/// <summary>
/// Broken mmproj files: missing tensors, wrong shapes, absurd or inconsistent sizes. Each must be a
/// <see cref="GgufFormatException"/> that names the file and the offending tensor or key — never a crash, a
/// silent wrong answer or a huge allocation.
/// </summary>
public sealed class MmprojBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llavanative-mmproj-bad-").FullName;
    private static readonly RandomVisionModel Clip = RandomVisionModel.Create(RandomVisionSpec.TinyClip);
    private static readonly RandomVisionModel SigLip = RandomVisionModel.Create(RandomVisionSpec.TinySigLip);

    public void Dispose()
    {
        try { Directory.Delete(_dir, recursive: true); } catch (IOException) { }
    }

    private string Write(RandomVisionModel model, MmprojLayout layout, Func<MmprojTensor, MmprojTensor?>? tensors = null,
        Action<GgufWriter>? metadata = null, IEnumerable<MmprojTensor>? extra = null)
    {
        string path = Path.Combine(_dir, $"mmproj-{Guid.NewGuid():N}.gguf");
        model.WriteGguf(path, layout, tensors, metadata, extra);
        return path;
    }

    private static GgufFormatException LoadFails(string path, params string[] mentions)
    {
        var e = Assert.Throws<GgufFormatException>(() => ImageEncoder.LoadGguf(path).Dispose());
        Assert.Contains(Path.GetFileName(path), e.Message);
        foreach (string m in mentions) Assert.Contains(m, e.Message);
        return e;
    }

    private static Func<MmprojTensor, MmprojTensor?> Drop(string name) => t => t.Name == name ? null : t;

    private static Func<MmprojTensor, MmprojTensor?> Reshape(string name, params long[] dims) =>
        t => t.Name != name ? t : t with { Dimensions = dims, Data = new byte[GgufWriter.TensorByteSize(t.Type, dims)] };

    [Fact]
    public void IntactFilesLoad()
    {
        using (var e = ImageEncoder.LoadGguf(Write(Clip, MmprojLayout.Legacy))) Assert.Equal(16, e.ImageTokenCount);
        using (var e = ImageEncoder.LoadGguf(Write(SigLip, MmprojLayout.AllBlocks))) Assert.Equal(16, e.ImageTokenCount);
    }

    [Theory]
    [InlineData("v.patch_embd.weight")]
    [InlineData("v.position_embd.weight")]
    [InlineData("v.pre_ln.weight")]
    [InlineData("v.pre_ln.bias")]
    [InlineData("v.blk.0.ln1.weight")]
    [InlineData("v.blk.1.attn_k.bias")]
    [InlineData("v.blk.1.attn_out.weight")]
    [InlineData("v.blk.0.ffn_down.weight")]
    [InlineData("v.blk.1.ffn_up.bias")]
    [InlineData("v.blk.1.ln2.bias")]
    [InlineData("mm.0.weight")]
    public void MissingClipTensorIsNamed(string name) => LoadFails(Write(Clip, MmprojLayout.Legacy, Drop(name)), $"'{name}'");

    [Theory]
    [InlineData("v.patch_embd.bias")]
    [InlineData("v.blk.1.attn_q.weight")]
    [InlineData("v.blk.0.ffn_down.bias")]
    public void MissingSigLipTensorIsNamed(string name)
    {
        // SigLIP's patch bias is optional in the format (HasPatchBias follows the file), so dropping it must still load.
        if (name == "v.patch_embd.bias")
        {
            using var e = ImageEncoder.LoadGguf(Write(SigLip, MmprojLayout.AllBlocks, Drop(name)));
            Assert.False(e.VisionConfig.HasPatchBias);
            return;
        }
        LoadFails(Write(SigLip, MmprojLayout.AllBlocks, Drop(name)), $"'{name}'");
    }

    [Fact]
    public void BlockCountBeyondTheStoredBlocksNamesTheFirstMissingTensor() =>
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetUInt32("clip.vision.block_count", 3)), "'v.blk.2.");

    [Theory]
    [InlineData("v.blk.0.attn_q.weight", new long[] { 64, 32 }, "[64, 32]", "[64, 64]")]
    [InlineData("v.blk.1.attn_v.bias", new long[] { 63 }, "[63]", "[64]")]
    [InlineData("v.blk.0.ln1.weight", new long[] { 64, 2 }, "[64, 2]", "[64]")]
    [InlineData("v.position_embd.weight", new long[] { 64, 16 }, "[64, 16]", "[64, 17]")]
    [InlineData("v.patch_embd.weight", new long[] { 14, 14, 1, 64 }, "[14, 14, 1, 64]", "[14, 14, 3, 64]")]
    [InlineData("v.class_embd", new long[] { 32 }, "[32]", "[64]")]
    [InlineData("v.blk.1.ffn_down.weight", new long[] { 64, 100 }, "[64, 100]", "[128, 64]")]
    [InlineData("mm.2.weight", new long[] { 64, 96 }, "[64, 96]", "[96, n]")]
    [InlineData("mm.0.weight", new long[] { 32, 96 }, "[32, 96]", "[64, n]")]
    [InlineData("mm.0.bias", new long[] { 95 }, "[95]", "[96]")]
    public void WrongShapeIsNamedWithTheExpectedShape(string name, long[] dims, string actual, string expected) =>
        LoadFails(Write(Clip, MmprojLayout.Legacy, Reshape(name, dims)), $"'{name}'", actual, expected);

    [Theory]
    [InlineData("clip.vision.image_size", 1_000_000u, "image size")]
    [InlineData("clip.vision.image_size", 0u, "image size")]
    [InlineData("clip.vision.patch_size", 0u, "patch size")]
    [InlineData("clip.vision.patch_size", 57u, "patch size")]
    [InlineData("clip.vision.embedding_length", 1u << 30, "hidden size")]
    [InlineData("clip.vision.attention.head_count", 0u, "head count")]
    [InlineData("clip.vision.attention.head_count", 5u, "head count")]
    [InlineData("clip.vision.feed_forward_length", 1u << 30, "feed-forward")]
    [InlineData("clip.vision.block_count", 100_000u, "block count")]
    public void AbsurdSizesAreRejectedBeforeAllocating(string key, uint value, string mentions) =>
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetUInt32(key, value)), mentions);

    [Fact]
    public void PatchGridTooLargeIsRejected() =>
        // 4096 px in 1 px patches would be 16M positions.
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w =>
        {
            w.SetUInt32("clip.vision.image_size", 4096);
            w.SetUInt32("clip.vision.patch_size", 1);
        }), "patches");

    [Theory]
    [InlineData(new[] { 9 }, "feature_layer contains 9")]
    [InlineData(new[] { -1 }, "feature_layer contains -1")]
    [InlineData(new[] { 1, 2 }, "several layers")]
    [InlineData(new int[0], "feature_layer is empty")]
    public void BadFeatureLayerIsNamed(int[] layers, string mentions) =>
        LoadFails(Write(Clip, MmprojLayout.ExplicitFeatureLayer, metadata: w => w.SetArray("clip.vision.feature_layer", layers)),
            "clip.vision.feature_layer", mentions);

    [Fact]
    public void MissingRequiredKeysAreNamed()
    {
        foreach (string key in new[] { "clip.vision.image_size", "clip.vision.embedding_length", "clip.vision.block_count", "clip.vision.image_mean" })
            LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.Remove(key)), $"'{key}'");
    }

    [Fact]
    public void InconsistentMetadataIsExplained()
    {
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetString("general.architecture", "llama")), "general.architecture", "'llama'");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetString("clip.projector_type", "ldp")), "projector type 'ldp'");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetBool("clip.use_silu", true)), "clip.use_silu");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetArray("clip.vision.image_mean", new[] { 0.5f, 0.5f })), "mean");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetArray("clip.vision.image_std", new[] { 0.5f, 0f, 0.5f })), "std");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetFloat32("clip.vision.attention.layer_norm_epsilon", -1f)), "epsilon");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetUInt32("clip.vision.attention.head_count_kv", 2)), "head_count_kv");
        LoadFails(Write(Clip, MmprojLayout.Legacy, metadata: w => w.SetBool("clip.has_vision_encoder", false)), "has_vision_encoder");
    }

    [Fact]
    public void TensorsThatMatchNoSupportedTowerAreExplained()
    {
        // A pre-layernorm without a class token is neither CLIP nor SigLIP.
        var preLn = Clip.GgufTensors(MmprojLayout.Legacy).Single(t => t.Name == "v.pre_ln.weight");
        LoadFails(Write(SigLip, MmprojLayout.AllBlocks, extra: [preLn]), "'v.pre_ln.weight'", "'v.class_embd'");
        // Yi-VL's normalized projector.
        var norm = new MmprojTensor("mm.3.weight", TensorType.F32, [96], new byte[96 * 4]);
        LoadFails(Write(Clip, MmprojLayout.Legacy, extra: [norm]), "'mm.3.weight'");
    }

    [Fact]
    public void ActivationFormatAsWeightTypeIsRejected()
    {
        // Q8_K is an activation encoding; a weight stored in it has no dot-product kernel.
        long[] dims = [256, 64];
        LoadFails(Write(Clip, MmprojLayout.Legacy, t => t.Name != "v.blk.0.attn_q.weight" ? t
                : t with { Type = TensorType.Q8_K, Dimensions = [256, 64], Data = new byte[GgufWriter.TensorByteSize(TensorType.Q8_K, dims)] }),
            "'v.blk.0.attn_q.weight'", "activation format");
    }
}
