using System.Text;
using LlavaNative.Model.Tokenizers;
using LlavaNative.Model.Tokenizers.HuggingFace;
using Xunit;

namespace LlavaNative.Tests.Tokenizers;

/// <summary>
/// What the folder loader takes from the files around tokenizer.json (transformers' rules, which the tokenizers
/// library itself does not apply), how it reports bad files, and the facade behaviour of a tokenizer.json tokenizer.
/// The ids tokenizer.json alone produces are checked against Hugging Face tokenizers in the reference tests.
/// </summary>
public sealed class HuggingFaceTokenizerFilesTests : IDisposable
{
    private readonly string _root = Directory.CreateTempSubdirectory("llavanative-hftok-unit-").FullName;

    public void Dispose() => Directory.Delete(_root, recursive: true);

    /// <summary>A SentencePiece-style BPE: ▁, letters, a few merges, byte tokens for 中 (E4 B8 AD), specials.</summary>
    private const string SentencePieceJson = """
        {
          "version": "1.0", "truncation": null, "padding": null,
          "added_tokens": [
            {"id": 0, "content": "<unk>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 1, "content": "<s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true},
            {"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}
          ],
          "normalizer": {"type": "Sequence", "normalizers": [{"type": "Prepend", "prepend": "▁"}, {"type": "Replace", "pattern": {"String": " "}, "content": "▁"}]},
          "pre_tokenizer": null,
          "post_processor": {"type": "TemplateProcessing", "single": [{"Sequence": {"id": "A", "type_id": 0}}], "pair": [], "special_tokens": {}},
          "decoder": {"type": "Sequence", "decoders": [{"type": "Replace", "pattern": {"String": "▁"}, "content": " "}, {"type": "ByteFallback"}, {"type": "Fuse"}, {"type": "Strip", "content": " ", "start": 1, "stop": 0}]},
          "model": {"type": "BPE", "dropout": null, "unk_token": "<unk>", "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": true, "byte_fallback": true,
            "vocab": {"<unk>": 0, "<s>": 1, "</s>": 2, "<0xE4>": 3, "<0xB8>": 4, "<0xAD>": 5, "▁": 6, "H": 7, "e": 8, "l": 9, "o": 10, "▁H": 11, "▁He": 12, "ll": 13, "▁Hell": 14, "▁Hello": 15,
              "<|im_end|>": 16},
            "merges": ["▁ H", "▁H e", "l l", "▁He ll", "▁Hell o"]}
        }
        """;

    private string Folder(string name, string tokenizerJson, string? config = null, string? generationConfig = null)
    {
        string folder = Path.Combine(_root, name);
        Directory.CreateDirectory(folder);
        File.WriteAllText(Path.Combine(folder, "tokenizer.json"), tokenizerJson);
        if (config is not null)
            File.WriteAllText(Path.Combine(folder, "tokenizer_config.json"), config);
        if (generationConfig is not null)
            File.WriteAllText(Path.Combine(folder, "generation_config.json"), generationConfig);
        return folder;
    }

    [Fact]
    public void LlamaTokenizerClass_AddsBos_AsTransformersRebuildsThePostProcessor()
    {
        string config = """{"tokenizer_class": "LlamaTokenizer", "bos_token": {"__type": "AddedToken", "content": "<s>"}, "eos_token": "</s>", "add_eos_token": true}""";
        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(Folder("llama", SentencePieceJson, config));
        Assert.True(tokenizer.AddBos);
        Assert.True(tokenizer.AddEos);
        Assert.Equal(1, tokenizer.BosId);
        Assert.Equal(2, tokenizer.EosId);
        Assert.Equal([1, 15, 2], tokenizer.Encode("Hello"));
        Assert.Equal([15], tokenizer.Encode("Hello", addSpecial: false));
    }

    [Fact]
    public void OtherTokenizerClasses_KeepTheTemplate()
    {
        string config = """{"tokenizer_class": "PreTrainedTokenizerFast", "bos_token": "<s>", "eos_token": "</s>", "add_bos_token": true}""";
        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(Folder("fast", SentencePieceJson, config));
        Assert.False(tokenizer.AddBos);
        Assert.Equal([15], tokenizer.Encode("Hello"));
    }

    [Fact]
    public void EndOfGeneration_IsEos_GenerationConfigIds_AndSpecialEndTokens()
    {
        string json = SentencePieceJson.Replace("""{"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}""",
            """{"id": 2, "content": "</s>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}, {"id": 16, "content": "<|im_end|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}""");
        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(Folder("eog", json, """{"eos_token": "</s>"}""", """{"eos_token_id": [2, 9]}"""));
        Assert.True(tokenizer.IsEndOfGeneration(2));   // eos_token
        Assert.True(tokenizer.IsEndOfGeneration(9));   // generation_config.json
        Assert.True(tokenizer.IsEndOfGeneration(16));  // <|im_end|>, a special token with an end-of-turn text
        Assert.False(tokenizer.IsEndOfGeneration(1));
        Assert.True(tokenizer.IsControl(16));
        Assert.False(tokenizer.IsControl(15));
    }

    [Fact]
    public void EndTokenText_ThatIsNotSpecial_DoesNotEndGeneration()
    {
        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(Folder("plain-end", SentencePieceJson));
        Assert.False(tokenizer.IsEndOfGeneration(16)); // "<|im_end|>" is an ordinary vocabulary entry here
        Assert.Equal(-1, tokenizer.EosId);
    }

    [Fact]
    public void ConfigAddedTokens_AndNamedSpecialTokens_AreAdded()
    {
        string config = """
            {"added_tokens_decoder": {"17": {"content": "<image>", "lstrip": false, "normalized": false, "rstrip": false, "single_word": false, "special": true}},
             "additional_special_tokens": ["<video>"], "pad_token": "<pad>"}
            """;
        var data = HuggingFaceTokenizerFiles.Load(Folder("config-added", SentencePieceJson, config));
        var tokenizer = Tokenizer.FromVocabulary(data);
        Assert.True(tokenizer.TryGetTokenId("<image>", out int image));
        Assert.True(tokenizer.TryGetTokenId("<video>", out int video));
        Assert.True(tokenizer.TryGetTokenId("<pad>", out int pad));
        // after the model's 17 tokens: added_tokens_decoder, then the named special tokens in transformers' order
        // (bos, eos, unk, sep, pad, cls, mask, then additional_special_tokens)
        Assert.Equal([17, 19, 18], new[] { image, video, pad });
        Assert.Equal(pad, data.PaddingId);
        Assert.Equal([15, image, 15], tokenizer.Encode("Hello<image>Hello", addSpecial: false));
        // read as text when special tokens are not parsed: "<" is not in the vocabulary, so it is <unk> (fused)
        Assert.DoesNotContain(image, tokenizer.Encode("<image>", addSpecial: false, parseSpecial: false));
    }

    [Fact]
    public void ChatTemplate_ComesFromTheProcessorFirst_ThenJinja_ThenTokenizerConfig()
    {
        string config = """{"chat_template": [{"name": "tool_use", "template": "T"}, {"name": "default", "template": "D"}]}""";
        string folder = Folder("templates", SentencePieceJson, config);
        Assert.Equal("D", HuggingFaceTokenizerFiles.Load(folder).ChatTemplate);
        File.WriteAllText(Path.Combine(folder, "chat_template.jinja"), "J");
        Assert.Equal("J", HuggingFaceTokenizerFiles.Load(folder).ChatTemplate);
        File.WriteAllText(Path.Combine(folder, "chat_template.json"), """{"chat_template": "P"}""");
        Assert.Equal("P", HuggingFaceTokenizerFiles.Load(folder).ChatTemplate);
        Assert.Equal("S", HuggingFaceTokenizerFiles.Load(Folder("string-template", SentencePieceJson, """{"chat_template": "S"}""")).ChatTemplate);
    }

    [Fact]
    public void TokenBytes_AreWhatTheTokenPrintsMidStream()
    {
        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(Folder("bytes", SentencePieceJson));
        Assert.Equal(" Hello", Encoding.UTF8.GetString(tokenizer.TokenBytes(15))); // the leading space stays mid-stream
        Assert.Equal([0xE4], tokenizer.TokenBytes(3).ToArray());
        int[] ids = tokenizer.Encode("中", addSpecial: false);
        Assert.Equal([6, 3, 4, 5], ids); // ▁ then byte fallback
        var decoder = new TextDecoder(tokenizer);
        var text = new StringBuilder();
        foreach (int id in ids)
            text.Append(decoder.Append(id));
        Assert.Equal(" 中", text.ToString());
        Assert.Equal("中", tokenizer.Decode(ids)); // decode strips the first space (Strip decoder)
        Assert.Equal("<s>", tokenizer.TokenText(1));
    }

    [Fact]
    public void ByteLevelTokenBytes_MapTheAlphabetBack()
    {
        string json = """
            {"version": "1.0", "added_tokens": [], "normalizer": null,
             "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
             "post_processor": null, "decoder": {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true},
             "model": {"type": "BPE", "vocab": {"Ġ": 0, "w": 1, "o": 2, "Ġw": 3, "Ġwo": 4, "ä": 5, "¸": 6, "Ń": 7}, "merges": [["Ġ", "w"], ["Ġw", "o"]]}}
            """;
        var tokenizer = HuggingFaceTokenizerFiles.LoadTokenizer(Folder("bytelevel", json));
        Assert.Equal(" wo", Encoding.UTF8.GetString(tokenizer.TokenBytes(4)));
        Assert.Equal([0xE4], tokenizer.TokenBytes(5).ToArray());
        Assert.Equal([4, 5, 6, 7], tokenizer.Encode(" wo中"));
        Assert.Equal(" wo中", tokenizer.Decode([4, 5, 6, 7]));
        Assert.Equal(8, tokenizer.VocabSize);
    }

    [Fact]
    public void UnsupportedModel_SaysWhichAndWhatIsSupported()
    {
        string json = """{"version": "1.0", "added_tokens": [], "model": {"type": "WordPiece", "vocab": {"a": 0}}}""";
        var e = Assert.Throws<NotSupportedException>(() => HuggingFaceTokenizerFiles.Load(Folder("wordpiece", json)));
        Assert.Contains("model type 'WordPiece'", e.Message);
        Assert.Contains("BPE", e.Message);
    }

    [Fact]
    public void UnsupportedPreTokenizer_NamesItsPath()
    {
        string json = SentencePieceJson.Replace("\"pre_tokenizer\": null", "\"pre_tokenizer\": {\"type\": \"Sequence\", \"pretokenizers\": [{\"type\": \"UnicodeScripts\"}]}");
        var e = Assert.Throws<NotSupportedException>(() => HuggingFaceTokenizerFiles.Load(Folder("scripts", json)));
        Assert.Contains("tokenizer.json: pre_tokenizer.pretokenizers[0]: pre-tokenizer type 'UnicodeScripts' is not supported", e.Message);
    }

    [Theory]
    [InlineData(@"a++", "possessive quantifier")]
    [InlineData(@"[[:alpha:]]+", "POSIX bracket")]
    [InlineData(@"[a[b]]", "nested character class")]
    [InlineData(@"\p{Han}+", "property 'Han'")]
    [InlineData(@"\X", @"\X")]
    public void UnsupportedRegex_IsRefused_NotMatchedDifferently(string pattern, string why)
    {
        string json = SentencePieceJson.Replace("\"pre_tokenizer\": null",
            "\"pre_tokenizer\": {\"type\": \"Split\", \"pattern\": {\"Regex\": " + System.Text.Json.JsonSerializer.Serialize(pattern) + "}, \"behavior\": \"Isolated\", \"invert\": false}");
        var e = Assert.Throws<NotSupportedException>(() => HuggingFaceTokenizerFiles.Load(Folder("regex", json)));
        Assert.Contains("pre_tokenizer.pattern", e.Message);
        Assert.Contains(why, e.Message);
    }

    [Fact]
    public void MergeOfUnknownToken_NamesTheToken()
    {
        string json = SentencePieceJson.Replace("\"▁Hell o\"", "\"▁Hell q\"");
        var e = Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceTokenizerFiles.Load(Folder("bad-merge", json)));
        Assert.Equal("tokenizer.json: model.merges: 'q' is not in model.vocab", e.Message);
    }

    [Fact]
    public void MalformedMerge_NamesItsIndex()
    {
        string json = SentencePieceJson.Replace("\"l l\"", "\"l l l\"");
        var e = Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceTokenizerFiles.Load(Folder("malformed-merge", json)));
        Assert.Contains("model.merges[2] is \"l l l\", expected two tokens separated by one space", e.Message);
    }

    [Fact]
    public void InvalidJson_AndMissingFile_SaySo()
    {
        var e = Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceTokenizerFiles.Load(Folder("broken", "{\"version\": ")));
        Assert.StartsWith("tokenizer.json: is not valid JSON", e.Message);
        string empty = Path.Combine(_root, "empty");
        Directory.CreateDirectory(empty);
        Assert.False(HuggingFaceTokenizerFiles.Exists(empty));
        Assert.Throws<FileNotFoundException>(() => HuggingFaceTokenizerFiles.Load(empty));
    }

    /// <summary>A ModelProto with pieces "a" and "b", trainer_spec.model_type <paramref name="modelType"/>, remove_extra_whitespaces false.</summary>
    private static byte[] SentencePieceProto(int modelType)
    {
        byte[] Piece(char c) => [0x0A, 0x01, (byte)c, 0x15, 0, 0, 0x80, 0xBF, 0x18, 0x01]; // piece, score -1, type NORMAL
        var bytes = new List<byte>();
        foreach (char c in "ab")
        {
            byte[] piece = Piece(c);
            bytes.AddRange([0x0A, (byte)piece.Length, .. piece]);
        }
        bytes.AddRange([0x12, 0x02, 0x18, (byte)modelType]);   // trainer_spec { model_type }
        bytes.AddRange([0x1A, 0x02, 0x20, 0x00]);              // normalizer_spec { remove_extra_whitespaces: false }
        return [.. bytes];
    }

    [Fact]
    public void SentencePieceModel_IsRead_AndUnigramIsRefused()
    {
        var model = SentencePieceModelFile.Parse(SentencePieceProto(modelType: 2));
        Assert.Equal(["a", "b"], model.Pieces);
        Assert.Equal([-1f, -1f], model.Scores);
        Assert.Equal(SentencePieceModelFile.ModelType.Bpe, model.Type);
        Assert.False(model.RemoveExtraWhitespaces);
        Assert.True(model.AddDummyPrefix);

        string folder = Path.Combine(_root, "unigram");
        Directory.CreateDirectory(folder);
        File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), SentencePieceProto(modelType: 1));
        Assert.True(HuggingFaceTokenizerFiles.Exists(folder));
        var e = Assert.Throws<NotSupportedException>(() => HuggingFaceTokenizerFiles.Load(folder));
        Assert.Contains("tokenizer.model: SentencePiece model type Unigram is not supported", e.Message);

        File.WriteAllBytes(Path.Combine(folder, "tokenizer.model"), [0x0A, 0x7F, 0x01]);
        var bad = Assert.Throws<HuggingFaceTokenizerException>(() => HuggingFaceTokenizerFiles.Load(folder));
        Assert.Contains("tokenizer.model: is not a SentencePiece model: a field of 127 bytes runs past the end", bad.Message);
    }

    [Fact]
    public void BadConfigValue_NamesTheKey()
    {
        var e = Assert.Throws<HuggingFaceTokenizerException>(() =>
            HuggingFaceTokenizerFiles.Load(Folder("bad-config", SentencePieceJson, """{"bos_token": 5}""")));
        Assert.Equal("tokenizer_config.json: bos_token is neither a string nor an {\"content\": …} object", e.Message);
    }
}
