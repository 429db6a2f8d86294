using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>
/// Entropy decoding of one scan's data (T.81 Annex F sequential, Annex G progressive) with restart markers.
/// Sequential blocks are inverse-transformed straight into the component's sample plane; progressive scans
/// accumulate coefficients, transformed once all scans are in (<see cref="TransformProgressive"/>).
///
/// The bit reader keeps up to 64 bits MSB-first. Byte stuffing (FF 00) is undone as bytes are loaded; at a marker
/// or the end of the data it stops and supplies zero bits, counting them: a scan that consumes any of those bits
/// was cut short, and the MCU in which that happens is reported instead of decoding zeros as libjpeg does.
/// </summary>
internal sealed class JpegScanDecoder(byte[] data, string source)
{
    private int _pos;
    private ulong _bits;      // next bits of the stream, most significant first
    private int _bitCount;    // valid bits in _bits, including the padding below
    private int _paddingBits; // zero bits appended after the data stopped
    private bool _stopped;    // reached a marker or the end of the data
    private int _eobRun;      // progressive AC: blocks left in the current end-of-band run
    private readonly short[] _block = new short[64];
    private JpegScan? _scan;     // for messages: the scan and MCU being decoded
    private long _mcu, _totalMcus;

    /// <summary>Decodes the scan whose entropy-coded data starts at <paramref name="start"/>; returns where it ends.</summary>
    public int Decode(JpegFrame frame, JpegScan scan, int restartInterval, int start)
    {
        _pos = start;
        ResetBits();
        _eobRun = 0;
        foreach (var c in scan.Components) c.DcPredictor = 0;

        bool single = scan.Components.Length == 1;
        int mcusPerLine = single ? scan.Components[0].BlocksPerLine : frame.McusPerLine;
        int mcusPerColumn = single ? scan.Components[0].BlocksPerColumn : frame.McusPerColumn;
        long totalMcus = (long)mcusPerLine * mcusPerColumn;
        _scan = scan;
        _totalMcus = totalMcus;
        var mode = !frame.Progressive ? BlockMode.Sequential
            : scan.Ss == 0 ? (scan.Ah == 0 ? BlockMode.DcFirst : BlockMode.DcRefine)
            : (scan.Ah == 0 ? BlockMode.AcFirst : BlockMode.AcRefine);

        int untilRestart = restartInterval, nextRestart = 0;
        long mcu = 0;
        for (int my = 0; my < mcusPerColumn; my++)
        {
            for (int mx = 0; mx < mcusPerLine; mx++, mcu++)
            {
                _mcu = mcu;
                if (restartInterval > 0)
                {
                    if (untilRestart == 0)
                    {
                        ReadRestartMarker(nextRestart, mcu, scan);
                        nextRestart = (nextRestart + 1) & 7;
                        untilRestart = restartInterval;
                        _eobRun = 0;
                        foreach (var c in scan.Components) c.DcPredictor = 0;
                    }
                    untilRestart--;
                }

                if (single)
                {
                    DecodeBlock(mode, scan, scan.Components[0], my, mx);
                }
                else
                {
                    foreach (var c in scan.Components)
                        for (int v = 0; v < c.V; v++)
                            for (int h = 0; h < c.H; h++)
                                DecodeBlock(mode, scan, c, my * c.V + v, mx * c.H + h);
                }

                if (_bitCount < _paddingBits) throw DataEnded();
            }
        }
        return _pos;
    }

    private enum BlockMode { Sequential, DcFirst, DcRefine, AcFirst, AcRefine }

    private void DecodeBlock(BlockMode mode, JpegScan scan, JpegComponent c, int blockRow, int blockCol)
    {
        if (mode == BlockMode.Sequential)
        {
            DecodeSequentialBlock(c, blockRow, blockCol);
            return;
        }
        var block = c.Coefficients.AsSpan(((blockRow * c.PaddedBlocksPerLine) + blockCol) * 64, 64);
        switch (mode)
        {
            case BlockMode.DcFirst:
                {
                    int size = DecodeSymbol(c.DcTable!);
                    if (size != 0) c.DcPredictor += JpegBits.Extend(ReadBits(size), size);
                    block[0] = (short)(c.DcPredictor << scan.Al);
                    break;
                }
            case BlockMode.DcRefine:
                if (ReadBits(1) != 0) block[0] |= (short)(1 << scan.Al);
                break;
            case BlockMode.AcFirst:
                DecodeAcFirst(c.AcTable!, block, scan);
                break;
            default:
                DecodeAcRefine(c.AcTable!, block, scan);
                break;
        }
    }

    /// <summary>One block of a sequential scan (F.2.2): DC difference, then run/size coded AC terms; transformed at once.</summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void DecodeSequentialBlock(JpegComponent c, int blockRow, int blockCol)
    {
        short[] block = _block;
        Array.Clear(block);
        var acTable = c.AcTable!;
        ref int fastAc = ref MemoryMarshal.GetArrayDataReference(acTable.FastAc!);
        ref byte zigzag = ref MemoryMarshal.GetReference(JpegBits.ZigzagToNatural);
        ref short coefficients = ref MemoryMarshal.GetArrayDataReference(block);

        int size = DecodeSymbol(c.DcTable!);
        if (size != 0) c.DcPredictor += JpegBits.Extend(ReadBits(size), size);
        block[0] = (short)c.DcPredictor;

        // The hot loop keeps the bit buffer in locals, syncing the fields around the (rare) calls that use them.
        // Unchecked indexing: fastAc by 9 bits (< 512 entries), zigzag and the block by k, checked to be <= 63.
        ulong bits = _bits;
        int count = _bitCount;
        int last = 0;
        for (int k = 1; k < 64;)
        {
            if (count < 16)
            {
                _bits = bits; _bitCount = count;
                Fill();
                bits = _bits; count = _bitCount;
            }
            int fast = Unsafe.Add(ref fastAc, (int)(bits >> (64 - JpegHuffmanTable.LookaheadBits)));
            if (fast != 0)
            {
                // Code and magnitude bits in one lookup.
                int consumed = fast & 15;
                bits <<= consumed;
                count -= consumed;
                k += (fast >> 4) & 15;
                if (k > 63)
                {
                    _bits = bits; _bitCount = count;
                    throw Corrupt("an AC coefficient run passes the end of the block");
                }
                Unsafe.Add(ref coefficients, Unsafe.Add(ref zigzag, k)) = (short)(fast >> 8);
                last = k++;
                continue;
            }
            _bits = bits; _bitCount = count;
            int rs = DecodeSymbol(acTable);
            int run = rs >> 4;
            size = rs & 15;
            if (size == 0)
            {
                bits = _bits; count = _bitCount;
                if (run != 15) break; // end of block
                k += 16;              // ZRL: sixteen zeros
                continue;
            }
            k += run;
            if (k > 63) throw Corrupt("an AC coefficient run passes the end of the block");
            Unsafe.Add(ref coefficients, Unsafe.Add(ref zigzag, k)) = (short)JpegBits.Extend(ReadBits(size), size);
            bits = _bits; count = _bitCount;
            last = k++;
        }
        _bits = bits; _bitCount = count;

        var output = c.Plane.AsSpan(blockRow * 8 * c.Stride + blockCol * 8);
        if (last == 0) JpegIdct.TransformDcOnly(block[0], c.Quant![0], output, c.Stride);
        else JpegIdct.Transform(block, c.Quant, output, c.Stride);
    }

    /// <summary>Progressive AC first scan (G.1.2.2): band Ss..Se at precision Al, with end-of-band runs across blocks.</summary>
    private void DecodeAcFirst(JpegHuffmanTable table, Span<short> block, JpegScan scan)
    {
        if (_eobRun > 0)
        {
            _eobRun--;
            return;
        }
        ReadOnlySpan<byte> zigzag = JpegBits.ZigzagToNatural;
        int[] fastAc = table.FastAc!;
        for (int k = scan.Ss; k <= scan.Se; k++)
        {
            if (_bitCount < 16) Fill();
            int fast = fastAc[(int)(_bits >> (64 - JpegHuffmanTable.LookaheadBits))];
            if (fast != 0)
            {
                // Code and magnitude bits in one lookup.
                int consumed = fast & 15;
                _bits <<= consumed;
                _bitCount -= consumed;
                k += (fast >> 4) & 15;
                if (k > scan.Se) throw Corrupt($"an AC coefficient run passes the end of the band {scan.Ss}..{scan.Se}");
                block[zigzag[k]] = (short)((fast >> 8) * (1 << scan.Al));
                continue;
            }
            int rs = DecodeSymbol(table);
            int run = rs >> 4, size = rs & 15;
            if (size == 0)
            {
                if (run < 15)
                {
                    // EOBr: this block and 2^r − 1 + (r more bits) further blocks end here.
                    _eobRun = (1 << run) - 1;
                    if (run > 0) _eobRun += ReadBits(run);
                    break;
                }
                k += 15; // ZRL
                continue;
            }
            k += run;
            if (k > scan.Se) throw Corrupt($"an AC coefficient run passes the end of the band {scan.Ss}..{scan.Se}");
            block[zigzag[k]] = (short)(JpegBits.Extend(ReadBits(size), size) * (1 << scan.Al));
        }
    }

    /// <summary>
    /// Progressive AC refinement (G.1.2.3): one more bit (Al) of every coefficient already non-zero, interleaved with
    /// newly non-zero coefficients of magnitude 1 placed after a run of still-zero ones.
    /// Most of the work is single correction bits, so the bit buffer lives in locals (synced with the fields around
    /// the calls that use them); indexing is by k &lt;= Se &lt;= 63 into a 64-entry block, unchecked.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private void DecodeAcRefine(JpegHuffmanTable table, Span<short> block, JpegScan scan)
    {
        if (block.Length < 64) throw new ArgumentException("a 64-coefficient block");
        ref byte zigzag = ref MemoryMarshal.GetReference(JpegBits.ZigzagToNatural);
        ref short coefficients = ref MemoryMarshal.GetReference(block);
        int plus = 1 << scan.Al, minus = -1 << scan.Al;
        int k = scan.Ss, end = scan.Se;
        ulong bits = _bits;
        int count = _bitCount;
        if (_eobRun == 0)
        {
            for (; k <= end; k++)
            {
                _bits = bits; _bitCount = count;
                int rs = DecodeSymbol(table);
                int run = rs >> 4, size = rs & 15;
                int value = 0;
                if (size != 0)
                {
                    // Newly significant coefficients are ±1 at this bit position (size is 1 in a valid stream).
                    value = ReadBits(1) != 0 ? plus : minus;
                }
                else if (run != 15)
                {
                    _eobRun = 1 << run;
                    if (run > 0) _eobRun += ReadBits(run);
                    bits = _bits; count = _bitCount;
                    break;
                }
                bits = _bits; count = _bitCount;
                // Skip `run` coefficients that are still zero, refining the non-zero ones passed on the way.
                for (; k <= end; k++)
                {
                    ref short coef = ref Unsafe.Add(ref coefficients, Unsafe.Add(ref zigzag, k));
                    if (coef != 0)
                    {
                        if (count == 0)
                        {
                            _bits = bits; _bitCount = count;
                            Fill();
                            bits = _bits; count = _bitCount;
                        }
                        bool correction = (long)bits < 0; // the top bit
                        bits <<= 1;
                        count--;
                        if (correction && (coef & plus) == 0) coef = (short)(coef + (coef >= 0 ? plus : minus));
                    }
                    else if (run-- == 0) break;
                }
                if (value != 0)
                {
                    if (k > end)
                    {
                        _bits = bits; _bitCount = count;
                        throw Corrupt($"a refined AC coefficient falls past the end of the band {scan.Ss}..{scan.Se}");
                    }
                    Unsafe.Add(ref coefficients, Unsafe.Add(ref zigzag, k)) = (short)value;
                }
            }
        }
        if (_eobRun > 0)
        {
            // Inside an end-of-band run: only correction bits for coefficients already non-zero.
            for (; k <= end; k++)
            {
                ref short coef = ref Unsafe.Add(ref coefficients, Unsafe.Add(ref zigzag, k));
                if (coef == 0) continue;
                if (count == 0)
                {
                    _bits = bits; _bitCount = count;
                    Fill();
                    bits = _bits; count = _bitCount;
                }
                bool correction = (long)bits < 0;
                bits <<= 1;
                count--;
                if (correction && (coef & plus) == 0) coef = (short)(coef + (coef >= 0 ? plus : minus));
            }
            _eobRun--;
        }
        _bits = bits; _bitCount = count;
    }

    /// <summary>Progressive frames, after the last scan: transform every block holding image samples.</summary>
    public static void TransformProgressive(JpegComponent c)
    {
        short[] coefficients = c.Coefficients!;
        for (int by = 0; by < c.BlocksPerColumn; by++)
        {
            for (int bx = 0; bx < c.BlocksPerLine; bx++)
            {
                var block = coefficients.AsSpan((by * c.PaddedBlocksPerLine + bx) * 64, 64);
                var output = c.Plane.AsSpan(by * 8 * c.Stride + bx * 8);
                if (IsDcOnly(block)) JpegIdct.TransformDcOnly(block[0], c.Quant![0], output, c.Stride);
                else JpegIdct.Transform(block, c.Quant, output, c.Stride);
            }
        }
    }

    private static bool IsDcOnly(ReadOnlySpan<short> block)
    {
        if (block[1] != 0 || block[2] != 0 || block[3] != 0) return false;
        var words = System.Runtime.InteropServices.MemoryMarshal.Cast<short, ulong>(block[4..]); // 4 coefficients each
        ulong any = 0;
        foreach (ulong w in words) any |= w;
        return any == 0;
    }

    // ---- bit reader ----

    private void ResetBits()
    {
        _bits = 0;
        _bitCount = 0;
        _paddingBits = 0;
        _stopped = false;
    }

    /// <summary>Loads bytes until more than 56 bits are buffered, undoing FF 00 stuffing; zeros once the data stopped.</summary>
    private void Fill()
    {
        // Fast path: the next bytes that fit hold no FF, so they are plain data and go in with one big-endian read.
        if (!_stopped && _pos + 8 <= data.Length)
        {
            ulong word = System.Buffers.Binary.BinaryPrimitives.ReadUInt64BigEndian(data.AsSpan(_pos));
            int take = (64 - _bitCount) >> 3; // whole bytes that fit, 1..8
            ulong inverted = ~word;           // FF bytes become 00: find a zero byte among the first `take`
            ulong zeroBytes = (inverted - 0x0101010101010101UL) & ~inverted & 0x8080808080808080UL;
            ulong taken = ~0UL << (64 - 8 * take);
            if ((zeroBytes & taken) == 0)
            {
                _bits |= (word & taken) >> _bitCount;
                _bitCount += 8 * take;
                _pos += take;
                return;
            }
        }
        while (_bitCount <= 56)
        {
            int b = 0;
            if (!_stopped)
            {
                if (_pos < data.Length && data[_pos] != 0xFF)
                {
                    b = data[_pos++];
                }
                else if (_pos + 1 < data.Length && data[_pos + 1] == 0x00)
                {
                    b = 0xFF;
                    _pos += 2;
                }
                else
                {
                    _stopped = true; // a marker (FF followed by non-zero), or the end of the data
                }
            }
            if (_stopped) _paddingBits += 8;
            _bits |= (ulong)b << (56 - _bitCount);
            _bitCount += 8;
        }
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int ReadBits(int n)
    {
        if (_bitCount < n) Fill();
        int v = (int)(_bits >> (64 - n));
        _bits <<= n;
        _bitCount -= n;
        return v;
    }

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private int DecodeSymbol(JpegHuffmanTable table)
    {
        if (_bitCount < 16) Fill();
        int e = table.Fast[(int)(_bits >> (64 - JpegHuffmanTable.LookaheadBits))];
        if (e != 0)
        {
            int length = e >> 8;
            _bits <<= length;
            _bitCount -= length;
            return e & 0xFF;
        }
        return DecodeLongSymbol(table);
    }

    /// <summary>Codes longer than the lookahead: compare against the largest code of each length (F.2.2.3).</summary>
    private int DecodeLongSymbol(JpegHuffmanTable table)
    {
        for (int length = JpegHuffmanTable.LookaheadBits + 1; length <= 16; length++)
        {
            int code = (int)(_bits >> (64 - length));
            if (code <= table.MaxCode[length])
            {
                _bits <<= length;
                _bitCount -= length;
                return table.Symbols[code + table.SymbolOffset[length]];
            }
        }
        throw Corrupt("a bit sequence that is no code of the scan's Huffman table");
    }

    /// <summary>At a restart boundary: drop the padding bits, then expect marker RSTn (n = interval count mod 8).</summary>
    private void ReadRestartMarker(int expected, long mcu, JpegScan scan)
    {
        ResetBits();
        int p = _pos;
        while (p + 1 < data.Length && !(data[p] == 0xFF && data[p + 1] != 0x00 && data[p + 1] != 0xFF)) p++;
        if (p + 1 >= data.Length)
            throw new ImageFormatException(source, $"JPEG is truncated: the data ends in scan {scan.Number} before restart marker RST{expected} (after MCU {mcu})");
        int marker = data[p + 1];
        if (marker != 0xD0 + expected)
            throw new ImageFormatException(source, $"corrupt JPEG: expected restart marker RST{expected} after MCU {mcu} of scan {scan.Number}, found marker FF{marker:X2} at byte {p}");
        _pos = p + 2;
    }

    private ImageFormatException DataEnded()
    {
        // _pos stopped at the end of the data, or at the marker that cut the entropy-coded segment short.
        return _pos >= data.Length - 1
            ? new ImageFormatException(source, $"JPEG is truncated: the data ends inside scan {_scan!.Number}, in MCU {_mcu + 1} of {_totalMcus}")
            : new ImageFormatException(source, $"corrupt JPEG: scan {_scan!.Number}'s data ends at marker FF{data[_pos + 1]:X2} (byte {_pos}) inside MCU {_mcu + 1} of {_totalMcus}");
    }

    /// <summary>
    /// Invalid entropy-coded data. When the decoder had already run past the end of the data (into the zero bits
    /// supplied after it), the real problem is that the data ended, and that is what gets reported.
    /// </summary>
    private ImageFormatException Corrupt(string problem) =>
        _bitCount < _paddingBits
            ? DataEnded()
            : new(source, $"corrupt JPEG: {problem} in MCU {_mcu + 1} of {_totalMcus} of scan {_scan!.Number} (near byte {_pos})");
}
