namespace LlavaNative.Model.Imaging.Jpeg;

/// <summary>One image component (Y, Cb, Cr, K, …) of a frame: its sampling, its block grid and its decoded samples.</summary>
internal sealed class JpegComponent
{
    public required int Id { get; init; }
    /// <summary>Position in the frame header (0-based).</summary>
    public required int Index { get; init; }
    /// <summary>Horizontal and vertical sampling factors, 1..4.</summary>
    public required int H { get; init; }
    public required int V { get; init; }
    public required int QuantTableIndex { get; init; }

    /// <summary>Samples that carry image data: ceil(X·H/Hmax) × ceil(Y·V/Vmax) (A.1.1).</summary>
    public int Width, Height;
    /// <summary>Blocks holding those samples; a scan of this component alone covers exactly these.</summary>
    public int BlocksPerLine, BlocksPerColumn;
    /// <summary>Blocks in whole MCUs (H per MCU across, V down); interleaved scans also code the padding blocks.</summary>
    public int PaddedBlocksPerLine, PaddedBlocksPerColumn;

    /// <summary>Decoded samples, [PaddedBlocksPerColumn·8, Stride]; only the first Height rows × Width columns matter.</summary>
    public byte[] Plane = [];
    public int Stride;

    /// <summary>Progressive frames: every block's quantized coefficients, natural order, [blockRow, blockCol, 64].</summary>
    public short[]? Coefficients;

    /// <summary>The quantization table in effect when the component's first scan started (libjpeg latches it then too).</summary>
    public ushort[]? Quant;

    /// <summary>
    /// Progressive frames: per coefficient, the Al (point transform) of the last scan that coded it, −1 when none did.
    /// All zeros means every bit of every coefficient has arrived.
    /// </summary>
    public readonly int[] CoefficientBits = Enumerable.Repeat(-1, 64).ToArray();

    /// <summary>Sequential frames: a scan covering this component completed.</summary>
    public bool Decoded;

    // Per-scan entropy-decoding state.
    public int DcPredictor;
    public JpegHuffmanTable? DcTable, AcTable;
}

/// <summary>The frame header (SOF): size, coding process and components, plus the MCU grid derived from them.</summary>
internal sealed class JpegFrame
{
    public required int Width { get; init; }
    public required int Height { get; init; }
    public required bool Progressive { get; init; }
    /// <summary>The SOF marker's name for messages, e.g. "SOF2 (progressive)".</summary>
    public required string Kind { get; init; }
    public required JpegComponent[] Components { get; init; }

    public int MaxH, MaxV;
    /// <summary>MCUs across and down for interleaved scans: ceil(X / (8·Hmax)) × ceil(Y / (8·Vmax)).</summary>
    public int McusPerLine, McusPerColumn;

    /// <summary>Derives each component's sample and block grid from the sampling factors (T.81 A.1.1, A.2).</summary>
    public void Layout()
    {
        MaxH = Components.Max(c => c.H);
        MaxV = Components.Max(c => c.V);
        McusPerLine = CeilDiv(Width, 8 * MaxH);
        McusPerColumn = CeilDiv(Height, 8 * MaxV);
        foreach (var c in Components)
        {
            c.Width = CeilDiv(Width * c.H, MaxH);
            c.Height = CeilDiv(Height * c.V, MaxV);
            c.BlocksPerLine = CeilDiv(c.Width, 8);
            c.BlocksPerColumn = CeilDiv(c.Height, 8);
            // A single-component frame is coded block by block (never interleaved), so it needs no MCU padding.
            c.PaddedBlocksPerLine = Components.Length == 1 ? c.BlocksPerLine : McusPerLine * c.H;
            c.PaddedBlocksPerColumn = Components.Length == 1 ? c.BlocksPerColumn : McusPerColumn * c.V;
            c.Stride = c.PaddedBlocksPerLine * 8;
        }
    }

    private static int CeilDiv(int a, int b) => (int)(((long)a + b - 1) / b);
}

/// <summary>One scan (SOS): its components in coding order and its spectral band / successive-approximation bits.</summary>
internal sealed class JpegScan
{
    public required JpegComponent[] Components { get; init; }
    /// <summary>Spectral selection start and end (zigzag indices), successive approximation high and low bit.</summary>
    public required int Ss { get; init; }
    public required int Se { get; init; }
    public required int Ah { get; init; }
    public required int Al { get; init; }
    /// <summary>1-based scan number in the file, for messages.</summary>
    public required int Number { get; init; }
}
