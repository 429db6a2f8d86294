using System.Diagnostics;
using System.Text.Json;
using LlavaNative.TestSupport;

namespace LlavaNative.Reference.Tests.Tokenizers.HuggingFace;

/// <summary>Which Hugging Face implementation tokenizes.</summary>
public enum HuggingFaceEngine
{
    /// <summary>npm <c>tokenizers</c>: the Rust library behind Python's <c>tokenizers</c> / PreTrainedTokenizerFast.</summary>
    Rust,

    /// <summary>npm <c>@huggingface/tokenizers</c>: the pure JavaScript implementation (transformers.js).</summary>
    JavaScript,
}

/// <summary>
/// Runs hf-tokenizers-reference.cjs with node on a tokenizer.json: ids with and without special tokens for each
/// text, and the decoded text of id lists. The npm packages come from tools/install-reference.sh; when they are
/// missing the test fails with a message saying so.
/// </summary>
public static class HuggingFaceTokenizersReference
{
    /// <summary>One reference run on one tokenizer.json.</summary>
    public sealed record Job(HuggingFaceEngine Engine, string Folder, IReadOnlyList<string> Texts, IReadOnlyList<int[]>? Decode = null,
        bool DecodeOwn = false, bool Tokens = false);

    public sealed record Encoded(int[] WithSpecial, int[] Plain, string?[]? WithSpecialTokens, string?[]? PlainTokens);

    public sealed record Decoded(string Keep, string Skip);

    public sealed record Result(Encoded[] Encodings, Decoded[] Decoded, Decoded[] DecodedOwn);

    private sealed record Response(Result[] Jobs);

    public static string ModulesDirectory
    {
        get
        {
            string modules = Path.Combine(ReferencePaths.Root, "node_modules");
            foreach (string package in new[] { "tokenizers/index.js", "@huggingface/tokenizers/package.json" })
            {
                if (!File.Exists(Path.Combine(modules, package)))
                    throw new InvalidOperationException(
                        $"reference not installed: {Path.Combine(modules, package)} is missing; run tools/install-reference.sh " +
                        "(it installs the npm packages tokenizers@0.23.2 and @huggingface/tokenizers@0.2.0)");
            }
            return modules;
        }
    }

    /// <summary>Runs the jobs in one node process (each job loads its tokenizer once).</summary>
    public static Result[] Run(params Job[] jobs)
    {
        string script = Path.Combine(AppContext.BaseDirectory, "Tokenizers", "HuggingFace", "hf-tokenizers-reference.cjs");
        if (!File.Exists(script))
            throw new InvalidOperationException($"{script} is missing (it is copied next to the test assembly by the project file)");
        string request = Path.Combine(Path.GetTempPath(), $"llavanative-hftok-request-{Environment.ProcessId}-{Guid.NewGuid():N}.json");
        File.WriteAllText(request, JsonSerializer.Serialize(new
        {
            modules = ModulesDirectory,
            jobs = jobs.Select(j => new
            {
                engine = j.Engine == HuggingFaceEngine.Rust ? "rust" : "js",
                tokenizer = Path.Combine(j.Folder, "tokenizer.json"),
                config = Path.Combine(j.Folder, "tokenizer_config.json"),
                texts = j.Texts,
                decode = j.Decode ?? [],
                decodeOwn = j.DecodeOwn,
                tokens = j.Tokens,
            }),
        }));
        try
        {
            var start = new ProcessStartInfo("node", [script, request])
            {
                RedirectStandardOutput = true,
                RedirectStandardError = true,
                UseShellExecute = false,
            };
            Process process;
            try
            {
                process = Process.Start(start)!;
            }
            catch (System.ComponentModel.Win32Exception e)
            {
                throw new InvalidOperationException("node is not installed (needed for the Hugging Face tokenizers reference; apt-get install nodejs npm, then run tools/install-reference.sh)", e);
            }
            using (process)
            {
                Task<string> stderr = process.StandardError.ReadToEndAsync();
                string stdout = process.StandardOutput.ReadToEnd();
                process.WaitForExit();
                if (process.ExitCode != 0)
                    throw new InvalidOperationException($"node {Path.GetFileName(script)} failed with exit code {process.ExitCode}: {stderr.Result}");
                var response = JsonSerializer.Deserialize<Response>(stdout, new JsonSerializerOptions { PropertyNameCaseInsensitive = true })
                    ?? throw new InvalidOperationException("the reference printed nothing");
                return response.Jobs;
            }
        }
        finally
        {
            File.Delete(request);
        }
    }
}
