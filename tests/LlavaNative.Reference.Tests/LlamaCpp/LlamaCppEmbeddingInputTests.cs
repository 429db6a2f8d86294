using LlavaNative.TestSupport;
using LlavaNative.TestSupport.LlamaCpp;
using Xunit;

namespace LlavaNative.Reference.Tests.LlamaCpp;

/// <summary>The batch.embd path (how image features will be injected) behaves like token input.</summary>
public class LlamaCppEmbeddingInputTests
{
    [Fact]
    public void TokenEmbeddingRows_FedAsEmbeddings_GiveTheSameLogitsAsTheTokens()
    {
        RandomModelSpec spec = RandomModelSpec.Tiny(RandomModelArchitecture.Qwen2, RandomModelVocabulary.Synthetic);
        string path = RandomModels.GetPath(spec);
        using LlamaCppModel model = LlamaCppModel.Load(path);
        int[] tokens = model.Tokenize("embeddings in, logits out", addSpecial: true, parseSpecial: false);
        int d = model.EmbeddingLength;

        // Rows of token_embd (F32, ne = [d, vocab]) read straight from the file, located by ggml's reader.
        float[] table;
        using (var g = GgmlGgufReader.Open(path))
        {
            long id = g.FindTensor("token_embd.weight");
            byte[] file = File.ReadAllBytes(path);
            table = System.Runtime.InteropServices.MemoryMarshal.Cast<byte, float>(
                file.AsSpan((int)(g.DataOffset + g.TensorOffset(id)), (int)g.TensorSize(id))).ToArray();
        }
        float[] Rows(ReadOnlySpan<int> ids)
        {
            var e = new float[ids.Length * d];
            for (int i = 0; i < ids.Length; i++)
                table.AsSpan(ids[i] * d, d).CopyTo(e.AsSpan(i * d));
            return e;
        }

        float[][] byToken = model.EvalLogits(tokens);
        float[][] byEmbedding = model.EvalLogits(LlamaInput.Embeddings(Rows(tokens), d));
        // Text, then "image" embeddings, then text again: one causal sequence over consecutive positions.
        float[][] mixed = model.EvalLogits(
            LlamaInput.Tokens(tokens[..2]),
            LlamaInput.Embeddings(Rows(tokens.AsSpan(2, 3)), d),
            LlamaInput.Tokens(tokens[5..]));

        Assert.Equal(tokens.Length, byEmbedding.Length);
        Assert.Equal(tokens.Length, mixed.Length);
        for (int t = 0; t < tokens.Length; t++)
        {
            Assert.True(MaxAbsDiff(byToken[t], byEmbedding[t]) < 1e-4, $"position {t}: embedding input differs");
            Assert.True(MaxAbsDiff(byToken[t], mixed[t]) < 1e-4, $"position {t}: mixed input differs");
        }

        // A row that is not a token's embedding changes everything after it, so the embeddings really are used.
        float[] altered = Rows(tokens);
        altered[3 * d] += 5f;
        float[][] changed = model.EvalLogits(LlamaInput.Embeddings(altered, d));
        Assert.True(MaxAbsDiff(byToken[2], changed[2]) < 1e-4);
        Assert.True(MaxAbsDiff(byToken[3], changed[3]) > 1e-2);
    }

    private static double MaxAbsDiff(float[] a, float[] b) => Models.RandomModelTests.MaxAbsDiff(a, b);
}
