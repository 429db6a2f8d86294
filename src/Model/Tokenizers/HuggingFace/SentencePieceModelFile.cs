using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A SentencePiece <c>tokenizer.model</c> (the <c>ModelProto</c> protobuf of sentencepiece_model.proto), as older
/// Llama / Vicuna / original LLaVA checkpoints ship it instead of tokenizer.json. Read are the pieces (text, score,
/// type), trainer_spec's model type, byte_fallback and special ids, and normalizer_spec's flags. Tokenization then
/// runs our SentencePiece encoder (llama.cpp's, which follows sentencepiece's BPE and transformers' legacy slow
/// tokenizer), so only what that encoder does is accepted: BPE models with the identity normalizer.
/// </summary>
public sealed class SentencePieceModelFile
{
    /// <summary>sentencepiece_model.proto TrainerSpec.ModelType.</summary>
    public enum ModelType
    {
        Unigram = 1,
        Bpe = 2,
        Word = 3,
        Char = 4,
    }

    public required string[] Pieces { get; init; }
    public required float[] Scores { get; init; }

    /// <summary>Piece types: 1 normal, 2 unknown, 3 control, 4 user-defined, 5 unused, 6 byte (llama.cpp uses the same values).</summary>
    public required int[] Types { get; init; }

    public ModelType Type { get; init; } = ModelType.Unigram;
    public bool ByteFallback { get; init; }
    public int UnknownId { get; init; }
    public int BosId { get; init; } = 1;
    public int EosId { get; init; } = 2;
    public int PadId { get; init; } = -1;
    public string? NormalizerName { get; init; }
    public int PrecompiledCharsmapLength { get; init; }
    public bool AddDummyPrefix { get; init; } = true;
    public bool RemoveExtraWhitespaces { get; init; } = true;
    public bool EscapeWhitespaces { get; init; } = true;

    public static SentencePieceModelFile Read(string path)
    {
        byte[] data = File.ReadAllBytes(path);
        try
        {
            return Parse(data);
        }
        catch (FormatException e)
        {
            throw new HuggingFaceTokenizerException(path, $"is not a SentencePiece model: {e.Message}");
        }
    }

    public static SentencePieceModelFile Parse(ReadOnlySpan<byte> data)
    {
        var pieces = new List<string>();
        var scores = new List<float>();
        var types = new List<int>();
        ModelType modelType = ModelType.Unigram;
        bool byteFallback = false;
        int unk = 0, bos = 1, eos = 2, pad = -1;
        string? normalizerName = null;
        int charsmap = 0;
        bool addDummyPrefix = true, removeExtraWhitespaces = true, escapeWhitespaces = true;

        var model = new ProtoReader(data);
        while (model.Next(out int field, out int wire))
        {
            switch (field, wire)
            {
                case (1, 2):
                {
                    var piece = new ProtoReader(model.Bytes());
                    string text = "";
                    float score = 0;
                    int type = 1;
                    while (piece.Next(out int f, out int w))
                    {
                        switch (f, w)
                        {
                            case (1, 2): text = Encoding.UTF8.GetString(piece.Bytes()); break;
                            case (2, 5): score = piece.Float(); break;
                            case (3, 0): type = (int)piece.Varint(); break;
                            default: piece.Skip(w); break;
                        }
                    }
                    pieces.Add(text);
                    scores.Add(score);
                    types.Add(type);
                    break;
                }
                case (2, 2):
                {
                    var trainer = new ProtoReader(model.Bytes());
                    while (trainer.Next(out int f, out int w))
                    {
                        switch (f, w)
                        {
                            case (3, 0): modelType = (ModelType)(int)trainer.Varint(); break;
                            case (35, 0): byteFallback = trainer.Varint() != 0; break;
                            case (40, 0): unk = (int)trainer.Varint(); break;
                            case (41, 0): bos = (int)trainer.Varint(); break;
                            case (42, 0): eos = (int)trainer.Varint(); break;
                            case (43, 0): pad = (int)trainer.Varint(); break;
                            default: trainer.Skip(w); break;
                        }
                    }
                    break;
                }
                case (3, 2):
                {
                    var normalizer = new ProtoReader(model.Bytes());
                    while (normalizer.Next(out int f, out int w))
                    {
                        switch (f, w)
                        {
                            case (1, 2): normalizerName = Encoding.UTF8.GetString(normalizer.Bytes()); break;
                            case (2, 2): charsmap = normalizer.Bytes().Length; break;
                            case (3, 0): addDummyPrefix = normalizer.Varint() != 0; break;
                            case (4, 0): removeExtraWhitespaces = normalizer.Varint() != 0; break;
                            case (5, 0): escapeWhitespaces = normalizer.Varint() != 0; break;
                            default: normalizer.Skip(w); break;
                        }
                    }
                    break;
                }
                default:
                    model.Skip(wire);
                    break;
            }
        }
        if (pieces.Count == 0)
            throw new FormatException("it has no pieces");
        return new SentencePieceModelFile
        {
            Pieces = [.. pieces], Scores = [.. scores], Types = [.. types],
            Type = modelType, ByteFallback = byteFallback,
            UnknownId = unk, BosId = bos, EosId = eos, PadId = pad,
            NormalizerName = normalizerName, PrecompiledCharsmapLength = charsmap,
            AddDummyPrefix = addDummyPrefix, RemoveExtraWhitespaces = removeExtraWhitespaces, EscapeWhitespaces = escapeWhitespaces,
        };
    }

    /// <summary>
    /// Refuses what our SentencePiece encoder would tokenize differently from sentencepiece: Unigram/word/char models
    /// and normalizers other than identity (a charsmap, removal of extra white space, unescaped spaces).
    /// </summary>
    public void CheckSupported(string path)
    {
        if (Type != ModelType.Bpe)
            throw new NotSupportedException($"{Path.GetFileName(path)}: SentencePiece model type {Type} is not supported; supported: BPE (Llama, Vicuna, LLaVA)");
        if (PrecompiledCharsmapLength > 0 || RemoveExtraWhitespaces || !EscapeWhitespaces)
            throw new NotSupportedException($"{Path.GetFileName(path)}: SentencePiece normalizer '{NormalizerName}' " +
                $"(charsmap {PrecompiledCharsmapLength} bytes, remove_extra_whitespaces {RemoveExtraWhitespaces}, escape_whitespaces {EscapeWhitespaces}) " +
                "is not supported; supported: identity with remove_extra_whitespaces false (as Llama's)");
    }

    /// <summary>Protobuf wire format, just what ModelProto needs.</summary>
    private ref struct ProtoReader(ReadOnlySpan<byte> data)
    {
        private readonly ReadOnlySpan<byte> _data = data;
        private int _position;

        public bool Next(out int field, out int wire)
        {
            if (_position >= _data.Length)
            {
                field = wire = 0;
                return false;
            }
            ulong tag = Varint();
            field = (int)(tag >> 3);
            wire = (int)(tag & 7);
            if (field == 0)
                throw new FormatException($"field number 0 at byte {_position}");
            return true;
        }

        public ulong Varint()
        {
            ulong value = 0;
            for (int shift = 0; shift < 64; shift += 7)
            {
                if (_position >= _data.Length)
                    throw new FormatException("a varint runs past the end");
                byte b = _data[_position++];
                value |= (ulong)(b & 0x7F) << shift;
                if ((b & 0x80) == 0)
                    return value;
            }
            throw new FormatException("a varint is longer than 10 bytes");
        }

        public ReadOnlySpan<byte> Bytes()
        {
            ulong length = Varint();
            if (length > (ulong)(_data.Length - _position))
                throw new FormatException($"a field of {length} bytes runs past the end");
            var bytes = _data.Slice(_position, (int)length);
            _position += (int)length;
            return bytes;
        }

        public float Float()
        {
            if (_position + 4 > _data.Length)
                throw new FormatException("a float runs past the end");
            float value = BitConverter.ToSingle(_data.Slice(_position, 4));
            _position += 4;
            return value;
        }

        public void Skip(int wire)
        {
            switch (wire)
            {
                case 0: Varint(); break;
                case 1: _position += 8; break;
                case 2: Bytes(); break;
                case 5: _position += 4; break;
                default: throw new FormatException($"wire type {wire} at byte {_position}");
            }
            if (_position > _data.Length)
                throw new FormatException("a field runs past the end");
        }
    }
}
