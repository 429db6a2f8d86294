using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Imaging;
using LlavaNative.TestSupport.Vision;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Imaging;

/// <summary>
/// <see cref="ImagePreprocessorConfig.FromHuggingFace(string, string?)"/> + <see cref="ImagePreprocessor"/> against
/// hf_preprocess_reference.py, which reads the same preprocessor_config.json / config.json itself and does what the
/// Hugging Face processors do with Pillow + numpy: normalized tensors within 1e-6 (Pillow's resampling is reproduced
/// exactly, so the uint8 images are identical and only float32 rounding could differ).
/// </summary>
public sealed class HuggingFacePreprocessingTests(ITestOutputHelper output) : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-hf-preprocess-").FullName;

    public void Dispose() => Directory.Delete(_dir, true);

    private static Image TestImage(int width, int height, int seed)
    {
        var r = new Random(seed);
        var px = new byte[width * height * 3];
        for (int y = 0; y < height; y++)
        for (int x = 0; x < width; x++)
        for (int c = 0; c < 3; c++)
            px[(y * width + x) * 3 + c] = x < width / 2 ? (byte)((x * 7 + y * 3 + c * 60) % 256) : (byte)r.Next(256);
        return new Image(width, height, 3, px);
    }

    public static TheoryData<string, int, int> Cases => new()
    {
        { "clip", 500, 375 },              // CLIPImageProcessor, shortest edge = crop
        { "clip-edge-larger", 375, 500 },  // shortest_edge 64, crop 56 (openai/clip-vit-base style 256 → 224)
        { "siglip", 640, 427 },            // SiglipImageProcessor stretch, mean/std 0.5
        { "original-pad", 300, 120 },      // original LLaVA image_aspect_ratio "pad" + the CLIP folder's processor
    };

    [Theory, MemberData(nameof(Cases))]
    public void MatchesPillowFollowingThePreprocessorConfig(string kind, int width, int height)
    {
        var spec = kind == "siglip" ? RandomVisionSpec.TinySigLip : RandomVisionSpec.TinyClip;
        var options = new LlavaFolderOptions { Layout = kind == "original-pad" ? LlavaFolderLayout.Original : LlavaFolderLayout.LlavaHfOld };
        var (folder, tower) = RandomLlavaHfFolder.Write(RandomVisionModel.Create(spec), Path.Combine(_dir, kind), options);
        if (kind == "clip-edge-larger")
        {
            string path = Path.Combine(folder, "preprocessor_config.json");
            File.WriteAllText(path, File.ReadAllText(path).Replace("\"shortest_edge\": 56", "\"shortest_edge\": 64"));
        }

        var image = TestImage(width, height, width + height);
        string input = Path.Combine(_dir, $"{kind}-in.npy"), expectedPath = Path.Combine(_dir, $"{kind}-pixels.npy");
        NpyFile.WriteUInt8(input, image.Pixels, height, width, 3);
        PreprocessingAgreementTests.RunPython("hf_preprocess_reference.py", input, folder, tower ?? "-", expectedPath);

        var config = ImagePreprocessorConfig.FromHuggingFace(folder, tower);
        var pixels = ImagePreprocessor.Process(image, config);
        var (expected, shape) = NpyFile.ReadFloat32(expectedPath);
        Assert.Equal([3, config.ImageSize, config.ImageSize], shape);
        double maxAbs = 0;
        for (int i = 0; i < pixels.Length; i++) maxAbs = Math.Max(maxAbs, Math.Abs(pixels[i] - expected[i]));
        output.WriteLine($"{kind} {width}x{height}: {config.Mode} {config.ShortestEdge?.ToString() ?? "-"} → {config.ImageSize}, max abs {maxAbs:E2}");
        Assert.True(maxAbs <= 1e-6, $"max abs {maxAbs:E3}");
    }
}
