using LlavaNative.Kernels.Cpu.Ops;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Language;
using Xunit;

namespace LlavaNative.Tests.HuggingFace;

/// <summary>
/// config.json parsing with transformers' defaults for omitted fields (configuration_llama.py,
/// configuration_qwen2.py, configuration_llava.py, CLIPVisionConfig, SiglipVisionConfig), on configs shaped as
/// the two llava-hf checkpoints on the Hub are (fields as listed in llava-reference.md §3b).
/// </summary>
public sealed class HfConfigTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("llava-hf-config-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    private HfModelConfig Load(string json)
    {
        File.WriteAllText(Path.Combine(_dir, "config.json"), json);
        return HfModelConfig.Load(_dir);
    }

    /// <summary>llava-hf/llava-1.5-7b-hf: text_config omits hidden size, layers and heads; vision_config omits hidden_act and eps.</summary>
    internal const string Llava15Config = """
        {
          "architectures": ["LlavaForConditionalGeneration"],
          "ignore_index": -100,
          "image_token_index": 32000,
          "model_type": "llava",
          "pad_token_id": 32001,
          "projector_hidden_act": "gelu",
          "text_config": {
            "_name_or_path": "lmsys/vicuna-7b-v1.5",
            "architectures": ["LlamaForCausalLM"],
            "max_position_embeddings": 4096,
            "model_type": "llama",
            "rms_norm_eps": 1e-05,
            "torch_dtype": "float16",
            "vocab_size": 32064
          },
          "tie_word_embeddings": false,
          "torch_dtype": "float16",
          "transformers_version": "4.36.0.dev0",
          "vision_config": {
            "hidden_size": 1024,
            "image_size": 336,
            "intermediate_size": 4096,
            "model_type": "clip_vision_model",
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            "patch_size": 14,
            "projection_dim": 768,
            "vocab_size": 32000
          },
          "vision_feature_layer": -2,
          "vision_feature_select_strategy": "default",
          "vocab_size": 32064
        }
        """;

    /// <summary>llava-hf/llava-interleave-qwen-0.5b-hf: Qwen1.5-0.5B text (tied, θ 1e6, eps omitted), SigLIP tower.</summary>
    internal const string InterleaveConfig = """
        {
          "architectures": ["LlavaForConditionalGeneration"],
          "ignore_index": -100,
          "image_token_index": 151646,
          "model_type": "llava",
          "projector_hidden_act": "gelu",
          "text_config": {
            "_name_or_path": "Qwen/Qwen1.5-0.5B-Chat",
            "architectures": ["Qwen2ForCausalLM"],
            "bos_token_id": 151643,
            "eos_token_id": 151645,
            "hidden_size": 1024,
            "intermediate_size": 2816,
            "max_position_embeddings": 32768,
            "max_window_layers": 21,
            "model_type": "qwen2",
            "num_attention_heads": 16,
            "num_hidden_layers": 24,
            "num_key_value_heads": 16,
            "rope_theta": 1000000.0,
            "sliding_window": 32768,
            "tie_word_embeddings": true,
            "torch_dtype": "bfloat16",
            "use_sliding_window": false,
            "vocab_size": 152000
          },
          "torch_dtype": "float16",
          "transformers_version": "4.41.0.dev0",
          "vision_config": {
            "hidden_act": "gelu_pytorch_tanh",
            "hidden_size": 1152,
            "image_size": 384,
            "intermediate_size": 4304,
            "layer_norm_eps": 1e-06,
            "model_type": "siglip_vision_model",
            "num_attention_heads": 16,
            "num_hidden_layers": 26,
            "patch_size": 14,
            "vision_use_head": false
          },
          "vision_feature_layer": -1,
          "vision_feature_select_strategy": "full"
        }
        """;

    [Fact]
    public void Llava15TextFieldsOmittedTakeLlamaConfigDefaults()
    {
        var c = Load(Llava15Config);
        Assert.Equal("llava", c.ModelType);
        Assert.True(c.IsLlava);
        var t = c.Text;
        Assert.Equal("llama", t.ModelType);
        Assert.Equal(32064, t.VocabSize);
        Assert.Equal(4096, t.HiddenSize);
        Assert.Equal(32, t.NumHiddenLayers);
        Assert.Equal(32, t.NumAttentionHeads);
        Assert.Equal(32, t.NumKeyValueHeads);
        Assert.Equal(128, t.HeadDim);
        Assert.Equal(11008, t.IntermediateSize);
        Assert.Equal(4096, t.MaxPositionEmbeddings);
        Assert.Equal(1e-5, t.RmsNormEps);
        Assert.Equal(10000.0, t.RopeTheta);
        Assert.Equal(1.0, t.PartialRotaryFactor);
        Assert.False(t.AttentionBias);
        Assert.False(c.TieWordEmbeddings);
        Assert.Equal("float16", t.TorchDtype);
        Assert.Equal(1, t.BosTokenId);
        Assert.Equal([2], t.EosTokenIds);

        var v = c.Vision!;
        Assert.True(v.IsClip);
        Assert.Equal("quick_gelu", v.HiddenAct);
        Assert.Equal(1e-5, v.LayerNormEps);
        Assert.Equal((1024, 4096, 24, 16, 336, 14, 3), (v.HiddenSize, v.IntermediateSize, v.NumHiddenLayers, v.NumAttentionHeads, v.ImageSize, v.PatchSize, v.NumChannels));
        Assert.Equal(24, v.PatchesPerSide);
        Assert.Equal(768, v.ProjectionDim);

        var l = c.Llava!;
        Assert.Equal(32000, l.ImageTokenIndex);
        Assert.Equal("gelu", l.ProjectorHiddenAct);
        Assert.Equal("default", l.VisionFeatureSelectStrategy);
        Assert.Equal([-2], l.VisionFeatureLayers);
        Assert.Equal(576, l.ImageSeqLength);
        Assert.True(l.MultimodalProjectorBias);

        var d = DecoderConfig.FromHuggingFace(t);
        Assert.Equal(RopeMode.Neox, d.RopeMode);
        Assert.Equal((4096, 32, 32, 32, 128, 128, 11008, 4096, 32064), (d.Dim, d.Layers, d.Heads, d.KvHeads, d.HeadDim, d.RopeDims, d.FeedForward, d.ContextLength, d.VocabSize));
        Assert.Equal(1e-5f, d.NormEps);
        Assert.Equal(10000f, d.RopeFreqBase);
        Assert.Equal("llama", d.Architecture);
    }

    [Fact]
    public void InterleaveQwen2TiesThroughTextConfigAndTakesQwen2Defaults()
    {
        var c = Load(InterleaveConfig);
        var t = c.Text;
        Assert.Equal("qwen2", t.ModelType);
        Assert.Equal((152000, 1024, 2816, 24, 16, 16, 64), (t.VocabSize, t.HiddenSize, t.IntermediateSize, t.NumHiddenLayers, t.NumAttentionHeads, t.NumKeyValueHeads, t.HeadDim));
        Assert.Equal(1e-6, t.RmsNormEps); // omitted: Qwen2Config default
        Assert.Equal(1e6, t.RopeTheta);
        Assert.Equal(32768, t.MaxPositionEmbeddings);
        Assert.True(t.AttentionBias);
        Assert.True(t.TieWordEmbeddings);
        Assert.True(c.TieWordEmbeddings); // LlavaConfig forwards text_config's tie
        Assert.Equal(151643, t.BosTokenId);
        Assert.Equal([151645], t.EosTokenIds);

        var v = c.Vision!;
        Assert.True(v.IsSiglip);
        Assert.Equal("gelu_pytorch_tanh", v.HiddenAct);
        Assert.Equal(1e-6, v.LayerNormEps);
        Assert.Equal((1152, 4304, 26, 16, 384, 14), (v.HiddenSize, v.IntermediateSize, v.NumHiddenLayers, v.NumAttentionHeads, v.ImageSize, v.PatchSize));
        Assert.Equal(27, v.PatchesPerSide); // 27² = 729 image tokens
        Assert.False(v.VisionUseHead);

        var l = c.Llava!;
        Assert.Equal(151646, l.ImageTokenIndex);
        Assert.Equal("full", l.VisionFeatureSelectStrategy);
        Assert.Equal([-1], l.VisionFeatureLayers);

        var d = DecoderConfig.FromHuggingFace(t);
        Assert.Equal(RopeMode.Neox, d.RopeMode);
        Assert.Equal(1e6f, d.RopeFreqBase);
        Assert.Equal(1e-6f, d.NormEps);
        Assert.Equal("qwen2", d.Architecture);
    }

    [Fact]
    public void EmptyLlamaConfigIsLlamaConfigDefaults()
    {
        var t = Load("""{"model_type": "llama"}""").Text;
        Assert.Equal((32000, 4096, 11008, 32, 32, 32, 128, 2048), (t.VocabSize, t.HiddenSize, t.IntermediateSize, t.NumHiddenLayers, t.NumAttentionHeads, t.NumKeyValueHeads, t.HeadDim, t.MaxPositionEmbeddings));
        Assert.Equal(1e-6, t.RmsNormEps);
        Assert.Equal(10000.0, t.RopeTheta);
        Assert.False(t.TieWordEmbeddings);
        Assert.False(t.AttentionBias);
    }

    [Fact]
    public void EmptyQwen2ConfigIsQwen2ConfigDefaults()
    {
        var t = Load("""{"model_type": "qwen2"}""").Text;
        Assert.Equal((151936, 4096, 22016, 32, 32, 32, 128, 32768), (t.VocabSize, t.HiddenSize, t.IntermediateSize, t.NumHiddenLayers, t.NumAttentionHeads, t.NumKeyValueHeads, t.HeadDim, t.MaxPositionEmbeddings));
        Assert.Equal(1e-6, t.RmsNormEps);
        Assert.Equal(10000.0, t.RopeTheta);
        Assert.False(t.TieWordEmbeddings);
        Assert.True(t.AttentionBias);
        Assert.Null(t.BosTokenId);
    }

    [Fact]
    public void KvHeadsDefaultPerArchitecture()
    {
        // Qwen2Config's default is 32 whatever the head count; an explicit null means "= heads" for both.
        Assert.Equal(32, Load("""{"model_type": "qwen2", "num_attention_heads": 64, "hidden_size": 4096}""").Text.NumKeyValueHeads);
        Assert.Equal(8, Load("""{"model_type": "qwen2", "num_attention_heads": 8, "num_key_value_heads": null}""").Text.NumKeyValueHeads);
        Assert.Equal(8, Load("""{"model_type": "llama", "num_attention_heads": 8}""").Text.NumKeyValueHeads);
    }

    [Fact]
    public void LlavaWithoutSubConfigsGetsLlamaAndClipL336()
    {
        var c = Load("""{"model_type": "llava", "image_token_id": 7}""");
        Assert.Equal("llama", c.Text.ModelType);
        Assert.Equal(4096, c.Text.HiddenSize);
        Assert.Equal(7, c.Llava!.ImageTokenIndex); // alias of image_token_index
        var v = c.Vision!;
        Assert.True(v.IsClip);
        Assert.Equal((1024, 4096, 24, 16, 336, 14), (v.HiddenSize, v.IntermediateSize, v.NumHiddenLayers, v.NumAttentionHeads, v.ImageSize, v.PatchSize));

        // A text_config / vision_config without model_type is llama / clip_vision_model, other fields defaulted.
        c = Load("""{"model_type": "llava", "text_config": {"hidden_size": 256, "num_attention_heads": 4}, "vision_config": {}, "vision_feature_layer": [-2, -5, -8]}""");
        Assert.Equal("llama", c.Text.ModelType);
        Assert.Equal(64, c.Text.HeadDim);
        Assert.Equal((768, 12, 224, 32, "quick_gelu"), (c.Vision!.HiddenSize, c.Vision.NumHiddenLayers, c.Vision.ImageSize, c.Vision.PatchSize, c.Vision.HiddenAct));
        Assert.Equal([-2, -5, -8], c.Llava!.VisionFeatureLayers);

        var siglip = Load("""{"model_type": "llava", "vision_config": {"model_type": "siglip_vision_model"}}""").Vision!;
        Assert.Equal((16, "gelu_pytorch_tanh", 1e-6), (siglip.PatchSize, siglip.HiddenAct, siglip.LayerNormEps));
    }

    [Fact]
    public void Transformers5RopeParametersAndPartialRotary()
    {
        var t = Load("""
            {"model_type": "llama", "hidden_size": 256, "num_attention_heads": 4, "num_key_value_heads": 2, "head_dim": 32,
             "rope_parameters": {"rope_theta": 500000.0, "rope_type": "default", "partial_rotary_factor": 0.5}, "dtype": "bfloat16"}
            """).Text;
        Assert.Equal(500000.0, t.RopeTheta);
        Assert.Equal(32, t.HeadDim); // explicit head_dim wins over hidden / heads (64)
        Assert.Equal(16, t.RotaryDims);
        Assert.Equal("bfloat16", t.TorchDtype);
        var d = DecoderConfig.FromHuggingFace(t);
        Assert.Equal((32, 16, 128, 64), (d.HeadDim, d.RopeDims, d.QueryDim, d.KvDim));

        // Legacy files: top-level rope_theta, a null rope_scaling, top-level partial_rotary_factor.
        t = Load("""{"model_type": "qwen2", "rope_theta": 1000000, "rope_scaling": null, "partial_rotary_factor": 0.25, "hidden_size": 512, "num_attention_heads": 4, "num_key_value_heads": 4}""").Text;
        Assert.Equal(1e6, t.RopeTheta);
        Assert.Equal(32, t.RotaryDims);
    }
}
