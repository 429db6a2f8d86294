using System.Buffers.Binary;

namespace LlavaNative.Model.Imaging;

/// <summary>
/// GIF87a/89a decoder: LZW, global and local colour tables, interlaced frames, transparency and disposal from the
/// graphic control extension. Every frame is composited onto the logical screen and returned as a full-screen RGBA
/// image, the way Pillow 9–10 presents a GIF (<c>ImageSequence</c>, each frame <c>convert("RGBA")</c>), because
/// HF preprocessing sees what Pillow shows. That includes Pillow's own rules where GIF viewers differ:
/// <list type="bullet">
/// <item>The screen grows to hold the first frame; later frames are clipped to it.</item>
/// <item>Before the first frame the screen is the first frame's transparent index (alpha 0), or palette entry 0
/// (opaque) when the first frame has no transparency; the header's background colour only fills disposal areas.</item>
/// <item>Alpha exists only if the first frame has a transparent index; otherwise every frame is opaque (areas
/// disposed to "transparent" show the transparent index's colour).</item>
/// <item>A disposal method stays in force for later frames until another non-zero one is given; methods 4–7 act
/// as 3 (restore previous). Disposal to background uses the frame's transparent index when it has one.</item>
/// <item>Indices past the end of a colour table read as gray (i, i, i), and a file whose colour tables are all
/// the identity gray ramp (or absent) is treated as grayscale, where the first frame's transparent value stays
/// transparent in every later frame.</item>
/// </list>
/// Where Pillow errs outright we do not follow it: a grayscale-ramp first frame followed by frames with real local
/// colour tables is shown with those tables (Pillow ignores them). Image data that ends before a frame is full is
/// an error, as in Pillow ("image file is truncated"); a missing trailer is not.
/// </summary>
internal static class GifDecoder
{
    private sealed record Frame(int X, int Y, int Width, int Height, bool Interlaced, int LocalPalette, int LocalEntries,
        int MinCodeSize, int DataStart, int? Transparency, int Disposal);

    public static DecodedImage Decode(byte[] data, string source, ImageDecodeOptions options)
    {
        if (data.Length < 13) throw Error(source, $"file has {data.Length} bytes, shorter than the 13-byte GIF header (truncated)");
        int screenWidth = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(6));
        int screenHeight = BinaryPrimitives.ReadUInt16LittleEndian(data.AsSpan(8));
        int flags = data[10];
        int globalPalette = -1, globalEntries = 0, background = 0;
        int pos = 13;
        if ((flags & 0x80) != 0)
        {
            globalEntries = 2 << (flags & 7);
            if (pos + 3 * globalEntries > data.Length)
                throw Error(source, $"global colour table ({globalEntries} entries) runs past the end of the file (truncated)");
            globalPalette = pos;
            pos += 3 * globalEntries;
            background = data[11]; // only meaningful with a global table (as in Pillow)
        }

        List<Frame> frames = ScanFrames(data, pos, source, options);
        Frame first = frames[0];
        int width = Math.Max(screenWidth, first.X + first.Width);
        int height = Math.Max(screenHeight, first.Y + first.Height);
        DecodeLimits.CheckImageSize(source, "GIF", width, height, 4, options);
        long totalPixels = (long)frames.Count * width * height, totalArea = 0;
        foreach (var f in frames) totalArea += (long)f.Width * f.Height;
        if (Math.Max(totalPixels, totalArea) > options.MaxTotalPixels)
            throw Error(source, $"{frames.Count} frames of {width}×{height} come to {Math.Max(totalPixels, totalArea)} pixels, " +
                $"more than the limit of {options.MaxTotalPixels} (ImageDecodeOptions.MaxTotalPixels)");

        bool grayscale = !IsRealPalette(data, globalPalette, globalEntries);
        foreach (var f in frames) grayscale &= !IsRealPalette(data, f.LocalPalette, f.LocalEntries);

        var compositor = new Compositor(data, source, width, height, globalPalette, globalEntries, background, frames);
        var images = new Image[frames.Count];
        for (int k = 0; k < frames.Count; k++)
            images[k] = grayscale ? compositor.GrayFrame(k) : compositor.ColorFrame(k);
        return new DecodedImage { Format = "GIF", Frames = images };
    }

    private static ImageFormatException Error(string source, string problem) => new(source, "GIF " + problem);

    /// <summary>Pillow's test: a table is only a palette if some entry i is not (i, i, i).</summary>
    private static bool IsRealPalette(byte[] data, int offset, int entries)
    {
        if (offset < 0) return false;
        for (int i = 0; i < entries; i++)
            if (data[offset + 3 * i] != i || data[offset + 3 * i + 1] != i || data[offset + 3 * i + 2] != i) return true;
        return false;
    }

    /// <summary>
    /// Walks the block structure without decoding pixels: finds every image descriptor with its colour table, LZW
    /// code size and data position and the graphic control extension before it, and enforces
    /// <see cref="ImageDecodeOptions.MaxFrames"/> and the per-frame size limit before anything is allocated.
    /// </summary>
    private static List<Frame> ScanFrames(byte[] data, int pos, string source, ImageDecodeOptions options)
    {
        var frames = new List<Frame>();
        int? transparency = null;
        int disposal = 0; // sticky, as in Pillow: only a non-zero method replaces it
        while (pos < data.Length)
        {
            byte introducer = data[pos++];
            if (introducer == 0x3B) break; // trailer
            if (introducer == 0x21)
            {
                if (pos >= data.Length) break; // a cut-off extension after the last image ends the file, as in Pillow
                byte label = data[pos++];
                int blocks = pos;
                if (!SkipSubBlocks(data, ref pos)) break;
                if (label == 0xF9)
                {
                    int size = data[blocks];
                    if (size < 4) throw Error(source, $"graphic control extension at offset {blocks - 2} has {size} bytes, expected 4");
                    int gce = data[blocks + 1];
                    if ((gce & 1) != 0) transparency = data[blocks + 4];
                    int method = (gce >> 2) & 7;
                    if (method != 0) disposal = method;
                }
                continue;
            }
            if (introducer != 0x2C) continue; // stray byte between blocks: skipped, as Pillow does

            int descriptor = pos - 1;
            if (pos + 9 > data.Length) throw Error(source, $"image descriptor at offset {descriptor} is cut off (truncated)");
            var d = data.AsSpan(pos, 9);
            int x = BinaryPrimitives.ReadUInt16LittleEndian(d), y = BinaryPrimitives.ReadUInt16LittleEndian(d[2..]);
            int w = BinaryPrimitives.ReadUInt16LittleEndian(d[4..]), h = BinaryPrimitives.ReadUInt16LittleEndian(d[6..]);
            int imageFlags = d[8];
            pos += 9;
            int local = -1, localEntries = 0;
            if ((imageFlags & 0x80) != 0)
            {
                localEntries = 2 << (imageFlags & 7);
                if (pos + 3 * localEntries > data.Length)
                    throw Error(source, $"frame {frames.Count}: local colour table runs past the end of the file (truncated)");
                local = pos;
                pos += 3 * localEntries;
            }
            if (pos >= data.Length) throw Error(source, $"frame {frames.Count}: image data missing (truncated)");
            int minCodeSize = data[pos++];
            if (minCodeSize is < 1 or > 8)
                throw Error(source, $"frame {frames.Count}: LZW minimum code size {minCodeSize} is invalid (1 to 8)");
            int dataStart = pos;
            if (!SkipSubBlocks(data, ref pos))
                throw Error(source, $"frame {frames.Count}: image data runs past the end of the file (truncated)");
            if (frames.Count == options.MaxFrames)
                throw Error(source, $"has more than {options.MaxFrames} frames (ImageDecodeOptions.MaxFrames)");
            if ((long)w * h > options.MaxPixels)
                throw Error(source, $"frame {frames.Count} is {w}×{h}, more than the limit of {options.MaxPixels} pixels (ImageDecodeOptions.MaxPixels)");
            frames.Add(new Frame(x, y, w, h, (imageFlags & 0x40) != 0, local, localEntries, minCodeSize, dataStart, transparency, disposal));
            transparency = null;
        }
        if (frames.Count == 0) throw Error(source, "file holds no image");
        return frames;
    }

    /// <summary>Skips data sub-blocks up to and including the zero-length terminator; false if the file ends first.</summary>
    private static bool SkipSubBlocks(byte[] data, ref int pos)
    {
        while (true)
        {
            if (pos >= data.Length) return false;
            int size = data[pos++];
            if (size == 0) return true;
            if (pos + size > data.Length) return false;
            pos += size;
        }
    }

    /// <summary>
    /// The logical screen as frames are drawn on it. Colour files keep an RGBA canvas; grayscale files keep a canvas
    /// of indices (Pillow's "L" mode) that becomes RGBA per output frame.
    /// </summary>
    private sealed class Compositor
    {
        private readonly byte[] _data;
        private readonly string _source;
        private readonly int _width, _height, _globalPalette, _globalEntries, _background;
        private readonly List<Frame> _frames;
        private readonly int? _firstTransparency;
        private byte[]? _rgba;     // [height, width, 4] colour canvas
        private byte[]? _indices;  // [height, width] grayscale canvas
        private readonly byte[] _row;        // one decoded frame row of indices
        private readonly byte[] _lookup = new byte[256 * 3]; // current frame's colour table, gray beyond its end
        private Action? _pendingDisposal;    // what the previous frame's disposal does before the next frame

        public Compositor(byte[] data, string source, int width, int height, int globalPalette, int globalEntries,
            int background, List<Frame> frames)
        {
            _data = data;
            _source = source;
            _width = width;
            _height = height;
            _globalPalette = globalPalette;
            _globalEntries = globalEntries;
            _background = background;
            _frames = frames;
            _firstTransparency = frames[0].Transparency;
            int widest = 0;
            foreach (var f in frames) widest = Math.Max(widest, f.Width);
            _row = new byte[widest];
        }

        private int Pixels => _width * _height;

        private void LoadLookup(Frame f)
        {
            int table = f.LocalPalette >= 0 ? f.LocalPalette : _globalPalette;
            int entries = f.LocalPalette >= 0 ? f.LocalEntries : _globalEntries;
            for (int i = 0; i < 256; i++)
                for (int c = 0; c < 3; c++)
                    _lookup[3 * i + c] = table >= 0 && i < entries ? _data[table + 3 * i + c] : (byte)i;
        }

        /// <summary>Colour path: RGBA canvas; frame k's opaque pixels replace the canvas, its transparent ones keep it.</summary>
        public Image ColorFrame(int k)
        {
            Frame f = _frames[k];
            int? t = f.Transparency;
            // Without transparency in the first frame Pillow composites in RGB: everything stays opaque.
            bool opaqueCanvas = _firstTransparency is null;
            LoadLookup(f);
            if (k == 0)
            {
                _rgba = new byte[(long)Pixels * 4];
                int fill = t ?? 0;
                FillRgba(0, 0, _width, _height, fill, t is null ? (byte)255 : (byte)0);
            }
            else
            {
                _pendingDisposal?.Invoke();
                _pendingDisposal = null;
            }

            byte[] canvas = _rgba!;
            if (k == 0)
            {
                // The first frame's disposal works on Pillow's palette image: fill with an index, seen through this table.
                if (f.Disposal == 2)
                {
                    int index = t ?? _background;
                    byte[] lut = (byte[])_lookup.Clone();
                    byte alpha = index == t ? (byte)0 : (byte)255;
                    _pendingDisposal = () => FillRgba(f.X, f.Y, f.Width, f.Height, index, alpha, lut);
                }
                else if (f.Disposal >= 3 && t is int ti)
                {
                    byte[] lut = (byte[])_lookup.Clone();
                    _pendingDisposal = () => FillRgba(f.X, f.Y, f.Width, f.Height, ti, 0, lut);
                }
            }
            else if (f.Disposal == 2)
            {
                int index = t ?? _background;
                byte alpha = t is not null && !opaqueCanvas ? (byte)0 : (byte)255;
                byte[] lut = (byte[])_lookup.Clone();
                _pendingDisposal = () => FillRgba(f.X, f.Y, f.Width, f.Height, index, alpha, lut);
            }
            else if (f.Disposal >= 3)
            {
                var saved = SaveRect(canvas, 4, f);
                _pendingDisposal = () => RestoreRect(canvas, 4, f, saved);
            }

            DecodeFrame(k, (row, y) =>
            {
                int cy = f.Y + y;
                if (cy >= _height) return;
                int count = Math.Min(f.Width, _width - f.X);
                long o = ((long)cy * _width + f.X) * 4;
                for (int i = 0; i < count; i++, o += 4)
                {
                    int v = row[i];
                    if (v == t) continue;
                    canvas[o] = _lookup[3 * v];
                    canvas[o + 1] = _lookup[3 * v + 1];
                    canvas[o + 2] = _lookup[3 * v + 2];
                    canvas[o + 3] = 255;
                }
            });
            return new Image(_width, _height, 4, (byte[])canvas.Clone());
        }

        /// <summary>Grayscale path (Pillow's "L" mode): indices on the canvas, the first frame's key transparent.</summary>
        public Image GrayFrame(int k)
        {
            Frame f = _frames[k];
            int? t = f.Transparency;
            if (k == 0)
            {
                _indices = new byte[Pixels];
                Array.Fill(_indices, (byte)(t ?? 0));
            }
            else
            {
                _pendingDisposal?.Invoke();
                _pendingDisposal = null;
            }
            byte[] canvas = _indices!;
            if (f.Disposal == 2 || (k == 0 && f.Disposal >= 3 && t is not null))
            {
                // Pillow fills with the first frame's transparent value if it had one, else this frame's, else background.
                byte value = (byte)(_firstTransparency ?? t ?? _background);
                _pendingDisposal = () => FillIndices(f, value);
            }
            else if (k > 0 && f.Disposal >= 3)
            {
                var saved = SaveRect(canvas, 1, f);
                _pendingDisposal = () => RestoreRect(canvas, 1, f, saved);
            }

            int? skip = k == 0 ? null : t; // the first frame writes its transparent index (it is the fill anyway)
            DecodeFrame(k, (row, y) =>
            {
                int cy = f.Y + y;
                if (cy >= _height) return;
                int count = Math.Min(f.Width, _width - f.X);
                int o = cy * _width + f.X;
                for (int i = 0; i < count; i++)
                    if (row[i] != skip) canvas[o + i] = row[i];
            });

            var rgba = new byte[(long)Pixels * 4];
            for (int i = 0; i < canvas.Length; i++)
            {
                byte v = canvas[i];
                rgba[4 * i] = rgba[4 * i + 1] = rgba[4 * i + 2] = v;
                rgba[4 * i + 3] = v == _firstTransparency ? (byte)0 : (byte)255;
            }
            return new Image(_width, _height, 4, rgba);
        }

        private void FillRgba(int x, int y, int w, int h, int index, byte alpha, byte[]? lut = null)
        {
            lut ??= _lookup;
            byte[] canvas = _rgba!;
            int x1 = Math.Min(_width, x + w), y1 = Math.Min(_height, y + h);
            for (int r = y; r < y1; r++)
                for (int c = x; c < x1; c++)
                {
                    long o = ((long)r * _width + c) * 4;
                    canvas[o] = lut[3 * index];
                    canvas[o + 1] = lut[3 * index + 1];
                    canvas[o + 2] = lut[3 * index + 2];
                    canvas[o + 3] = alpha;
                }
        }

        private void FillIndices(Frame f, byte value)
        {
            int x1 = Math.Min(_width, f.X + f.Width), y1 = Math.Min(_height, f.Y + f.Height);
            for (int r = f.Y; r < y1; r++)
                if (x1 > f.X) _indices.AsSpan(r * _width + f.X, x1 - f.X).Fill(value);
        }

        private byte[] SaveRect(byte[] canvas, int bytesPerPixel, Frame f)
        {
            int w = Math.Max(0, Math.Min(_width, f.X + f.Width) - f.X), h = Math.Max(0, Math.Min(_height, f.Y + f.Height) - f.Y);
            var saved = new byte[(long)w * h * bytesPerPixel];
            for (int r = 0; r < h; r++)
                canvas.AsSpan(((f.Y + r) * _width + f.X) * bytesPerPixel, w * bytesPerPixel).CopyTo(saved.AsSpan(r * w * bytesPerPixel));
            return saved;
        }

        private void RestoreRect(byte[] canvas, int bytesPerPixel, Frame f, byte[] saved)
        {
            int w = Math.Max(0, Math.Min(_width, f.X + f.Width) - f.X), h = Math.Max(0, Math.Min(_height, f.Y + f.Height) - f.Y);
            for (int r = 0; r < h; r++)
                saved.AsSpan(r * w * bytesPerPixel, w * bytesPerPixel).CopyTo(canvas.AsSpan(((f.Y + r) * _width + f.X) * bytesPerPixel));
        }

        /// <summary>Runs LZW over frame k and hands each row of indices to <paramref name="row"/> with its frame y.</summary>
        private void DecodeFrame(int k, Action<byte[], int> row)
        {
            Frame f = _frames[k];
            if (f.Width == 0 || f.Height == 0) return;
            var lzw = new LzwReader(_data, f.DataStart, f.MinCodeSize, _source, k);
            Span<byte> line = _row.AsSpan(0, f.Width);
            for (int j = 0; j < f.Height; j++)
            {
                int got = lzw.Read(line);
                if (got < f.Width)
                    throw Error(_source, $"frame {k}: image data ends after {(long)j * f.Width + got} of {(long)f.Width * f.Height} pixels (truncated)");
                row(_row, f.Interlaced ? InterlacedRow(j, f.Height) : j);
            }
        }

        /// <summary>The frame row stored j-th in an interlaced image: rows 0, 8, 16…; 4, 12…; 2, 6…; 1, 3…</summary>
        internal static int InterlacedRow(int j, int height)
        {
            int pass1 = (height + 7) / 8, pass2 = (height + 3) / 8, pass3 = (height + 1) / 4;
            if (j < pass1) return 8 * j;
            j -= pass1;
            if (j < pass2) return 4 + 8 * j;
            j -= pass2;
            if (j < pass3) return 2 + 4 * j;
            return 1 + 2 * (j - pass3);
        }
    }

    /// <summary>
    /// GIF LZW decoder (variable-width codes, least significant bit first, across data sub-blocks). Decoded strings
    /// can straddle rows, so the unwritten tail of the current string is kept between <see cref="Read"/> calls.
    /// A full table (4096 codes) stays in use until the next clear code, as decoders must allow.
    /// </summary>
    private sealed class LzwReader
    {
        private const int MaxCodes = 4096;
        private readonly byte[] _data;
        private readonly string _source;
        private readonly int _frame, _clear, _end, _minCodeSize;
        private int _pos, _blockLeft;
        private uint _bits;
        private int _bitCount;
        private int _width, _next, _prev = -1;
        private bool _ended;
        private readonly short[] _prefix = new short[MaxCodes];
        private readonly byte[] _suffix = new byte[MaxCodes];
        private readonly byte[] _first = new byte[MaxCodes];
        private readonly ushort[] _length = new ushort[MaxCodes];
        private readonly byte[] _string = new byte[MaxCodes]; // current string; bytes [_stringPos, _stringLen) unwritten
        private int _stringPos, _stringLen;

        public LzwReader(byte[] data, int pos, int minCodeSize, string source, int frame)
        {
            _data = data;
            _pos = pos;
            _source = source;
            _frame = frame;
            _minCodeSize = minCodeSize;
            _clear = 1 << minCodeSize;
            _end = _clear + 1;
            for (int i = 0; i < _clear; i++)
            {
                _prefix[i] = -1;
                _suffix[i] = (byte)i;
                _first[i] = (byte)i;
                _length[i] = 1;
            }
            Reset();
        }

        private void Reset()
        {
            _width = _minCodeSize + 1;
            _next = _end + 1;
            _prev = -1;
        }

        /// <summary>Next code, or −1 when the data sub-blocks are exhausted.</summary>
        private int NextCode()
        {
            while (_bitCount < _width)
            {
                if (_blockLeft == 0)
                {
                    int size = _data[_pos]; // the scan checked that every sub-block lies inside the file
                    if (size == 0) return -1;
                    _pos++;
                    _blockLeft = size;
                }
                _bits |= (uint)_data[_pos++] << _bitCount;
                _bitCount += 8;
                _blockLeft--;
            }
            int code = (int)(_bits & ((1u << _width) - 1));
            _bits >>= _width;
            _bitCount -= _width;
            return code;
        }

        /// <summary>Fills <paramref name="dst"/> with indices; returns fewer only when the image data has ended.</summary>
        public int Read(Span<byte> dst)
        {
            int written = 0;
            while (written < dst.Length)
            {
                if (_stringPos < _stringLen)
                {
                    int n = Math.Min(_stringLen - _stringPos, dst.Length - written);
                    _string.AsSpan(_stringPos, n).CopyTo(dst[written..]);
                    _stringPos += n;
                    written += n;
                    continue;
                }
                if (_ended) return written;
                int code = NextCode();
                if (code < 0 || code == _end) { _ended = true; return written; }
                if (code == _clear) { Reset(); continue; }
                if (_prev < 0)
                {
                    if (code > _clear)
                        throw Error(_source, $"frame {_frame}: LZW code {code} before any table entry exists (corrupt image data)");
                }
                else
                {
                    if (code > _next || (code == _next && _next == MaxCodes))
                        throw Error(_source, $"frame {_frame}: LZW code {code} is past the end of the table ({_next} entries): corrupt image data");
                    if (_next < MaxCodes)
                    {
                        // New entry: the previous string plus the first index of this one (of itself when code == next).
                        _prefix[_next] = (short)_prev;
                        _suffix[_next] = code < _next ? _first[code] : _first[_prev];
                        _first[_next] = _first[_prev];
                        _length[_next] = (ushort)(_length[_prev] + 1);
                        _next++;
                        if (_next == 1 << _width && _width < 12) _width++;
                    }
                }
                _prev = code;
                int len = _length[code];
                for (int i = len - 1, c = code; i >= 0; i--, c = _prefix[c]) _string[i] = _suffix[c];
                _stringPos = 0;
                _stringLen = len;
            }
            return written;
        }
    }
}
