using System.Diagnostics;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using LlavaNative.TestSupport;

namespace LlavaNative.Reference.Tests.Templates;

/// <summary>A reference's rendering of one case: the text, or the error it raised.</summary>
public sealed record ReferenceRender(string? Text, string? Error);

/// <summary>
/// Runs the independent Jinja renderers on a batch of (template, context) cases, in one process each:
/// <list type="bullet">
/// <item>@huggingface/jinja (npm, installed by tools/install-reference.sh) with node, via render-huggingface-jinja.mjs;</item>
/// <item>Python's Jinja2 set up like transformers (python3-jinja2, installed by tools/install-test-deps.sh), via
/// render-python-jinja2.py.</item>
/// </list>
/// A missing reference fails with the script that installs it; it never skips.
/// </summary>
public static class JinjaReferences
{
    public const string HuggingFaceJinjaVersionPrefix = "0.5.";

    private static string ScriptDirectory
    {
        get
        {
            for (DirectoryInfo? d = new(AppContext.BaseDirectory); d is not null; d = d.Parent)
            {
                string candidate = Path.Combine(d.FullName, "tests", "LlavaNative.Reference.Tests", "Templates");
                if (File.Exists(Path.Combine(d.FullName, "LlavaNative.sln")) && Directory.Exists(candidate)) return candidate;
            }
            throw new InvalidOperationException($"cannot find the repository (LlavaNative.sln) above {AppContext.BaseDirectory}");
        }
    }

    public static (string Version, IReadOnlyList<ReferenceRender> Results) RenderWithHuggingFaceJinja(IReadOnlyList<(string Template, JsonObject Context)> cases)
    {
        string package = Path.Combine(ReferencePaths.Root, "node_modules", "@huggingface", "jinja", "dist", "index.js");
        if (!File.Exists(package))
            throw new InvalidOperationException($"reference not installed: {package} is missing; run tools/install-reference.sh");
        return Run("node", [Path.Combine(ScriptDirectory, "render-huggingface-jinja.mjs"), ReferencePaths.Root], cases,
            "node is required for the @huggingface/jinja reference (apt-get install nodejs; then run tools/install-reference.sh)");
    }

    public static (string Version, IReadOnlyList<ReferenceRender> Results) RenderWithPythonJinja2(IReadOnlyList<(string Template, JsonObject Context)> cases) =>
        Run("/usr/bin/python3", [Path.Combine(ScriptDirectory, "render-python-jinja2.py")], cases,
            "Python's Jinja2 reference needs /usr/bin/python3 with python3-jinja2; run tools/install-test-deps.sh");

    private static (string, IReadOnlyList<ReferenceRender>) Run(string program, string[] arguments, IReadOnlyList<(string Template, JsonObject Context)> cases, string installHint)
    {
        var input = new JsonArray();
        foreach (var (template, context) in cases)
            input.Add(new JsonObject { ["template"] = template, ["context"] = context.DeepClone() });

        var start = new ProcessStartInfo(program)
        {
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
            StandardInputEncoding = new UTF8Encoding(false),
            StandardOutputEncoding = Encoding.UTF8,
        };
        foreach (string a in arguments) start.ArgumentList.Add(a);
        Process process;
        try
        {
            process = Process.Start(start) ?? throw new InvalidOperationException($"could not start {program}");
        }
        catch (System.ComponentModel.Win32Exception e)
        {
            throw new InvalidOperationException($"{program} not found: {installHint}", e);
        }
        using (process)
        {
            var stdout = process.StandardOutput.ReadToEndAsync();
            var stderr = process.StandardError.ReadToEndAsync();
            process.StandardInput.Write(input.ToJsonString());
            process.StandardInput.Close();
            process.WaitForExit();
            if (process.ExitCode != 0)
                throw new InvalidOperationException($"{program} {string.Join(' ', arguments)} failed ({process.ExitCode}): {stderr.Result.Trim()}\n{installHint}");
            using JsonDocument output = JsonDocument.Parse(stdout.Result);
            string version = output.RootElement.GetProperty("version").GetString()!;
            var results = output.RootElement.GetProperty("results").EnumerateArray()
                .Select(r => r.TryGetProperty("text", out JsonElement t)
                    ? new ReferenceRender(t.GetString(), null)
                    : new ReferenceRender(null, r.GetProperty("error").GetString()))
                .ToList();
            if (results.Count != cases.Count) throw new InvalidOperationException($"{program} returned {results.Count} results for {cases.Count} cases");
            return (version, results);
        }
    }
}
