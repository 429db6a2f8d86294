using System.Diagnostics;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Imaging;
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
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new(["--mmproj"], "FILE", "vision tower + projector GGUF (llama.cpp mmproj layout)"),
        new(["-m", "--model"], "FILE", "text model (accepted for symmetry with run; the embeddings need only --mmproj)"),
        new(["--image"], "FILE", "image file (PNG, JPEG, GIF first frame, BMP, PPM/PGM)"),
        new(["--out"], "FILE", "output .npy, float32 [n_image_tokens, n_embd]"),
        new(["--pixels-out"], "FILE", "also write the preprocessed float32 tensor [3, H, W]"),
        new(["--image-mode"], "MODE", "crop (HF CLIP processor), pad (original LLaVA, default for CLIP), resize-pad (llama.cpp), stretch (SigLIP default)"),
        Threads, Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string mmproj = args.Require("--mmproj", "the vision tower GGUF");
        string imagePath = args.Require("--image", "the image file");
        string output = args.Require("--out", "the .npy file to write");
        int threads = args.GetInt("-t", ComputeThreadPool.DefaultThreadCount(), 1, 1024);

        using var pool = new ComputeThreadPool(threads);
        using var encoder = ImageEncoder.LoadGguf(mmproj, pool);
        var vc = encoder.VisionConfig;
        var mode = args.Get("--image-mode") switch
        {
            null => vc.Kind == VisionTowerKind.SigLip ? ImageFitMode.Stretch : ImageFitMode.Pad,
            "crop" => ImageFitMode.Crop,
            "pad" => ImageFitMode.Pad,
            "resize-pad" => ImageFitMode.ResizeThenPad,
            "stretch" => ImageFitMode.Stretch,
            var other => throw new UsageException($"--image-mode '{other}' is not one of crop, pad, resize-pad, stretch"),
        };
        var config = new ImagePreprocessorConfig
        {
            ImageSize = vc.ImageSize, Mode = mode, Mean = vc.ImageMean.ToArray(), Std = vc.ImageStd.ToArray(),
        };
        var image = ImageDecoder.Decode(imagePath).First;
        var pixels = ImagePreprocessor.Process(image, config);
        if (args.Get("--pixels-out") is { } pixelsOut) NpyFile.WriteFloat32(pixelsOut, pixels, 3, vc.ImageSize, vc.ImageSize);

        var clock = Stopwatch.StartNew();
        var embeddings = encoder.EncodeAndProject(pixels);
        clock.Stop();
        NpyFile.WriteFloat32(output, embeddings, encoder.ImageTokenCount, encoder.EmbeddingLength);
        Console.Error.WriteLine($"wrote embeddings [{encoder.ImageTokenCount}, {encoder.EmbeddingLength}] to {output} (encode {clock.Elapsed.TotalMilliseconds:F0} ms, {mode} preprocessing)");
        return 0;
    }
}
