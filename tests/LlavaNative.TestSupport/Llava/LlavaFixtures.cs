using System.Collections.Concurrent;
using LlavaNative.Model.Llava;
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

    private static readonly ConcurrentDictionary<string, Lazy<(string Folder, string? Tower)>> Checkpoints = new();

    /// <summary>The whole-checkpoint pairs <see cref="CheckpointFolder"/> writes.</summary>
    public static readonly string[] CheckpointPairs = ["llama+clip", "qwen2+siglip", "original", "original-im-start-end"];

    /// <summary>
    /// One random LLaVA checkpoint folder holding a decoder, a tokenizer, a vision tower and a projector (written once
    /// per run; the decoder is the GGUF <see cref="CheckpointText"/> names, so llama.cpp can be run on it):
    /// <list type="bullet">
    /// <item>"llama+clip": llava-hf old layout (<c>language_model.*</c>), <see cref="LlamaText"/> with its embedding padded
    /// to 32064 rows as llava-1.5-7b-hf, the llava-1.5 tokenizer.json (<c>&lt;image&gt;</c> = image_token_index 32000,
    /// <c>&lt;pad&gt;</c> 32001), CLIP 56 px (16 rows per image), CLIPImageProcessor;</item>
    /// <item>"qwen2+siglip": llava-hf new layout (<c>model.language_model.*</c>), <see cref="Qwen2Synthetic"/> (tied),
    /// a small byte-level tokenizer with <c>&lt;|endoftext|&gt;</c> and <c>&lt;image&gt;</c>, SigLIP 60 px, SiglipImageProcessor;</item>
    /// <item>"original": haotian-liu/LLaVA-1.5 (<c>model.*</c>, <c>model.mm_projector.{0,2}</c>, Llama fields at the
    /// top level, mm_use_im_start_end false), the plain Llama tokenizer (no image token), CLIP in a separate folder
    /// (the second value);</item>
    /// <item>"original-im-start-end": the same with mm_use_im_start_end true and LLaVA v1's linear projector; the
    /// embedding has 32003 rows (<c>&lt;im_patch&gt;</c>, <c>&lt;im_start&gt;</c>, <c>&lt;im_end&gt;</c> added to the tokenizer).</item>
    /// </list>
    /// </summary>
    public static (string Folder, string? VisionTower) CheckpointFolder(string pair) =>
        Checkpoints.GetOrAdd(pair, key => new Lazy<(string, string?)>(() => WriteCheckpoint(key))).Value;

    /// <summary>The random decoder GGUF the checkpoint <paramref name="pair"/>'s text model comes from.</summary>
    public static RandomModelSpec CheckpointText(string pair) => pair.StartsWith("qwen2", StringComparison.Ordinal) ? Qwen2Synthetic : LlamaText;

    /// <summary>image_token_index of the llava-hf pairs.</summary>
    public static int CheckpointImageToken(string pair) => pair switch
    {
        "llama+clip" => 32000,
        "qwen2+siglip" => HuggingFace.TokenizerJsonFixtures.SmallByteLevel(SmallTokenizerMerges).Vocab.Count + 1,
        _ => throw new ArgumentOutOfRangeException(nameof(pair), pair, "original LLaVA checkpoints have no image token id"),
    };

    private const int SmallTokenizerMerges = 200;

    private static (string, string?) WriteCheckpoint(string pair)
    {
        string root = Path.Combine(Folder.Value, "checkpoint-" + pair.Replace('+', '-'));
        string text = RandomModels.GetPath(CheckpointText(pair));
        var clip = RandomVisionModel.Create(RandomVisionSpec.TinyClip with { TextHiddenSize = 64 });
        switch (pair)
        {
            case "llama+clip":
                return RandomLlavaHfFolder.Write(clip, root, new LlavaFolderOptions
                {
                    Layout = LlavaFolderLayout.LlavaHfOld, TextGguf = text, VocabularyRows = 32064, ImageTokenIndex = 32000,
                    TokenizerFolder = HuggingFace.TokenizerJsonFixtures.Folder(HuggingFace.TokenizerJsonKind.LlavaSentencePiece),
                });
            case "qwen2+siglip":
            {
                string tokenizer = Path.Combine(root, "tokenizer");
                HuggingFace.TokenizerJsonFixtures.WriteSmallByteLevel(tokenizer, SmallTokenizerMerges, "qwen2", "<image>");
                var siglip = RandomVisionModel.Create(RandomVisionSpec.TinySigLip with { TextHiddenSize = 64 });
                return RandomLlavaHfFolder.Write(siglip, root, new LlavaFolderOptions
                {
                    Layout = LlavaFolderLayout.LlavaHfNew, TextGguf = text, ImageTokenIndex = CheckpointImageToken(pair), TokenizerFolder = tokenizer,
                });
            }
            case "original":
                return RandomLlavaHfFolder.Write(clip, root, new LlavaFolderOptions
                {
                    Layout = LlavaFolderLayout.Original, TextGguf = text,
                    TokenizerFolder = HuggingFace.TokenizerJsonFixtures.Folder(HuggingFace.TokenizerJsonKind.LlamaSentencePiece),
                });
            case "original-im-start-end":
            {
                var linear = RandomVisionModel.Create(RandomVisionSpec.TinyClip with { TextHiddenSize = 64, Projector = ProjectorKind.Linear });
                return RandomLlavaHfFolder.Write(linear, root, new LlavaFolderOptions
                {
                    Layout = LlavaFolderLayout.Original, TextGguf = text, VocabularyRows = 32003, UseImStartEnd = true, ImageAspectRatio = null,
                    TokenizerFolder = HuggingFace.TokenizerJsonFixtures.Folder(HuggingFace.TokenizerJsonKind.LlavaV1SentencePiece),
                });
            }
            default:
                throw new ArgumentOutOfRangeException(nameof(pair), pair, "expected one of " + string.Join(", ", CheckpointPairs));
        }
    }

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
