using System.Security.Cryptography;
using LlavaNative.Model.Imaging;

namespace LlavaNative.Model.Llava;

/// <summary>
/// One image for a LLaVA prompt: encoded file bytes (PNG, JPEG, GIF first frame, BMP, PPM/PGM) or already decoded
/// pixels. <see cref="ContentHash"/> identifies the content, so a session encodes the same image only once.
/// </summary>
public sealed class LlavaImage
{
    private readonly byte[]? _encoded;
    private readonly Image? _decoded;
    private string? _hash;

    private LlavaImage(string name, byte[]? encoded, Image? decoded)
    {
        Name = name;
        _encoded = encoded;
        _decoded = decoded;
    }

    /// <summary>What errors and progress messages call the image (the file name, or the name given).</summary>
    public string Name { get; }

    /// <summary>Reads the file now, so a missing or unreadable file fails here; decoding happens when the image is encoded.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    public static LlavaImage FromFile(string path)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        if (!File.Exists(path)) throw new FileNotFoundException($"{path}: image file not found", path);
        return new LlavaImage(path, File.ReadAllBytes(path), null);
    }

    /// <summary>An image file's bytes (any supported format, recognised by its signature).</summary>
    public static LlavaImage FromBytes(byte[] data, string name = "<image bytes>")
    {
        ArgumentNullException.ThrowIfNull(data);
        return new LlavaImage(name, data, null);
    }

    /// <summary>Decoded pixels (e.g. a video frame).</summary>
    public static LlavaImage FromImage(Image image, string name = "<image>")
    {
        ArgumentNullException.ThrowIfNull(image);
        return new LlavaImage(name, null, image);
    }

    /// <summary>
    /// SHA-256 of the content, hex: of the file bytes for <see cref="FromFile"/>/<see cref="FromBytes"/>, of the size and
    /// pixels for <see cref="FromImage"/> (the two kinds never share a hash, even for the same picture).
    /// </summary>
    public string ContentHash => _hash ??= ComputeHash();

    /// <summary>The image to preprocess: the first frame, EXIF orientation applied.</summary>
    /// <exception cref="ImageFormatException">The bytes are not a supported, valid image (the message names <see cref="Name"/>).</exception>
    public Image Decode() => _decoded ?? ImageDecoder.Decode(_encoded!, Name).First;

    private string ComputeHash()
    {
        using var sha = IncrementalHash.CreateHash(HashAlgorithmName.SHA256);
        if (_encoded is not null)
        {
            sha.AppendData("file:"u8);
            sha.AppendData(_encoded);
        }
        else
        {
            var img = _decoded!;
            sha.AppendData("pixels:"u8);
            Span<byte> header = stackalloc byte[12];
            BitConverter.TryWriteBytes(header, img.Width);
            BitConverter.TryWriteBytes(header[4..], img.Height);
            BitConverter.TryWriteBytes(header[8..], img.Channels);
            sha.AppendData(header);
            sha.AppendData(img.Pixels);
        }
        return Convert.ToHexString(sha.GetHashAndReset());
    }

    public override string ToString() => Name;
}
