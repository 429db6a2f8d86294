using LlavaNative.Model.Formats.Gguf;

namespace LlavaNative.Model.Tokenizers;

/// <summary>Reads the <c>tokenizer.ggml.*</c> keys of a GGUF file into a <see cref="VocabularyData"/>.</summary>
public static class GgufVocabulary
{
    public static VocabularyData Load(GgufFile file)
    {
        string model = file.GetString("tokenizer.ggml.model");
        string[] tokens = file.GetArray<string>("tokenizer.ggml.tokens");
        if (tokens.Length == 0) throw new GgufFormatException(file.Path, "tokenizer.ggml.tokens is empty");

        float[]? scores = file.Contains("tokenizer.ggml.scores") ? file.GetArray<float>("tokenizer.ggml.scores") : null;
        int[]? types = file.Contains("tokenizer.ggml.token_type") ? file.GetIntArray("tokenizer.ggml.token_type") : null;
        string[]? merges = file.Contains("tokenizer.ggml.merges") ? file.GetArray<string>("tokenizer.ggml.merges") : null;
        if (scores != null && scores.Length != tokens.Length)
            throw new GgufFormatException(file.Path, $"tokenizer.ggml.scores has {scores.Length} entries for {tokens.Length} tokens");
        if (types != null && types.Length != tokens.Length)
            throw new GgufFormatException(file.Path, $"tokenizer.ggml.token_type has {types.Length} entries for {tokens.Length} tokens");

        int? Id(string key)
        {
            if (!file.Contains(key)) return null;
            int id = file.GetInt32(key);
            // llama.cpp ignores out-of-range special ids (keeps its default); -1 is "none" in some converters.
            return id >= 0 && id < tokens.Length ? id : null;
        }
        bool? Flag(string key) => file.Contains(key) ? file.GetBool(key, false) : null;

        var extraEog = new List<int>();
        foreach (var key in new[] { "tokenizer.ggml.eot_token_id", "tokenizer.ggml.eom_token_id" })
            if (Id(key) is int id) extraEog.Add(id);

        return new VocabularyData
        {
            Model = model,
            PreTokenizer = file.GetStringOrNull("tokenizer.ggml.pre"),
            Tokens = tokens,
            Scores = scores,
            TokenTypes = types,
            Merges = merges,
            BosId = Id("tokenizer.ggml.bos_token_id"),
            EosId = Id("tokenizer.ggml.eos_token_id"),
            UnknownId = Id("tokenizer.ggml.unknown_token_id"),
            PaddingId = Id("tokenizer.ggml.padding_token_id"),
            SeparatorId = Id("tokenizer.ggml.seperator_token_id") ?? Id("tokenizer.ggml.separator_token_id"),
            ExtraEndOfGenerationIds = extraEog.ToArray(),
            AddBos = Flag("tokenizer.ggml.add_bos_token"),
            AddEos = Flag("tokenizer.ggml.add_eos_token"),
            AddSpacePrefix = Flag("tokenizer.ggml.add_space_prefix"),
            ChatTemplate = file.GetStringOrNull("tokenizer.chat_template"),
            ModelName = file.GetStringOrNull("general.name"),
            Architecture = file.GetStringOrNull("general.architecture"),
        };
    }
}
