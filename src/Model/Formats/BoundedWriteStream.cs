namespace LlavaNative.Model.Formats;

/// <summary>
/// What a streamed tensor producer writes into (GGUF and safetensors writers): forwards to the file and refuses
/// to write past the tensor's declared size, so a wrong producer cannot corrupt the following tensors.
/// </summary>
internal sealed class BoundedWriteStream(Stream inner, long limit, string tensorName) : Stream
{
    public long Written { get; private set; }
    public override bool CanRead => false;
    public override bool CanSeek => false;
    public override bool CanWrite => true;
    public override long Length => throw new NotSupportedException();
    public override long Position { get => Written; set => throw new NotSupportedException(); }
    public override void Flush() { }
    public override int Read(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
    public override void SetLength(long value) => throw new NotSupportedException();
    public override void Write(byte[] buffer, int offset, int count) => Write(buffer.AsSpan(offset, count));

    public override void Write(ReadOnlySpan<byte> buffer)
    {
        if (buffer.Length > limit - Written)
            throw new InvalidOperationException($"tensor '{tensorName}': the producer wrote more than its {limit} bytes");
        inner.Write(buffer);
        Written += buffer.Length;
    }
}
