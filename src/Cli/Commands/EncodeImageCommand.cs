using System.Diagnostics;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Imaging;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava encode-image</c>: image → projected embeddings, as .npy (to compare with other tools).</summary>
public sealed class EncodeImageCommand : Command
{
    public override string Name => "encode-image";
    public override string Summary => "encode an image with the vision tower + projector and save the embeddings (.npy)";
    public override string[] Examples =>
    [
        "llava encode-image --mmproj mmproj-model-f16.gguf --image cat.jpg --out feats.npy",
        "llava encode-image --mmproj mmproj.gguf --image cat.jpg --out feats.npy --pixels-out pixels.npy --image-mode crop",
        "llava encode-image -m llava-1.5-7b-hf/ --image cat.jpg --out feats.npy",
        "llava encode-image -m llava-v1.5-7b/ --vision-tower clip-vit-large-patch14-336/ --image cat.jpg --out feats.npy",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new(["--mmproj"], "FILE", "vision tower + projector GGUF (llama.cpp mmproj layout)"),
        new(["-m", "--model"], "DIR", "Hugging Face LLaVA folder (llava-hf, or original LLaVA with --vision-tower) instead of --mmproj; a GGUF text model here is ignored"),
        new(["--vision-tower"], "DIR", "CLIP checkpoint folder for an original LLaVA folder (its mm_vision_tower)"),
        new(["--image"], "FILE", "image file (PNG, JPEG, GIF first frame, BMP, PPM/PGM)"),
        new(["--out"], "FILE", "output .npy, float32 [n_image_tokens, n_embd]"),
        new(["--pixels-out"], "FILE", "also write the preprocessed float32 tensor [3, H, W]"),
        new(["--image-mode"], "MODE", "crop (HF CLIP processor), pad (original LLaVA, default for CLIP GGUF), resize-pad (llama.cpp), stretch (SigLIP default); " +
                                       "default for -m: the folder's preprocessor_config.json"),
        Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string? mmproj = args.Get("--mmproj");
        string? model = args.Get("-m");
        string? visionTower = args.Get("--vision-tower");
        string imagePath = args.Require("--image", "the image file");
        string output = args.Require("--out", "the .npy file to write");
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);
        bool huggingFace = mmproj is null && model is not null && Directory.Exists(model);
        if (mmproj is null && !huggingFace)
            throw new UsageException(model is null
                ? "give the vision tower: --mmproj FILE (GGUF) or -m DIR (Hugging Face LLaVA folder)"
                : $"-m {model} is not a folder: give --mmproj FILE for a GGUF model, or -m DIR for a Hugging Face LLaVA folder");
        if (visionTower is not null && !huggingFace)
            throw new UsageException("--vision-tower goes with -m DIR (an original LLaVA folder), not with --mmproj");

        using var pool = new ComputeThreadPool(threads);
        using var encoder = huggingFace ? ImageEncoder.LoadHuggingFace(model!, pool, visionTower) : ImageEncoder.LoadGguf(mmproj!, pool);
        var config = huggingFace ? ImagePreprocessorConfig.FromHuggingFace(model!, visionTower) : LlavaModel.DefaultPreprocessing(encoder.VisionConfig);
        if (ParseImageMode(args.Get("--image-mode")) is { } mode) config = config with { Mode = mode };
        var image = ImageDecoder.Decode(imagePath).First;
        var pixels = ImagePreprocessor.Process(image, config);
        if (args.Get("--pixels-out") is { } pixelsOut) NpyFile.WriteFloat32(pixelsOut, pixels, 3, config.ImageSize, config.ImageSize);

        var clock = Stopwatch.StartNew();
        var embeddings = encoder.EncodeAndProject(pixels);
        clock.Stop();
        NpyFile.WriteFloat32(output, embeddings, encoder.ImageTokenCount, encoder.EmbeddingLength);
        Console.Error.WriteLine($"wrote embeddings [{encoder.ImageTokenCount}, {encoder.EmbeddingLength}] to {output} (encode {clock.Elapsed.TotalMilliseconds:F0} ms, {config.Mode} preprocessing)");
        return 0;
    }
}
