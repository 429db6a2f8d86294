using System.Text;

namespace LlavaNative.Model.Formats.Npy;

/// <summary>NumPy .npy (format 1.0) writer and reader for little-endian float32 / uint8 arrays.</summary>
public static class NpyFile
{
    private static readonly byte[] Magic = [0x93, (byte)'N', (byte)'U', (byte)'M', (byte)'P', (byte)'Y'];

    public static void WriteFloat32(string path, ReadOnlySpan<float> data, params long[] shape)
        => Write(path, "<f4", System.Runtime.InteropServices.MemoryMarshal.AsBytes(data), data.Length, shape);

    public static void WriteUInt8(string path, ReadOnlySpan<byte> data, params long[] shape)
        => Write(path, "|u1", data, data.Length, shape);

    private static void Write(string path, string descr, ReadOnlySpan<byte> bytes, long count, long[] shape)
    {
        long expected = 1;
        foreach (long d in shape) expected *= d;
        if (expected != count) throw new ArgumentException($"shape ({string.Join(", ", shape)}) holds {expected} elements, data has {count}");
        string shapeText = shape.Length == 1 ? $"({shape[0]},)" : "(" + string.Join(", ", shape) + ")";
        string header = $"{{'descr': '{descr}', 'fortran_order': False, 'shape': {shapeText}, }}";
        int total = Magic.Length + 2 + 2 + header.Length + 1;
        int pad = (64 - total % 64) % 64;
        header = header + new string(' ', pad) + "\n";
        using var stream = File.Create(path);
        stream.Write(Magic);
        stream.WriteByte(1);
        stream.WriteByte(0);
        stream.Write(BitConverter.GetBytes((ushort)header.Length));
        stream.Write(Encoding.ASCII.GetBytes(header));
        stream.Write(bytes);
    }

    /// <summary>Reads a little-endian float32 C-order array.</summary>
    public static (float[] Data, long[] Shape) ReadFloat32(string path)
    {
        byte[] all = File.ReadAllBytes(path);
        if (all.Length < 10 || !all.AsSpan(0, 6).SequenceEqual(Magic))
            throw new ModelFormatException($"{Path.GetFileName(path)}: not a .npy file");
        int major = all[6];
        int headerLength = major == 1 ? BitConverter.ToUInt16(all, 8) : BitConverter.ToInt32(all, 8);
        int headerStart = major == 1 ? 10 : 12;
        if (headerStart + headerLength > all.Length) throw new ModelFormatException($"{Path.GetFileName(path)}: truncated .npy header");
        string header = Encoding.ASCII.GetString(all, headerStart, headerLength);
        if (!header.Contains("'<f4'")) throw new ModelFormatException($"{Path.GetFileName(path)}: only little-endian float32 .npy is supported (header {header.Trim()})");
        if (header.Contains("'fortran_order': True")) throw new ModelFormatException($"{Path.GetFileName(path)}: Fortran-order arrays are not supported");
        int open = header.IndexOf('(', header.IndexOf("'shape'", StringComparison.Ordinal));
        int close = header.IndexOf(')', open);
        long[] shape = header[(open + 1)..close].Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries).Select(long.Parse).ToArray();
        long count = shape.Aggregate(1L, (a, b) => a * b);
        int dataStart = headerStart + headerLength;
        if (dataStart + count * 4 > all.Length) throw new ModelFormatException($"{Path.GetFileName(path)}: truncated .npy data");
        var data = new float[count];
        Buffer.BlockCopy(all, dataStart, data, 0, (int)(count * 4));
        return (data, shape);
    }
}
