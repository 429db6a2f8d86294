using System.Text.Json;
using LlavaNative.Model.Templates;
using Xunit;

namespace LlavaNative.Tests.Templates;

public sealed class ChatTemplateApiTests
{
    // In the style of llava-hf templates: reads only typed parts.
    private const string PartsOnly =
        "{% for m in messages %}{{ m.role }}:{% for p in m.content | selectattr('type', 'equalto', 'text') %}{{ p.text }}{% endfor %};{% endfor %}";

    // In the style of text-only templates: prints content as a string.
    private const string StringOnly = "{% for m in messages %}{{ m.role }}:{{ m.content }};{% endfor %}{% if add_generation_prompt %}A:{% endif %}";

    [Fact]
    public void ProbesContentStyle()
    {
        Assert.Equal(ChatContentStyle.Parts, ChatTemplate.FromSource(PartsOnly).ContentStyle);
        Assert.Equal(ChatContentStyle.String, ChatTemplate.FromSource(StringOnly).ContentStyle);
        Assert.Equal(ChatContentStyle.Either, ChatTemplate.FromSource("{{ messages | length }}").ContentStyle);
    }

    [Fact]
    public void StringContentIsWrappedForPartsOnlyTemplates()
    {
        ChatTemplate t = ChatTemplate.FromSource(PartsOnly);
        Assert.Equal("user:Hi;", t.Render([ChatMessage.FromText("user", "Hi")]));
        Assert.Equal("user:;", t.RenderExactly([ChatMessage.FromText("user", "Hi")]));
    }

    [Fact]
    public void PartsAreFlattenedForStringOnlyTemplates()
    {
        ChatTemplate t = ChatTemplate.FromSource(StringOnly);
        Assert.Equal("user:<image>\n<image>\nCompare;A:", t.Render([ChatMessage.User("Compare", images: 2)], new ChatTemplateOptions { AddGenerationPrompt = true }));
        Assert.Equal("user:<__media__>\nX;", t.Render([ChatMessage.User("X", images: 1)], new ChatTemplateOptions { ImageMarker = "<__media__>" }));
    }

    [Fact]
    public void PassesTokensExtraVariablesAndMessageFields()
    {
        ChatTemplate t = ChatTemplate.FromSource(
            "{{ bos_token }}{% for m in messages %}{{ m.name ~ '@' if m.name is defined }}{{ m.content }}{{ eos_token }}{% endfor %}" +
            "{{ tools | map(attribute='name') | join(',') }}|{{ extra.flag }}|{{ unset_token }}");
        var message = ChatMessage.FromText("user", "hi", new Dictionary<string, object?> { ["name"] = "ann" });
        string rendered = t.Render([message], new ChatTemplateOptions
        {
            BosToken = "<s>",
            EosToken = "</s>",
            Variables = new Dictionary<string, object?>
            {
                ["tools"] = new object[] { new Dictionary<string, object?> { ["name"] = "a" }, new Dictionary<string, object?> { ["name"] = "b" } },
                ["extra"] = JsonDocument.Parse("{\"flag\": 1}").RootElement,
            },
        });
        Assert.Equal("<s>ann@hi</s>a,b|1|", rendered);
    }

    [Fact]
    public void StrftimeNowUsesTheGivenClock()
    {
        ChatTemplate t = ChatTemplate.FromSource("{{ strftime_now('%d %b %Y %H:%M:%S %A %B %j %-d %I%p %y %%') }}");
        string s = t.Render([], new ChatTemplateOptions { Clock = () => new DateTime(2024, 7, 5, 14, 3, 9) });
        Assert.Equal("05 Jul 2024 14:03:09 Friday July 187 5 02PM 24 %", s);
    }

    [Fact]
    public void ResolvesBuiltInsTemplateFilesAndJsonFiles()
    {
        Assert.Equal("llava-1.5", ChatTemplate.Resolve("llava-1.5").Name);
        string dir = Directory.CreateTempSubdirectory("llavanative-template-").FullName;
        try
        {
            string jinja = Path.Combine(dir, "t.jinja");
            File.WriteAllText(jinja, "{% for m in messages %}[{{ m.content }}]{% endfor %}\n");
            Assert.Equal("[x]", ChatTemplate.Resolve(jinja).RenderExactly([ChatMessage.FromText("user", "x")]));

            string json = Path.Combine(dir, "chat_template.json");
            File.WriteAllText(json, "{\"chat_template\": \"{{ messages[0].content | upper }}\"}");
            Assert.Equal("X", ChatTemplate.Resolve(json).RenderExactly([ChatMessage.FromText("user", "x")]));

            string notTemplate = Path.Combine(dir, "config.json");
            File.WriteAllText(notTemplate, "{\"model_type\": \"llava\"}");
            Assert.Contains("no string \"chat_template\"", Assert.Throws<FormatException>(() => ChatTemplate.Resolve(notTemplate)).Message);

            var missing = Assert.Throws<FileNotFoundException>(() => ChatTemplate.Resolve(Path.Combine(dir, "nope.jinja")));
            Assert.Contains("neither a built-in", missing.Message);
        }
        finally
        {
            Directory.Delete(dir, recursive: true);
        }
    }

    [Fact]
    public void ChoosePrefersRequestedThenEmbeddedThenFallback()
    {
        Assert.Equal("vicuna-v1", ChatTemplate.Choose("vicuna-v1", "{{ 'embedded' }}", "llava-1.5").Name);
        ChatTemplate embedded = ChatTemplate.Choose(null, "{{ 'embedded' }}", "llava-1.5");
        Assert.Equal("tokenizer.chat_template", embedded.Name);
        Assert.Equal("embedded", embedded.RenderExactly([]));
        Assert.Equal("llava-1.5", ChatTemplate.Choose("", "  ", "llava-1.5").Name);
    }

    [Fact]
    public void DictionaryOrderAndJsonNumbersAreKept()
    {
        var t = JinjaTemplate.Parse("{{ d | tojson }}|{{ j | tojson }}");
        var d = new Dictionary<string, object?> { ["z"] = 1, ["a"] = new[] { "x" }, ["m"] = null };
        using var j = JsonDocument.Parse("{\"b\": 1, \"a\": 1.0, \"c\": 2.5e-3, \"d\": [true, null]}");
        Assert.Equal("{\"z\": 1, \"a\": [\"x\"], \"m\": null}|{\"b\": 1, \"a\": 1.0, \"c\": 0.0025, \"d\": [true, null]}",
            t.Render(new Dictionary<string, object?> { ["d"] = d, ["j"] = j.RootElement }));
    }
}
