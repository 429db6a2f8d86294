using System.IO.Compression;
using BenchmarkDotNet.Attributes;
using LlavaNative.Model.Imaging;
using LlavaNative.TestSupport.Imaging;

namespace LlavaNative.Benchmarks;

/// <summary>
/// Decoding a 4000×3000 (12 MP) photo-sized PNG: a smooth gradient with ±8 noise so it compresses like a photo
/// (≈ 2:1), rows cycling through all five filters (or all Paeth, the slowest to reverse).
/// dotnet run -c Release --project benchmarks/LlavaNative.Benchmarks -- --filter '*ImageDecode*' --job short
/// </summary>
[MemoryDiagnoser]
public class ImageDecodeBenchmarks
{
    [Params("cycle", "paeth")]
    public string Filters { get; set; } = "cycle";

    private byte[] _png = [];

    [GlobalSetup]
    public void Setup()
    {
        const int width = 4000, height = 3000;
        var rgb = new byte[width * height * 3]; // [height, width, 3]
        var random = new Random(1);
        for (int y = 0; y < height; y++)
            for (int x = 0; x < width; x++)
            {
                int o = 3 * (y * width + x), noise = random.Next(-8, 9);
                rgb[o] = (byte)Math.Clamp(x * 255 / width + noise, 0, 255);
                rgb[o + 1] = (byte)Math.Clamp(y * 255 / height + noise, 0, 255);
                rgb[o + 2] = (byte)Math.Clamp((x + y) / 30 % 256 + noise, 0, 255);
            }
        _png = TestPng.Encode8(width, height, 2, rgb, Filters == "paeth" ? _ => 4 : y => y % 5, CompressionLevel.Fastest);
    }

    [Benchmark]
    public Image DecodePng() => ImageDecoder.Decode(_png, "bench.png").First;
}
