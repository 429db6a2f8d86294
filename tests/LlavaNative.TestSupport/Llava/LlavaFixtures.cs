using System.Collections.Concurrent;
using LlavaNative.TestSupport.Imaging;
using LlavaNative.TestSupport.Vision;

namespace LlavaNative.TestSupport.Llava;

/// <summary>
/// Tiny LLaVA pairs for the end-to-end tests: a random decoder GGUF (<see cref="RandomModels"/>) and a random mmproj
/// GGUF (<see cref="RandomVisionModel"/>) whose projector output matches the decoder's width; small PNG images.
/// Files are written once per test run into a temp folder removed at exit.
/// </summary>
public static class LlavaFixtures
{
    private static readonly ConcurrentDictionary<(RandomVisionSpec, MmprojLayout), Lazy<string>> Mmprojs = new();
    private static readonly Lazy<string> Folder = new(() =>
    {
        string dir = Path.Combine(Path.GetTempPath(), $"llavanative-llava-{Environment.ProcessId}-{Guid.NewGuid():N}");
        Directory.CreateDirectory(dir);
        AppDomain.CurrentDomain.ProcessExit += (_, _) => { try { Directory.Delete(dir, true); } catch (IOException) { } };
        return dir;
    });

    /// <summary>A temp folder for a test's own files (removed at exit).</summary>
    public static string TempFolder => Folder.Value;

    /// <summary>Tiny llama (dim 64) with the real LLaMA SentencePiece vocabulary (needs the llama.cpp reference's vocabulary file).</summary>
    public static RandomModelSpec LlamaText => RandomModelSpec.Tiny(RandomModelArchitecture.Llama);

    /// <summary>Tiny llama with the synthetic 512-token vocabulary (no reference needed).</summary>
    public static RandomModelSpec LlamaSynthetic => RandomModelSpec.Tiny(RandomModelArchitecture.Llama, RandomModelVocabulary.Synthetic);

    /// <summary>Tiny qwen2 with the synthetic vocabulary.</summary>
    public static RandomModelSpec Qwen2Synthetic => RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2, RandomModelVocabulary.Synthetic);

    /// <summary>CLIP 56 px / patch 14 (16 image rows), legacy mmproj layout, projector output = <paramref name="textDim"/>.</summary>
    public static string ClipMmproj(int textDim = 64) => Mmproj(RandomVisionSpec.TinyClip with { TextHiddenSize = textDim }, MmprojLayout.Legacy);

    /// <summary>SigLIP 60 px / patch 14 (16 image rows), all blocks, projector output = <paramref name="textDim"/>.</summary>
    public static string SigLipMmproj(int textDim = 64) => Mmproj(RandomVisionSpec.TinySigLip with { TextHiddenSize = textDim }, MmprojLayout.AllBlocks);

    public static string Mmproj(RandomVisionSpec spec, MmprojLayout layout) =>
        Mmprojs.GetOrAdd((spec, layout), key => new Lazy<string>(() =>
        {
            string path = Path.Combine(Folder.Value, $"mmproj-{key.Item1.Kind}-{key.Item1.TextHiddenSize}-{key.Item2}-{key.Item1.Seed}.gguf");
            RandomVisionModel.Create(key.Item1).WriteGguf(path, key.Item2);
            return path;
        })).Value;

    /// <summary>An RGB PNG of random pixels, <paramref name="width"/>×<paramref name="height"/>, from <paramref name="seed"/>.</summary>
    public static byte[] RandomPng(int seed, int width = 40, int height = 30)
    {
        var rng = new Random(seed);
        var samples = new byte[width * height * 3];
        rng.NextBytes(samples);
        return TestPng.Encode8(width, height, 2, samples);
    }

    /// <summary>Writes <see cref="RandomPng"/> to a temp file and returns its path.</summary>
    public static string RandomPngFile(int seed, int width = 40, int height = 30)
    {
        string path = Path.Combine(Folder.Value, $"image-{seed}-{width}x{height}.png");
        lock (Mmprojs)
            if (!File.Exists(path)) File.WriteAllBytes(path, RandomPng(seed, width, height));
        return path;
    }
}
