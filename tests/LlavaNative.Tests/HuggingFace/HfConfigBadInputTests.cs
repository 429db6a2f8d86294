using LlavaNative.Model.Formats.HuggingFace;
using Xunit;

namespace LlavaNative.Tests.HuggingFace;

/// <summary>Missing, malformed and unsupported config.json files: errors name the file and the key.</summary>
public sealed class HfConfigBadInputTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-hf-config-bad-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private HuggingFaceConfigException Fails(string json)
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), json);
        var e = Assert.Throws<HuggingFaceConfigException>(() => HfModelConfig.Load(_dir));
        Assert.StartsWith("config.json: ", e.Message);
        return e;
    }

    [Fact]
    public void MissingConfigNamesThePath()
    {
        var e = Assert.Throws<FileNotFoundException>(() => HfModelConfig.Load(_dir));
        Assert.Contains(Path.Combine(_dir, "config.json"), e.Message);
    }

    [Fact]
    public void MalformedJson()
    {
        Assert.Contains("not valid JSON", Fails("""{"model_type": "llama", """).Message);
        Assert.Contains("not valid JSON", Fails("""{"model_type": llama}""").Message);
        Assert.Contains("expected an object", Fails("""["llama"]""").Message);
    }

    [Fact]
    public void UnknownOrMissingModelType()
    {
        var e = Fails("""{"model_type": "mistral"}""");
        Assert.Contains("'mistral'", e.Message);
        Assert.Contains("llama, qwen2, llava", e.Message);
        Assert.Contains("model_type", Fails("""{"hidden_size": 64}""").Message);
        e = Fails("""{"model_type": "llava", "text_config": {"model_type": "gemma"}}""");
        Assert.Contains("text_config.model_type 'gemma'", e.Message);
        e = Fails("""{"model_type": "llava", "vision_config": {"model_type": "pixtral"}}""");
        Assert.Contains("vision_config.model_type 'pixtral'", e.Message);
    }

    [Fact]
    public void WrongValueTypesNameTheKey()
    {
        Assert.Contains("text_config.hidden_size is the string \"big\", expected an integer",
            Fails("""{"model_type": "llava", "text_config": {"hidden_size": "big"}}""").Message);
        Assert.Contains("rms_norm_eps is true, expected a number", Fails("""{"model_type": "llama", "rms_norm_eps": true}""").Message);
        Assert.Contains("num_hidden_layers is 2.5, expected an integer", Fails("""{"model_type": "qwen2", "num_hidden_layers": 2.5}""").Message);
        Assert.Contains("text_config is a list, expected an object", Fails("""{"model_type": "llava", "text_config": []}""").Message);
        Assert.Contains("tie_word_embeddings is the string \"yes\", expected true or false", Fails("""{"model_type": "llama", "tie_word_embeddings": "yes"}""").Message);
    }

    [Fact]
    public void InconsistentSizes()
    {
        Assert.Contains("num_key_value_heads = 3", Fails("""{"model_type": "llama", "num_attention_heads": 8, "num_key_value_heads": 3}""").Message);
        Assert.Contains("not a multiple", Fails("""{"model_type": "llama", "hidden_size": 100, "num_attention_heads": 8}""").Message);
        Assert.Contains("hidden_size = 0", Fails("""{"model_type": "llama", "hidden_size": 0}""").Message);
        Assert.Contains("head_dim = 7", Fails("""{"model_type": "llama", "head_dim": 7}""").Message);
    }

    [Fact]
    public void UnsupportedFeaturesAreNamed()
    {
        Assert.Contains("rope_scaling.rope_type 'llama3'", Fails("""{"model_type": "llama", "rope_scaling": {"rope_type": "llama3", "factor": 8.0}}""").Message);
        Assert.Contains("rope_scaling.type 'linear'", Fails("""{"model_type": "llama", "rope_scaling": {"type": "linear", "factor": 2.0}}""").Message);
        Assert.Contains("rope_parameters.rope_type 'yarn'", Fails("""{"model_type": "qwen2", "rope_parameters": {"rope_type": "yarn", "rope_theta": 1e6}}""").Message);
        Assert.Contains("hidden_act 'gelu'", Fails("""{"model_type": "llama", "hidden_act": "gelu"}""").Message);
        Assert.Contains("attention_bias", Fails("""{"model_type": "llama", "attention_bias": true}""").Message);
        Assert.Contains("mlp_bias", Fails("""{"model_type": "llama", "mlp_bias": true}""").Message);
        Assert.Contains("sliding-window", Fails("""{"model_type": "qwen2", "use_sliding_window": true, "max_window_layers": 4, "num_hidden_layers": 8}""").Message);
        Assert.Contains("vision_feature_select_strategy 'cls'", Fails("""{"model_type": "llava", "vision_feature_select_strategy": "cls"}""").Message);
    }
}
