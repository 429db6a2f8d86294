using LlavaNative.Model.Formats;
using LlavaNative.Model.Formats.HuggingFace;
using LlavaNative.Model.Llava;
using LlavaNative.Model.Vision;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.HuggingFace;
using LlavaNative.TestSupport.Llava;
using LlavaNative.TestSupport.Vision;
using Xunit;

namespace LlavaNative.Tests.Llava;

/// <summary>
/// Whole LLaVA checkpoint folders that cannot work (tiny synthetic decoder + tiny tower, no reference needed): each
/// must fail at load with a message naming the file and what was expected. The original layout's decoder config is
/// also checked here: its Llama fields sit at the top level beside the mm_* fields.
/// </summary>
public sealed class LlavaCheckpointBadInputTests
{
    private static (string Folder, string? Tower) Write(string name, LlavaFolderOptions options, int textDim = 64)
    {
        string root = Path.Combine(LlavaFixtures.TempFolder, $"{name}-{Guid.NewGuid():N}");
        string tokenizer = Path.Combine(root, "tokenizer");
        TokenizerJsonFixtures.WriteSmallByteLevel(tokenizer, 100, "qwen2", "<image>");
        var vision = RandomVisionModel.Create(RandomVisionSpec.TinyClip with { TextHiddenSize = textDim });
        return RandomLlavaHfFolder.Write(vision, root, options with
        {
            TextGguf = RandomModels.GetPath(LlavaFixtures.LlamaSynthetic), TokenizerFolder = tokenizer,
        });
    }

    [Fact]
    public void ImageTokenIndexOutsideTheVocabulary_NamesConfigJson()
    {
        var (folder, _) = Write("token-outside", new LlavaFolderOptions { ImageTokenIndex = 600 });
        var e = Assert.ThrowsAny<ModelFormatException>(() => LlavaModel.Load(folder, mmproj: null));
        Assert.Contains(Path.Combine(folder, "config.json"), e.Message);
        Assert.Contains("image_token_index 600 is outside the text model's vocabulary (0..511", e.Message);
    }

    [Fact]
    public void ProjectorNarrowerThanTheTextModel_SaysBothWidths()
    {
        var (folder, _) = Write("narrow-projector", new LlavaFolderOptions { ImageTokenIndex = 300 }, textDim: 32);
        var e = Assert.ThrowsAny<ModelFormatException>(() => LlavaModel.Load(folder, mmproj: null));
        Assert.Contains(folder, e.Message);
        Assert.Contains("produces 32-wide image embeddings", e.Message);
        Assert.Contains("has dimension 64", e.Message);
    }

    [Fact]
    public void OriginalLayoutWithoutVisionTower_NamesTheOption()
    {
        var (folder, tower) = Write("original-no-tower", new LlavaFolderOptions { Layout = LlavaFolderLayout.Original });
        Assert.NotNull(tower);
        var e = Assert.ThrowsAny<ModelFormatException>(() => LlavaModel.Load(folder, mmproj: null));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("--vision-tower", e.Message);
        Assert.Contains("openai/clip-vit-large-patch14-336", e.Message); // the mm_vision_tower it names

        // With the tower it loads, and the decoder came from the top-level fields (not LlamaConfig's 4096 defaults).
        using var model = LlavaModel.Load(folder, mmproj: null, visionTower: tower);
        Assert.Equal((64, 2, 512), (model.Decoder.Config.Dim, model.Decoder.Config.Layers, model.Decoder.Config.VocabSize));
        Assert.Equal(ImagePlacement.Embeddings, model.PromptFormat.Placement);
    }

    [Fact]
    public void ImStartEndWithoutThePatchTokens_NamesTheMissingTokens()
    {
        var (folder, tower) = Write("im-start-end-no-tokens", new LlavaFolderOptions { Layout = LlavaFolderLayout.Original, UseImStartEnd = true });
        var e = Assert.ThrowsAny<ModelFormatException>(() => LlavaModel.Load(folder, mmproj: null, visionTower: tower));
        Assert.Contains(Path.Combine(folder, "config.json"), e.Message);
        Assert.Contains("mm_use_im_start_end is true", e.Message);
        Assert.Contains("'<im_patch>', '<im_start>' and '<im_end>'", e.Message);
    }

    [Fact]
    public void OriginalConfig_ReadsTheTopLevelLlamaFields()
    {
        var (folder, _) = Write("original-config", new LlavaFolderOptions { Layout = LlavaFolderLayout.Original });
        var config = HfModelConfig.Load(folder);
        Assert.True(config.IsOriginalLlava);
        Assert.True(config.IsLlava);
        Assert.Null(config.Llava);
        Assert.Equal(("llama", 64, 2, 4, 2, 512), (config.Text.ModelType, config.Text.HiddenSize, config.Text.NumHiddenLayers,
            config.Text.NumAttentionHeads, config.Text.NumKeyValueHeads, config.Text.VocabSize));

        // llava_llama (LLaVA's registered name) is the same layout; without any mm_* field it is refused.
        string path = Path.Combine(folder, "config.json");
        string json = File.ReadAllText(path).Replace("\"model_type\": \"llava\"", "\"model_type\": \"llava_llama\"");
        File.WriteAllText(path, json);
        Assert.True(HfModelConfig.Load(folder).IsOriginalLlava);
        var node = System.Text.Json.Nodes.JsonNode.Parse(json)!.AsObject();
        foreach (string key in HfModelConfig.OriginalLlavaKeys) node.Remove(key);
        File.WriteAllText(path, node.ToJsonString());
        var e = Assert.ThrowsAny<ModelFormatException>(() => HfModelConfig.Load(folder));
        Assert.Contains("config.json", e.Message);
        Assert.Contains("llava_llama", e.Message);
    }
}
