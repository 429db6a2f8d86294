using System.Text;

namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A tokenizer.json <c>decoder</c>: token strings → text. <see cref="DecodeChain"/> is tokenizers' decode_chain
/// (the list after this step); the final text is the chain's strings joined. <see cref="TokenBytes"/> is the
/// same step for one token in the middle of a stream, as raw bytes: byte tokens give their byte even when it is
/// not a whole character, and the steps that only concern the start of a text (Strip, Metaspace's first-token
/// rule) do nothing there.
/// </summary>
internal abstract class TokenDecoder
{
    public abstract List<string> DecodeChain(List<string> tokens);

    /// <summary>One token's contribution to a stream: a string still, or raw bytes once a step produced bytes.</summary>
    public abstract void TokenBytes(ref string text, ref byte[]? bytes);

    public static TokenDecoder? Parse(TokenizerJsonReader json)
    {
        if (json.IsNull)
            return null;
        string type = json.Type();
        return type switch
        {
            "ByteLevel" => new ByteLevelDecoder(),
            "ByteFallback" => new ByteFallbackDecoder(),
            "Fuse" => new FuseDecoder(),
            "Strip" => new StripDecoder(json["content"].Char(), json["start"].Int(0), json["stop"].Int(0)),
            "Replace" => new ReplaceDecoder(TextNormalizer.PatternOf(json["pattern"]), json["content"].String()),
            "Metaspace" => new MetaspaceDecoder(json["replacement"].Char(), MetaspacePreTokenizer.ParseScheme(json)),
            "BPEDecoder" => new BpeSuffixDecoder(json["suffix"].StringOrNull() ?? "</w>"),
            "Sequence" => new SequenceDecoder(json["decoders"].Items()
                .Select(d => Parse(d) ?? throw d.Error("is null, expected a decoder")).ToArray()),
            _ => throw new NotSupportedException($"{json.File}: {json.Path}: decoder type '{type}' is not supported; supported: ByteLevel, ByteFallback, Fuse, Strip, Replace, Metaspace, BPEDecoder, Sequence"),
        };
    }
}

/// <summary>
/// GPT-2 alphabet characters back to bytes: a token all of whose characters are in the alphabet gives their bytes,
/// any other token its own UTF-8; the bytes of all tokens become one string (invalid UTF-8 as U+FFFD).
/// </summary>
internal sealed class ByteLevelDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var bytes = new List<byte>();
        foreach (string token in tokens)
            bytes.AddRange(TokenToBytes(token));
        return [Encoding.UTF8.GetString(bytes.ToArray())];
    }

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
        if (bytes is null)
            bytes = TokenToBytes(text);
    }

    public static byte[] TokenToBytes(string token)
    {
        var bytes = new byte[token.Length];
        for (int i = 0; i < token.Length; i++)
        {
            int b = ByteLevelAlphabet.CharToByte(token[i]);
            if (b < 0)
                return Encoding.UTF8.GetBytes(token);
            bytes[i] = (byte)b;
        }
        return bytes;
    }
}

/// <summary>
/// "&lt;0xNN&gt;" tokens become bytes: each run of them becomes its text when it is valid UTF-8, otherwise one
/// U+FFFD per byte.
/// </summary>
internal sealed class ByteFallbackDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        var run = new List<byte>();
        void FlushRun()
        {
            if (run.Count == 0)
                return;
            var strict = new UTF8Encoding(false, throwOnInvalidBytes: true);
            try
            {
                result.Add(strict.GetString(run.ToArray()));
            }
            catch (DecoderFallbackException)
            {
                for (int i = 0; i < run.Count; i++)
                    result.Add("\uFFFD");
            }
            run.Clear();
        }
        foreach (string token in tokens)
        {
            if (TryParseByteToken(token, out byte b))
            {
                run.Add(b);
                continue;
            }
            FlushRun();
            result.Add(token);
        }
        FlushRun();
        return result;
    }

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
        if (bytes is null && TryParseByteToken(text, out byte b))
            bytes = [b];
    }

    /// <summary>Six UTF-8 bytes "&lt;0x", two hex digits (Rust's from_str_radix, so "+F" counts too), "&gt;".</summary>
    public static bool TryParseByteToken(string token, out byte value)
    {
        value = 0;
        if (token.Length != 6 || !token.StartsWith("<0x", StringComparison.Ordinal) || token[5] != '>')
            return false;
        char high = token[3], low = token[4];
        if (high == '+')
        {
            int digit = HexDigit(low);
            value = (byte)digit;
            return digit >= 0;
        }
        int h = HexDigit(high), l = HexDigit(low);
        if (h < 0 || l < 0)
            return false;
        value = (byte)(h * 16 + l);
        return true;
    }

    private static int HexDigit(char c) => c switch
    {
        >= '0' and <= '9' => c - '0',
        >= 'a' and <= 'f' => c - 'a' + 10,
        >= 'A' and <= 'F' => c - 'A' + 10,
        _ => -1,
    };
}

/// <summary>All tokens joined into one string.</summary>
internal sealed class FuseDecoder : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) => [string.Concat(tokens)];

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
    }
}

/// <summary>Removes up to <c>start</c> leading and <c>stop</c> trailing copies of a character from every string of the chain.</summary>
internal sealed class StripDecoder(string content, int start, int stop) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        int contentCodepoint = char.ConvertToUtf32(content, 0);
        var result = new List<string>(tokens.Count);
        foreach (string token in tokens)
        {
            Rune[] chars = token.EnumerateRunes().ToArray();
            int startCut = 0;
            for (int i = 0; i < Math.Min(start, chars.Length); i++)
            {
                if (chars[i].Value != contentCodepoint)
                    break;
                startCut = i + 1;
            }
            int stopCut = chars.Length;
            for (int i = 0; i < stop && i < chars.Length; i++)
            {
                int index = chars.Length - i - 1;
                if (chars[index].Value != contentCodepoint)
                    break;
                stopCut = index;
            }
            var sb = new StringBuilder();
            for (int i = startCut; i < stopCut; i++)
                sb.Append(chars[i].ToString());
            result.Add(sb.ToString());
        }
        return result;
    }

    /// <remarks>Strip removes the space a SentencePiece text starts with; mid-stream a token keeps its spaces.</remarks>
    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
    }
}

internal sealed class ReplaceDecoder(CodepointRegex pattern, string content) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens) =>
        tokens.Select(t => TextNormalizer.ReplaceAll(t, pattern, content, out _)).ToList();

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
        if (bytes is null)
            text = TextNormalizer.ReplaceAll(text, pattern, content, out _);
    }
}

/// <summary>The replacement character becomes a space, except in the first token when a prefix was prepended.</summary>
internal sealed class MetaspaceDecoder(string replacement, PrependScheme scheme) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
        {
            string space = i == 0 && scheme != PrependScheme.Never ? "" : " ";
            result.Add(tokens[i].Replace(replacement, space, StringComparison.Ordinal));
        }
        return result;
    }

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
        if (bytes is null)
            text = text.Replace(replacement, " ", StringComparison.Ordinal);
    }
}

/// <summary>The end-of-word suffix becomes a space, except in the last token.</summary>
internal sealed class BpeSuffixDecoder(string suffix) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        var result = new List<string>(tokens.Count);
        for (int i = 0; i < tokens.Count; i++)
            result.Add(suffix.Length == 0 ? tokens[i] : tokens[i].Replace(suffix, i == tokens.Count - 1 ? "" : " ", StringComparison.Ordinal));
        return result;
    }

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
        if (bytes is null && suffix.Length > 0)
            text = text.Replace(suffix, " ", StringComparison.Ordinal);
    }
}

internal sealed class SequenceDecoder(TokenDecoder[] decoders) : TokenDecoder
{
    public override List<string> DecodeChain(List<string> tokens)
    {
        foreach (var decoder in decoders)
            tokens = decoder.DecodeChain(tokens);
        return tokens;
    }

    public override void TokenBytes(ref string text, ref byte[]? bytes)
    {
        foreach (var decoder in decoders)
            decoder.TokenBytes(ref text, ref bytes);
    }
}
