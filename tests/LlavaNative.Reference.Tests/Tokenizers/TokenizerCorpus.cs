using System.Text;

namespace LlavaNative.Reference.Tests.Tokenizers;

/// <summary>Texts that exercise the corners of pre-tokenizers, merges, special tokens and byte fallback.</summary>
public static class TokenizerCorpus
{
    public static readonly string[] Tricky =
    [
        "",
        " ",
        "  ",
        "   ",
        "\t",
        "\n",
        "\n\n\n",
        "\r\n",
        "a\r\nb\r\n\r\nc",
        " \n \n",
        "\t\n \t x",
        "Hello world",
        " Hello world",
        "  Hello   world  ",
        "Hello\tworld\n",
        "trailing space ",
        "trailing spaces   ",
        "line one\nline two\n\n  indented\n\tTabbed",
        "3", "33", "333", "3333", "12345678901234567890",
        "3.14159 1,000,000 -42 +7 1e10 0x1F 2024-01-01",
        "٣٤٥ ۱۲۳ ๑๒๓ ①②③ ½ ¾ Ⅻ",
        "!!!???...;;;:::---___***",
        "(a) [b] {c} <d> \"e\" 'f' `g`",
        "$100 + €50 = ¥? ~x ^y |z| @me #tag %p &amp;",
        "it's we're they've I'm you'll he'd don't",
        "IT'S WE'RE THEY'VE I'M YOU'LL HE'D DON'T",
        "It'S We'Re 'LL 'll 'Ll ''s 's's",
        "'s", "'", "''", "' era", "'re'",
        "你好，世界！我想在apple工作1314151天～",
        "日本語のテキストとカタカナ、ひらがな。",
        "한국어 텍스트입니다",
        "нещо на Български и Русский",
        "Ελληνικά κείμενα",
        "עברית ועברית",
        "العربية نص",
        "हिन्दी पाठ",
        "ภาษาไทย",
        "កាន់តែពិសេសអាចខលចេញ",
        "🦙 llama 🦙🦙",
        "🚀 (normal) 😶‍🌫️ (multiple emojis concatenated) ✅ (only emoji that has its own token)",
        "👨‍👩‍👧‍👦 family 👍🏽 thumbs 🇫🇷🇩🇪 flags",
        "𝓗𝓮𝓵𝓵𝓸 𝕎𝕠𝕣𝕝𝕕 𠜎𠜱𠝹",
        "café naïve résumé Ångström",
        "cafe\u0301 nai\u0308ve re\u0301sume\u0301",
        "\u00A0non-breaking\u00A0space\u3000ideographic\u2009thin\u200Bzero-width",
        "\u0085next line\u2028line sep\u2029para sep",
        "\u0001\u0002\u001F\u007F control chars",
        "\uE000\uF8FF private use",
        "\u0378\u0379 unassigned \U0001FBFA",
        "\u0897\u1C89\u1C8A\uA7CB Unicode 16 additions \U000105C0\U00013460",
        "lone \uD800 high and \uDC00 low surrogates",
        "<s>", "</s>", "<unk>", "<s> </s>", "<s>Hello</s>", " <s> x </s> ",
        "<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n",
        "<|im_start|><|im_start|><|im_end|>",
        "<|endoftext|>", "a<|endoftext|>b", "<|endoftext|><|endoftext|>",
        "<|begin_of_text|><|start_header_id|>user<|end_header_id|>\n\nhi<|eot_id|>",
        "<|fim_prefix|>def f():<|fim_suffix|>\n<|fim_middle|>",
        "<image>\n", "USER: <image>\nWhat is this? ASSISTANT:",
        "<|im_end", "|im_end|>", "<<|im_end|>>",
        "▁already▁escaped ▁",
        "<0x41> <0xFF>",
        "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        "Pneumonoultramicroscopicsilicovolcanoconiosis Supercalifragilisticexpialidocious",
        "https://example.com/path?query=1&x=y#frag user@example.org",
        "def f(x):\n    return x ** 2  # square\n\n\nclass A:\n\tpass\n",
        "{\"key\": [1, 2, 3], \"nested\": {\"a\": null}}",
        "    Hello\n    Hello",
        "\n =",
        "w048 7tuijk dsdfhu",
    ];

    private static readonly string[] s_pieces =
    [
        " ", "  ", "\t", "\n", "\r\n", "\n\n", " \n", "\u00A0", "\u3000", "\u2009", "\u0085",
        "a", "Hello", "world", "the", "ing", "LLaMA", "Qwen", "x", "Z",
        "0", "7", "42", "123", "2024", "9999999",
        ".", ",", "!", "?", "...", "-", "--", "_", "'", "\"", "`", "(", ")", "[", "]", "{", "}", "<", ">", "/", "\\",
        "$", "+", "=", "^", "~", "|", "@", "#", "%", "&", "*", ":", ";",
        "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'RE", "'Ll",
        "é", "e\u0301", "ñ", "ü", "ø", "ß", "Ω", "λ", "я", "Ж",
        "中", "文", "字", "の", "カ", "한", "ก", "ि", "ع",
        "🦙", "🚀", "😶‍🌫️", "👍🏽", "🇫🇷", "👨‍👩‍👧", "\uFE0F", "\u200D",
        "\u0301", "\u0308", "\u20AC", "\u00BD", "\u2160", "\u0663",
        "\uE000", "\u0378", "\U0001FBFA", "\u1C89", "\U0001FA89", "\u0001", "\u007F",
        "\uD800",
        "<s>", "</s>", "<unk>", "<|im_start|>", "<|im_end|>", "<|endoftext|>", "<|eot_id|>", "<|begin_of_text|>",
        "<|fim_prefix|>", "<image>", "▁", "<0x0A>",
    ];

    /// <summary>Deterministic random texts: 1–40 pieces from a pool of tricky pieces, so every run tests the same strings.</summary>
    public static IEnumerable<string> Random(int seed, int count)
    {
        var random = new Random(seed);
        var sb = new StringBuilder();
        for (int i = 0; i < count; i++)
        {
            sb.Clear();
            int n = random.Next(1, 41);
            for (int j = 0; j < n; j++)
                sb.Append(s_pieces[random.Next(s_pieces.Length)]);
            yield return sb.ToString();
        }
    }

    /// <summary>About <paramref name="length"/> characters of mixed prose, code, numbers and non-Latin text.</summary>
    public static string LongMixedText(int length)
    {
        var sb = new StringBuilder(length + 200);
        int i = 0;
        while (sb.Length < length)
        {
            sb.Append(Tricky[11 + i % (Tricky.Length - 11)]).Append(' ');
            i++;
        }
        return sb.ToString();
    }
}
