using LlavaNative.Model.Formats.Npy;
using LlavaNative.Model.Imaging;

namespace LlavaNative.Cli.Commands;

/// <summary><c>llava image-info</c>: what the engine sees in an image file.</summary>
public sealed class ImageInfoCommand : Command
{
    public override string Name => "image-info";
    public override string Summary => "decode an image and print its format, size, frames and orientation";
    public override string[] Examples =>
    [
        "llava image-info --image photo.jpg",
        "llava image-info --image anim.gif --pixels-out frame0.npy",
    ];
    public override IReadOnlyList<OptionSpec> Options =>
    [
        new(["--image"], "FILE", "image file (PNG, JPEG, GIF, BMP, PPM/PGM)"),
        new(["--pixels-out"], "FILE", "write the decoded RGB pixels of the first frame as uint8 .npy [H, W, 3]"),
        new(["--max-pixels"], "N", "refuse images larger than N pixels (default 100000000)"),
        Help,
    ];

    public override int Execute(ParsedArguments args)
    {
        string path = args.Require("--image", "the image file");
        var options = new ImageDecodeOptions { MaxPixels = args.GetInt("--max-pixels", 100_000_000, 1) };
        var decoded = ImageDecoder.Decode(path, options);
        var first = decoded.First;
        Console.WriteLine($"file:        {path}");
        Console.WriteLine($"format:      {decoded.Format}");
        Console.WriteLine($"size:        {first.Width}x{first.Height}");
        Console.WriteLine($"channels:    {first.Channels} ({(first.Channels switch { 1 => "gray", 2 => "gray+alpha", 3 => "RGB", _ => "RGBA" })})");
        Console.WriteLine($"frames:      {decoded.Frames.Count}");
        Console.WriteLine($"orientation: {decoded.Orientation}{(decoded.Orientation != 1 ? " (applied)" : "")}");
        if (args.Get("--pixels-out") is { } output)
        {
            var rgb = first.ToRgb();
            NpyFile.WriteUInt8(output, rgb.Pixels, rgb.Height, rgb.Width, 3);
            Console.Error.WriteLine($"wrote RGB pixels [{rgb.Height}, {rgb.Width}, 3] to {output}");
        }
        return 0;
    }
}
