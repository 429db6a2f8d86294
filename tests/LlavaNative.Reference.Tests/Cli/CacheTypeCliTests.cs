using System.Text.Json;
using LlavaNative.TestSupport;
using LlavaNative.TestSupport.Llava;
using Xunit;
using Xunit.Abstractions;
using static LlavaNative.Reference.Tests.Cli.CliContractTests;

namespace LlavaNative.Reference.Tests.Cli;

/// <summary>
/// <c>--cache-type f32|f16</c> as the `llava` child process sees it: bench reports the type and the KV cache bytes (F16:
/// exactly half of F32, 2 · layers · positions · kv_dim · 2), the inference verbs accept and document it, eval with an
/// F16 cache writes logits near the F32 ones, and a bad value is a usage error (exit 2) naming the choices.
/// </summary>
public sealed class CacheTypeCliTests(ITestOutputHelper output)
{
    private static string Text => RandomModels.GetPath(LlavaFixtures.LlamaSynthetic);

    [Fact]
    public void BenchReportsTheCacheTypeAndItsBytes_EvalTakesIt_BadValueIsAUsageError()
    {
        long Bytes(string type, out string reported)
        {
            var (exit, stdout, err) = RunCli("bench", "-m", Text, "-p", "4", "-n", "2", "--reps", "1", "-t", "1", "--json", "--backend", "cpu",
                "--cache-type", type);
            Assert.True(exit == 0, err);
            var json = JsonDocument.Parse(stdout).RootElement;
            reported = json.GetProperty("cache_type").GetString()!;
            return json.GetProperty("kv_cache_bytes").GetInt64();
        }
        long f32 = Bytes("f32", out string t32), f16 = Bytes("f16", out string t16);
        output.WriteLine($"KV cache bytes: f32 {f32}, f16 {f16}");
        Assert.Equal("f32", t32);
        Assert.Equal("f16", t16);
        Assert.Equal(f32, 2 * f16);

        foreach (string verb in new[] { "run", "chat", "eval", "bench" })
        {
            var (exit, stdout, _) = RunCli(verb, "--help");
            Assert.Equal(0, exit);
            Assert.Contains("--cache-type f32|f16", stdout);
        }

        string dir = Directory.CreateTempSubdirectory("llava-cache-type").FullName;
        try
        {
            string a = Path.Combine(dir, "f32.npy"), b = Path.Combine(dir, "f16.npy");
            foreach (var (type, file) in new[] { ("f32", a), ("f16", b) })
            {
                var (exit, _, err) = RunCli("eval", "-m", Text, "--tokens", "1,17,42,99,7,300,5", "--logits-out", file, "-t", "1", "--backend", "cpu",
                    "--cache-type", type);
                Assert.True(exit == 0, err);
            }
            float[] x = NpyFloats(a), y = NpyFloats(b);
            Assert.Equal(x.Length, y.Length);
            double maxAbs = x.Zip(y, (p, q) => Math.Abs(p - q)).Max();
            output.WriteLine($"eval logits, f16 vs f32 cache: max abs {maxAbs:E2}");
            Assert.True(maxAbs > 0 && maxAbs < 2e-2, $"max abs {maxAbs}");
        }
        finally { Directory.Delete(dir, recursive: true); }

        var (code, _, error) = RunCli("run", "-m", Text, "-p", "x", "--cache-type", "q8_0");
        Assert.Equal(2, code);
        Assert.Contains("--cache-type 'q8_0' is not one of f32, f16", error);
    }

    /// <summary>The float32 payload of a .npy file written by NpyFile.WriteFloat32 (little-endian '&lt;f4', C order).</summary>
    private static float[] NpyFloats(string path)
    {
        byte[] bytes = File.ReadAllBytes(path);
        int headerLength = bytes[8] | (bytes[9] << 8);
        int start = 10 + headerLength;
        Assert.Contains("'<f4'", System.Text.Encoding.ASCII.GetString(bytes, 10, headerLength));
        var result = new float[(bytes.Length - start) / 4];
        Buffer.BlockCopy(bytes, start, result, 0, result.Length * 4);
        return result;
    }
}
