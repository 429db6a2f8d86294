using System.Buffers.Binary;
using System.Text;

namespace LlavaNative.Model.Formats.PyTorch;

/// <summary>One member of a zip archive: where its bytes start in the file and how many there are.</summary>
internal readonly record struct ZipEntry(string Name, long DataOffset, long Size, int Method);

/// <summary>
/// The central directory of a zip archive held in memory (a mapped file), as <c>torch.save</c> writes it: members
/// stored uncompressed (method 0), ZIP64 records for large files. Only what locating member bytes needs is read
/// (end-of-central-directory record, central headers, local headers); CRCs are not checked — the tensor bytes are
/// used in place, never copied. Every inconsistency (truncation, offsets outside the file) is a
/// <see cref="PyTorchFormatException"/>.
/// </summary>
internal static unsafe class ZipDirectory
{
    private const uint EndOfCentralDirectorySignature = 0x06054b50;
    private const uint Zip64EndLocatorSignature = 0x07064b50;
    private const uint Zip64EndSignature = 0x06064b50;
    private const uint CentralHeaderSignature = 0x02014b50;
    private const uint LocalHeaderSignature = 0x04034b50;

    public static bool LooksLikeZip(byte* data, long size) =>
        size >= 4 && BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(data, 4)) == LocalHeaderSignature;

    public static List<ZipEntry> Read(string path, byte* data, long size)
    {
        PyTorchFormatException Error(string problem) => new(path, problem);

        // The end record is the last 22 bytes plus a comment of up to 65535 bytes.
        long end = -1;
        for (long p = size - 22; p >= Math.Max(0, size - 22 - 65535); p--)
            if (U32(data, p) == EndOfCentralDirectorySignature) { end = p; break; }
        if (end < 0) throw Error("no zip end-of-central-directory record (the file is truncated, or not a torch.save zip archive)");

        long entryCount = U16(data, end + 10);
        long directorySize = U32(data, end + 12);
        long directoryOffset = U32(data, end + 16);
        if (entryCount == 0xFFFF || directorySize == 0xFFFFFFFF || directoryOffset == 0xFFFFFFFF)
        {
            long locator = end - 20;
            if (locator < 0 || U32(data, locator) != Zip64EndLocatorSignature)
                throw Error("the zip end record points to a ZIP64 record that is missing");
            long zip64End = (long)U64(data, locator + 8);
            if (zip64End < 0 || zip64End + 56 > size || U32(data, zip64End) != Zip64EndSignature)
                throw Error($"the ZIP64 end record at offset {zip64End} is missing or outside the {size}-byte file");
            entryCount = (long)U64(data, zip64End + 32);
            directorySize = (long)U64(data, zip64End + 40);
            directoryOffset = (long)U64(data, zip64End + 48);
        }
        if (directoryOffset < 0 || directorySize < 0 || directoryOffset + directorySize > size || entryCount < 0 || entryCount > directorySize / 46)
            throw Error($"the zip central directory (offset {directoryOffset}, {directorySize} bytes, {entryCount} entries) does not fit in the {size}-byte file (truncated?)");

        var entries = new List<ZipEntry>((int)entryCount);
        long at = directoryOffset, directoryEnd = directoryOffset + directorySize;
        for (long i = 0; i < entryCount; i++)
        {
            if (at + 46 > directoryEnd || U32(data, at) != CentralHeaderSignature)
                throw Error($"zip central directory entry {i} is damaged");
            int flags = U16(data, at + 8);
            int method = U16(data, at + 10);
            long compressed = U32(data, at + 20), uncompressed = U32(data, at + 24);
            int nameLength = U16(data, at + 28), extraLength = U16(data, at + 30), commentLength = U16(data, at + 32);
            long localOffset = U32(data, at + 42);
            if (at + 46 + nameLength + extraLength + commentLength > directoryEnd)
                throw Error($"zip central directory entry {i} runs past the directory");
            string name = Encoding.UTF8.GetString(data + at + 46, nameLength);

            // ZIP64 extra field: the 64-bit values of exactly the fields saturated above, in this order.
            long extra = at + 46 + nameLength, extraEnd = extra + extraLength;
            while (extra + 4 <= extraEnd)
            {
                int id = U16(data, extra), length = U16(data, extra + 2);
                long field = extra + 4;
                if (field + length > extraEnd) throw Error($"zip entry '{name}' has a damaged extra field");
                if (id == 0x0001)
                {
                    long Next()
                    {
                        if (field + 8 > extra + 4 + length) throw Error($"zip entry '{name}' has a short ZIP64 extra field");
                        long v = (long)U64(data, field);
                        field += 8;
                        return v;
                    }
                    if (uncompressed == 0xFFFFFFFF) uncompressed = Next();
                    if (compressed == 0xFFFFFFFF) compressed = Next();
                    if (localOffset == 0xFFFFFFFF) localOffset = Next();
                }
                extra += 4 + length;
            }
            if ((flags & 1) != 0) throw Error($"zip entry '{name}' is encrypted");

            if (localOffset < 0 || localOffset + 30 > size || U32(data, localOffset) != LocalHeaderSignature)
                throw Error($"zip entry '{name}': its local header at offset {localOffset} is missing (truncated or damaged file)");
            long dataOffset = localOffset + 30 + U16(data, localOffset + 26) + U16(data, localOffset + 28);
            if (compressed < 0 || dataOffset + compressed > size)
                throw Error($"zip entry '{name}' ({compressed} bytes at offset {dataOffset}) runs past the end of the {size}-byte file (truncated?)");
            entries.Add(new ZipEntry(name, dataOffset, method == 0 ? compressed : uncompressed, method));
            at += 46 + nameLength + extraLength + commentLength;
        }
        return entries;
    }

    private static ushort U16(byte* p, long at) => BinaryPrimitives.ReadUInt16LittleEndian(new ReadOnlySpan<byte>(p + at, 2));
    private static uint U32(byte* p, long at) => BinaryPrimitives.ReadUInt32LittleEndian(new ReadOnlySpan<byte>(p + at, 4));
    private static ulong U64(byte* p, long at) => BinaryPrimitives.ReadUInt64LittleEndian(new ReadOnlySpan<byte>(p + at, 8));
}
