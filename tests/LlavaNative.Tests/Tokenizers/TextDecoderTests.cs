using System.Text;
using LlavaNative.Model.Tokenizers;
using Xunit;

namespace LlavaNative.Tests.Tokenizers;

/// <summary>The streaming detokenizer: characters split across tokens print once, when complete.</summary>
public class TextDecoderTests
{
    [Fact]
    public void Ascii_IsEmittedAtOnce()
    {
        var decoder = new TextDecoder();
        Assert.Equal("Hello", decoder.Append("Hello"u8).ToString());
        Assert.Equal(" world", decoder.Append(" world"u8).ToString());
        Assert.Equal("", decoder.Flush().ToString());
    }

    [Fact]
    public void TwoByteCharacter_SplitAcrossAppends_IsEmittedWhenComplete()
    {
        var decoder = new TextDecoder();
        Assert.Equal("caf", decoder.Append([(byte)'c', (byte)'a', (byte)'f', 0xC3]).ToString()); // 'é' = C3 A9
        Assert.Equal(1, decoder.PendingByteCount);
        Assert.Equal("é!", decoder.Append([0xA9, (byte)'!']).ToString());
        Assert.Equal(0, decoder.PendingByteCount);
    }

    [Theory]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void FourByteEmoji_AnySplit_IsEmittedOnceAsASurrogatePair(int split)
    {
        byte[] llama = [0xF0, 0x9F, 0xA6, 0x99]; // U+1F999 🦙
        var decoder = new TextDecoder();
        Assert.Equal("", decoder.Append(llama.AsSpan(0, split)).ToString());
        Assert.Equal("🦙", decoder.Append(llama.AsSpan(split)).ToString());
    }

    [Fact]
    public void FourByteEmoji_OneByteAtATime()
    {
        var decoder = new TextDecoder();
        var text = new StringBuilder();
        foreach (byte b in Encoding.UTF8.GetBytes("a🦙b中"))
            text.Append(decoder.Append([b]));
        text.Append(decoder.Flush());
        Assert.Equal("a🦙b中", text.ToString());
    }

    [Fact]
    public void InvalidByte_BecomesReplacementCharacterAtOnce()
    {
        var decoder = new TextDecoder();
        // 0xFF can never start a UTF-8 sequence, so it need not wait for more bytes
        Assert.Equal("a\uFFFDb", decoder.Append([(byte)'a', 0xFF, (byte)'b']).ToString());
        Assert.Equal(0, decoder.PendingByteCount);
    }

    [Fact]
    public void IncompleteTail_BecomesReplacementCharacterAtFlush_AndTheDecoderIsReset()
    {
        var decoder = new TextDecoder();
        Assert.Equal("x", decoder.Append([(byte)'x', 0xE4, 0xB8]).ToString()); // first two bytes of 中 (E4 B8 AD)
        Assert.Equal(2, decoder.PendingByteCount);
        Assert.Equal("\uFFFD", decoder.Flush().ToString());
        Assert.Equal(0, decoder.PendingByteCount);
        Assert.Equal("中", decoder.Append([0xE4, 0xB8, 0xAD]).ToString());
    }

    [Fact]
    public void ContinuationByteAfterCompleteCharacter_IsInvalid()
    {
        var decoder = new TextDecoder();
        Assert.Equal("é\uFFFD", decoder.Append([0xC3, 0xA9, 0xA9]).ToString());
    }

    [Fact]
    public void TokenIds_ByteLevelPiecesOfOneCharacter_PrintTogether()
    {
        // '€' is E2 82 AC; in GPT-2's byte alphabet E2 is 'â', AC is '¬', and 82 (the 4th of the 34 bytes
        // 0x7F..0xA0 that are remapped after the 33 bytes 0x00..0x20) is U+0121 + 3 = 'Ĥ'.
        var tokenizer = TinyVocabularies.BytePair("gpt-2", ["â", "Ĥ", "¬", "x"], []);
        var decoder = new TextDecoder(tokenizer);
        Assert.Equal("", decoder.Append(0).ToString());
        Assert.Equal("", decoder.Append(1).ToString());
        Assert.Equal("€", decoder.Append(2).ToString());
        Assert.Equal("x", decoder.Append(3).ToString());
    }

    [Fact]
    public void Append_AllocatesNothingPerToken_AfterWarmUp()
    {
        var tokenizer = TinyVocabularies.BytePair("gpt-2", ["â", "Ĥ", "¬", "x"], []);
        var decoder = new TextDecoder(tokenizer);
        int chars = 0;
        for (int i = 0; i < 8; i++)
            chars += decoder.Append(i % 4).Length;

        // The runtime itself can allocate on this thread while tiered compilation swaps in optimized code (seen once
        // under a loaded full test run), so measure three rounds of 10 000 tokens and require one of them to be clean:
        // a real per-token allocation would show in every round.
        long fewest = long.MaxValue;
        for (int round = 0; round < 3 && fewest != 0; round++)
        {
            long before = GC.GetAllocatedBytesForCurrentThread();
            for (int i = 0; i < 10_000; i++)
                chars += decoder.Append(i % 4).Length;
            fewest = Math.Min(fewest, GC.GetAllocatedBytesForCurrentThread() - before);
        }

        Assert.Equal(0, fewest);
        Assert.True(chars > 0);
    }

    [Fact]
    public void DecoderWithoutTokenizer_RejectsTokenIds()
    {
        Assert.Throws<InvalidOperationException>(() => new TextDecoder().Append(0));
    }
}
