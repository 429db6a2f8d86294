using System.Buffers;
using System.Text.Unicode;

namespace LlavaNative.Model.Tokenizers;

/// <summary>
/// Streaming detokenizer for the decode loop: token bytes go in, only complete characters come out, so a
/// character whose UTF-8 bytes are split across tokens (common for CJK and emoji with byte-level BPE or
/// SentencePiece byte fallback) prints once it is whole. Bytes that can never become valid UTF-8 come out as
/// U+FFFD at once; an incomplete tail becomes U+FFFD at <see cref="Flush"/>. After the first few tokens,
/// <see cref="Append(int)"/> allocates nothing: the returned span points into a buffer reused by the next call.
/// </summary>
public sealed class TextDecoder
{
    private readonly Tokenizer? _tokenizer;
    private byte[] _pending = new byte[64];   // undecoded bytes: at most an incomplete character between calls
    private int _pendingCount;
    private char[] _chars = new char[64];

    /// <summary>A decoder for raw bytes only (<see cref="Append(ReadOnlySpan{byte})"/>).</summary>
    public TextDecoder()
    {
    }

    /// <summary>A decoder for token ids of <paramref name="tokenizer"/>.</summary>
    public TextDecoder(Tokenizer tokenizer)
    {
        ArgumentNullException.ThrowIfNull(tokenizer);
        _tokenizer = tokenizer;
    }

    /// <summary>Number of bytes held back because they end in an incomplete character.</summary>
    public int PendingByteCount => _pendingCount;

    /// <summary>Adds one token's bytes; returns the characters completed by them (valid until the next call).</summary>
    public ReadOnlySpan<char> Append(int tokenId)
    {
        if (_tokenizer is null)
            throw new InvalidOperationException("this TextDecoder was created without a tokenizer; append bytes instead");
        return Append(_tokenizer.TokenBytes(tokenId));
    }

    /// <summary>Adds UTF-8 bytes; returns the characters completed by them (valid until the next call).</summary>
    public ReadOnlySpan<char> Append(ReadOnlySpan<byte> utf8)
    {
        EnsureCapacity(ref _pending, _pendingCount + utf8.Length);
        utf8.CopyTo(_pending.AsSpan(_pendingCount));
        _pendingCount += utf8.Length;
        return Decode(isFinal: false);
    }

    /// <summary>Ends the stream: returns what is left, an incomplete character as U+FFFD, and resets.</summary>
    public ReadOnlySpan<char> Flush() => Decode(isFinal: true);

    /// <summary>Drops pending bytes (e.g. to start a new reply).</summary>
    public void Reset() => _pendingCount = 0;

    private ReadOnlySpan<char> Decode(bool isFinal)
    {
        // every byte yields at most one char (a 4-byte sequence yields 2, an invalid byte one U+FFFD)
        EnsureCapacity(ref _chars, _pendingCount);
        OperationStatus status = Utf8.ToUtf16(_pending.AsSpan(0, _pendingCount), _chars, out int read, out int written,
            replaceInvalidSequences: true, isFinalBlock: isFinal);
        if (status is not (OperationStatus.Done or OperationStatus.NeedMoreData))
            throw new InvalidOperationException($"UTF-8 decoding stopped with {status}");

        // keep the incomplete tail for the next call
        int left = _pendingCount - read;
        _pending.AsSpan(read, left).CopyTo(_pending);
        _pendingCount = left;
        return _chars.AsSpan(0, written);
    }

    private static void EnsureCapacity<T>(ref T[] buffer, int length)
    {
        if (buffer.Length < length)
            Array.Resize(ref buffer, Math.Max(length, buffer.Length * 2));
    }
}
