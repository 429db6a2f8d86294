namespace LlavaNative.Model.Tokenizers.HuggingFace;

/// <summary>
/// A tokenizer.json <c>post_processor</c>, reduced to what it does to a single sequence when special tokens are
/// added: the ids that go before and after it (TemplateProcessing's <c>single</c> template, RoBERTa/BERT's
/// cls … sep). ByteLevel post-processing only trims offsets, which we do not track.
/// </summary>
internal abstract class PostProcessor
{
    /// <summary>Marks where the sequence goes in <see cref="Wrap"/>'s result.</summary>
    public const int SequenceMarker = -1;

    /// <summary>The layout of a single sequence after this processor: ids with <see cref="SequenceMarker"/> for the text.</summary>
    public abstract List<int> Wrap(List<int> inner);

    public static PostProcessor? Parse(TokenizerJsonReader json)
    {
        if (json.IsNull)
            return null;
        string type = json.Type();
        return type switch
        {
            "TemplateProcessing" => TemplatePostProcessor.FromJson(json),
            "RobertaProcessing" or "BertProcessing" => new SurroundPostProcessor(IdOf(json["cls"]), IdOf(json["sep"])),
            "ByteLevel" => new IdentityPostProcessor(),
            "Sequence" => new SequencePostProcessor(json["processors"].Items()
                .Select(p => Parse(p) ?? throw p.Error("is null, expected a post-processor")).ToArray()),
            _ => throw new NotSupportedException($"{json.File}: {json.Path}: post-processor type '{type}' is not supported; supported: TemplateProcessing, RobertaProcessing, BertProcessing, ByteLevel, Sequence"),
        };
    }

    /// <summary>RoBERTa/BERT's ["&lt;s&gt;", 0] pairs: the id is the second element.</summary>
    private static int IdOf(TokenizerJsonReader pair)
    {
        var items = pair.Items().ToArray();
        if (items.Length != 2)
            throw pair.Error("is not a [token, id] pair");
        return items[1].Int();
    }
}

internal sealed class IdentityPostProcessor : PostProcessor
{
    public override List<int> Wrap(List<int> inner) => inner;
}

/// <summary>cls, the sequence, sep (RobertaProcessing and BertProcessing).</summary>
internal sealed class SurroundPostProcessor(int cls, int sep) : PostProcessor
{
    public override List<int> Wrap(List<int> inner) => [cls, .. inner, sep];
}

/// <summary>TemplateProcessing's <c>single</c> template: special tokens (each one or more ids) around <c>$A</c>.</summary>
internal sealed class TemplatePostProcessor(List<int> template) : PostProcessor
{
    public static TemplatePostProcessor FromJson(TokenizerJsonReader json)
    {
        var specialIds = new Dictionary<string, int[]>(StringComparer.Ordinal);
        if (!json["special_tokens"].IsNull)
        {
            foreach (var (name, value) in json["special_tokens"].Members())
                specialIds[name] = value["ids"].Items().Select(i => i.Int()).ToArray();
        }

        var template = new List<int>();
        foreach (var piece in json["single"].Items())
        {
            if (piece.Has("Sequence"))
            {
                // "A" is the text; a single-sequence template has no "B"
                string id = piece["Sequence"]["id"].String();
                if (id != "A")
                    throw piece.Error($"names sequence {id} in the single-sequence template");
                template.Add(SequenceMarker);
            }
            else if (piece.Has("SpecialToken"))
            {
                string name = piece["SpecialToken"]["id"].String();
                if (!specialIds.TryGetValue(name, out int[]? ids))
                    throw piece.Error($"names special token '{name}', which post_processor.special_tokens does not define");
                template.AddRange(ids);
            }
            else
            {
                throw piece.Error("is neither a Sequence nor a SpecialToken piece");
            }
        }
        return new TemplatePostProcessor(template);
    }

    public override List<int> Wrap(List<int> inner)
    {
        var result = new List<int>();
        foreach (int item in template)
        {
            if (item == SequenceMarker)
                result.AddRange(inner);
            else
                result.Add(item);
        }
        return result;
    }
}

/// <summary>Processors applied in order, each to the output of the one before.</summary>
internal sealed class SequencePostProcessor(PostProcessor[] processors) : PostProcessor
{
    public override List<int> Wrap(List<int> inner)
    {
        foreach (var processor in processors)
            inner = processor.Wrap(inner);
        return inner;
    }
}
