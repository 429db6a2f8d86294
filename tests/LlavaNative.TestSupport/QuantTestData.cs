using LlavaNative.Kernels.Cpu.Quant;
using LlavaNative.Kernels.Tensors;

namespace LlavaNative.TestSupport;

/// <summary>Random but valid tensor data for kernel tests, and ggml's names for the types.</summary>
public static unsafe class QuantTestData
{
    /// <summary>ggml's spelling of a type name: "q4_0", "q4_K", "iq4_nl", "f16".</summary>
    public static string GgmlName(TensorType type)
    {
        string s = type.ToString();
        return s.EndsWith("_K", StringComparison.Ordinal) ? s[..^2].ToLowerInvariant() + "_K" : s.ToLowerInvariant();
    }

    /// <summary>Byte offsets of the f16 scale fields (d, dmin, m) inside one block of <paramref name="type"/>.</summary>
    public static int[] ScaleOffsets(TensorType type) => type switch
    {
        TensorType.Q4_0 or TensorType.Q5_0 or TensorType.Q8_0 or TensorType.IQ4_NL => [0],
        TensorType.Q4_1 or TensorType.Q5_1 or TensorType.Q4_K or TensorType.Q5_K => [0, 2],
        TensorType.Q2_K => [80, 82],
        TensorType.Q3_K => [108],
        TensorType.Q6_K => [208],
        _ => [],
    };

    /// <summary>
    /// A row of <paramref name="n"/> elements of <paramref name="type"/>: random quant bits, random finite f16
    /// scales spanning normal and (occasionally) subnormal and zero values. F16/BF16 rows hold N(0, 1) values.
    /// </summary>
    public static byte[] RandomRow(TensorType type, int n, Random rng) => RandomRow(type, n, rng, realistic: false);

    /// <param name="realistic">F16/BF16/F32 only: N(0, 0.02) like trained weights, instead of N(0, 1) seeded
    /// with extra subnormal halves and zeros (which the kernels must get right, but which are rare in models).</param>
    public static byte[] RandomRow(TensorType type, int n, Random rng, bool realistic)
    {
        var bytes = new byte[TensorTypeInfo.RowBytes(type, n)];
        if (type is TensorType.F16 or TensorType.BF16 or TensorType.F32)
        {
            fixed (byte* p = bytes)
                for (int i = 0; i < n; i++)
                {
                    float v = Gaussian(rng);
                    if (realistic) v *= 0.02f;
                    else if (rng.Next(64) == 0) v *= 1e-6f; // some subnormal halves
                    else if (rng.Next(256) == 0) v = 0;
                    if (type == TensorType.F16) ((ushort*)p)[i] = Fp16.FromFloat(v);
                    else if (type == TensorType.BF16) ((ushort*)p)[i] = Bf16.FromFloat(v);
                    else ((float*)p)[i] = v;
                }
            return bytes;
        }
        rng.NextBytes(bytes);
        int blockBytes = TensorTypeInfo.BlockBytes(type);
        int[] offsets = ScaleOffsets(type);
        for (int b = 0; b < bytes.Length; b += blockBytes)
            foreach (int o in offsets)
            {
                ushort h = RandomScale(rng);
                bytes[b + o] = (byte)h;
                bytes[b + o + 1] = (byte)(h >> 8);
            }
        return bytes;
    }

    private static ushort RandomScale(Random rng)
    {
        int kind = rng.Next(100);
        if (kind == 0) return 0;
        if (kind == 1) return (ushort)rng.Next(1, 0x400); // subnormal
        float v = (float)(Math.Exp(rng.NextDouble() * 6 - 9) * (rng.Next(2) == 0 ? 1 : -1)); // 1.2e-4 .. 5e-2
        return Fp16.FromFloat(v);
    }

    public static float Gaussian(Random rng)
    {
        double u1 = 1.0 - rng.NextDouble(), u2 = rng.NextDouble();
        return (float)(Math.Sqrt(-2 * Math.Log(u1)) * Math.Cos(2 * Math.PI * u2));
    }

    /// <summary>Activation-like floats: Gaussian with a few outliers, an exact zero block now and then.</summary>
    public static float[] RandomActivations(int n, Random rng, float scale = 1f)
    {
        var x = new float[n];
        for (int i = 0; i < n; i++)
        {
            x[i] = Gaussian(rng) * scale;
            if (rng.Next(97) == 0) x[i] *= 20;
        }
        if (n >= 64 && rng.Next(4) == 0) Array.Clear(x, 32, 32);
        return x;
    }

    /// <summary>Row lengths that exercise whole-block tails of every unrolled loop.</summary>
    public static readonly int[] LegacyLengths = [32, 64, 96, 128, 160, 288, 4864];

    public static readonly int[] SuperBlockLengths = [256, 512, 768, 1280, 4864 / 256 * 256, 4608];

    public static int[] Lengths(TensorType type) => TensorTypeInfo.BlockElements(type) switch
    {
        256 => SuperBlockLengths,
        32 => LegacyLengths,
        _ => [1, 7, 8, 15, 16, 17, 31, 32, 33, 63, 64, 65, 100, 288, 896, 4864],
    };
}
