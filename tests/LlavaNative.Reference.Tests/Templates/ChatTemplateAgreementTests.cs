using System.Text.Json;
using LlavaNative.Model.Templates;
using Xunit;
using Xunit.Abstractions;

namespace LlavaNative.Reference.Tests.Templates;

/// <summary>Every case of <see cref="TemplateCorpus"/> rendered once by each reference (one process each).</summary>
public sealed class ReferenceRenderings
{
    public ReferenceRenderings()
    {
        Cases = TemplateCorpus.BuiltInCases().Concat(TemplateCorpus.RealWorldCases()).Concat(TemplateCorpus.PythonSemanticsCases())
            .Concat(TemplateCorpus.PublishedCases()).ToDictionary(c => c.Id);
        var forHuggingFace = Cases.Values.Where(c => c.CompareWithHuggingFaceJinja).ToList();
        (HuggingFaceVersion, var hf) = JinjaReferences.RenderWithHuggingFaceJinja(forHuggingFace.Select(c => (c.Template, c.Context)).ToList());
        HuggingFace = forHuggingFace.Zip(hf).ToDictionary(p => p.First.Id, p => p.Second);
        var all = Cases.Values.ToList();
        (PythonVersion, var py) = JinjaReferences.RenderWithPythonJinja2(all.Select(c => (c.Template, c.Context)).ToList());
        Python = all.Zip(py).ToDictionary(p => p.First.Id, p => p.Second);
    }

    public IReadOnlyDictionary<string, TemplateCase> Cases { get; }
    public string HuggingFaceVersion { get; }
    public IReadOnlyDictionary<string, ReferenceRender> HuggingFace { get; }
    public string PythonVersion { get; }
    public IReadOnlyDictionary<string, ReferenceRender> Python { get; }
}

/// <summary>
/// LlavaNative's chat-template renderer against @huggingface/jinja (byte-identical output, or both failing) on the
/// built-in templates × conversations and on real-world-shaped templates; and against Python's Jinja2 set up as
/// transformers does, on those and on the cases where @huggingface/jinja departs from Python.
/// </summary>
public sealed class ChatTemplateAgreementTests(ReferenceRenderings references, ITestOutputHelper output) : IClassFixture<ReferenceRenderings>
{
    public static TheoryData<string> HuggingFaceCases() =>
        new(TemplateCorpus.BuiltInCases().Concat(TemplateCorpus.RealWorldCases()).Select(c => c.Id));

    public static TheoryData<string> AllCases() =>
        new(TemplateCorpus.BuiltInCases().Concat(TemplateCorpus.RealWorldCases()).Concat(TemplateCorpus.PythonSemanticsCases()).Select(c => c.Id));

    public static TheoryData<string> PublishedCases() => new(TemplateCorpus.PublishedCases().Select(c => c.Id));

    [Theory]
    [MemberData(nameof(PublishedCases))]
    public void PublishedTemplateMatchesPythonJinja2(string id) =>
        AssertAgrees(references.Cases[id], references.Python[id], "Python Jinja2 " + references.PythonVersion, raisedPrefix: "TemplateRaised: ");

    /// <summary>
    /// On published templates @huggingface/jinja sometimes departs from Python's Jinja2 (it prints a dict as JSON
    /// where Python prints its repr, adds a str to a dict, lacks some filters, rejects ops on undefined values).
    /// Where the two references agree, ours must match @huggingface/jinja byte for byte; where they disagree,
    /// ours must match Python (transformers' renderer) and the case is listed by <see cref="ReferenceDisagreementsOnPublishedTemplates"/>.
    /// </summary>
    [Theory]
    [MemberData(nameof(PublishedCases))]
    public void PublishedTemplateMatchesHuggingFaceJinjaWhereTheReferencesAgree(string id)
    {
        ReferenceRender hf = references.HuggingFace[id], python = references.Python[id];
        if (ReferencesAgree(hf, python))
            AssertAgrees(references.Cases[id], hf, "@huggingface/jinja " + references.HuggingFaceVersion, raisedPrefix: "");
        else
            AssertAgrees(references.Cases[id], python, "Python Jinja2 " + references.PythonVersion + " (the references disagree)", raisedPrefix: "TemplateRaised: ");
    }

    [Fact]
    public void ReferenceDisagreementsOnPublishedTemplates()
    {
        var disagreements = TemplateCorpus.PublishedCases().Select(c => c.Id)
            .Where(id => !ReferencesAgree(references.HuggingFace[id], references.Python[id])).ToList();
        foreach (string id in disagreements)
        {
            ReferenceRender hf = references.HuggingFace[id], python = references.Python[id];
            output.WriteLine($"{id}: @huggingface/jinja {(hf.Error is null ? "renders" : "fails: " + hf.Error)}; " +
                             $"Python {(python.Error is null ? "renders" : "fails: " + python.Error)}");
        }
        // Most published templates render identically in both; the rest are known departures of the JS port.
        Assert.True(disagreements.Count * 4 < TemplateCorpus.PublishedCases().Count(), $"{disagreements.Count} disagreements");
    }

    private static bool ReferencesAgree(ReferenceRender a, ReferenceRender b) =>
        a.Text is not null ? a.Text == b.Text : b.Text is null;

    [Fact]
    public void HuggingFaceJinjaIsThePinnedVersion() =>
        Assert.StartsWith(JinjaReferences.HuggingFaceJinjaVersionPrefix, references.HuggingFaceVersion);

    [Theory]
    [MemberData(nameof(HuggingFaceCases))]
    public void MatchesHuggingFaceJinja(string id) =>
        AssertAgrees(references.Cases[id], references.HuggingFace[id], "@huggingface/jinja " + references.HuggingFaceVersion, raisedPrefix: "");

    [Theory]
    [MemberData(nameof(AllCases))]
    public void MatchesPythonJinja2(string id) =>
        AssertAgrees(references.Cases[id], references.Python[id], "Python Jinja2 " + references.PythonVersion, raisedPrefix: "TemplateRaised: ");

    [Fact]
    public void CorpusCoversSuccessesAndFailures()
    {
        // Guard against a corpus where everything fails the same way on both sides.
        Assert.True(references.HuggingFace.Values.Count(r => r.Text is not null) >= 100);
        Assert.Contains(references.HuggingFace.Values, r => r.Error is not null);
        Assert.True(references.Python.Values.Count(r => r.Text is not null) >= 130);
    }

    private static void AssertAgrees(TemplateCase c, ReferenceRender reference, string referenceName, string raisedPrefix)
    {
        string? ours = null;
        TemplateException? error = null;
        try
        {
            ours = c.RenderOurs is not null ? c.RenderOurs() : RenderFromJson(c);
        }
        catch (TemplateException e)
        {
            error = e;
        }

        if (reference.Text is not null)
        {
            Assert.True(error is null, $"{c.Id}: {referenceName} renders it, ours fails: {error?.Message}\nreference: {Show(reference.Text)}");
            if (ours != reference.Text) Assert.Fail($"{c.Id}: differs from {referenceName}\n{Difference(reference.Text, ours!)}");
            return;
        }
        Assert.True(error is not null, $"{c.Id}: {referenceName} fails ({reference.Error}), ours renders {Show(ours!)}");
        if (error!.RaisedByTemplate)
            Assert.Equal(raisedPrefix + error.Problem, reference.Error);
    }

    private static string RenderFromJson(TemplateCase c)
    {
        var variables = new Dictionary<string, object?>();
        foreach (var (name, node) in c.Context)
            variables[name] = node is null ? null : JsonDocument.Parse(node.ToJsonString()).RootElement.Clone();
        return JinjaTemplate.Parse(c.Template, c.Id).Render(variables);
    }

    private static string Show(string s) => JsonSerializer.Serialize(s);

    private static string Difference(string expected, string actual)
    {
        int i = 0;
        while (i < expected.Length && i < actual.Length && expected[i] == actual[i]) i++;
        int from = Math.Max(0, i - 40);
        return $"first difference at {i}:\n  expected …{Show(expected[from..Math.Min(expected.Length, i + 40)])}\n  actual   …{Show(actual[from..Math.Min(actual.Length, i + 40)])}" +
               $"\nexpected: {Show(expected)}\nactual:   {Show(actual)}";
    }
}
