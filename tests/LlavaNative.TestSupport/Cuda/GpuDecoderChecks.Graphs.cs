using LlavaNative.Kernels.Cuda;
using LlavaNative.Kernels.Tensors;
using LlavaNative.Model.Language;

namespace LlavaNative.TestSupport.Cuda;

/// <summary>
/// Decode steps replayed from a captured graph (<see cref="GpuDecoder.UseGraphs"/>) against the same decoder with
/// direct launches (every logit the same bits, the same tokens) and against the CPU <see cref="DecoderModel"/>
/// (within <see cref="LogitTolerance"/>), through what moves the position under a captured graph: a prompt whose last
/// batch is one token, greedy steps, a second prompt in the middle of a conversation, Truncate, Reset, and two states
/// of one decoder decoding in turns (each its own graph).
/// </summary>
public static unsafe partial class GpuDecoderChecks
{
    public static GpuCheckResult GraphDecode(IGpuDevice device, RandomModelArchitecture architecture, int seed, KvCacheType cacheType = KvCacheType.F32)
    {
        string name = $"decoder {architecture.ToString().ToLowerInvariant()} graph decode vs direct launches" + (cacheType == KvCacheType.F16 ? " f16 cache" : "");
        if (!device.SupportsGraphs) throw new NotSupportedException($"{name}: {device.Name} does not capture graphs");
        using var model = LoadModel(architecture, null);
        var config = model.Config;
        int vocab = config.VocabSize;
        var rng = new Random(seed);
        int[] Tokens(int n)
        {
            var t = new int[n];
            for (int i = 0; i < n; i++) t[i] = rng.Next(vocab);
            return t;
        }

        using var graphs = new GpuDecoder(device, config, model.Weights) { UseGraphs = true };
        using var direct = new GpuDecoder(device, config, model.Weights) { UseGraphs = false };
        // Conversation A and B: a CPU state, a state of the graph decoder, a state of the direct decoder each.
        using var cpuA = model.CreateState(64, maxBatch: 8, cacheType: cacheType);
        using var cpuB = model.CreateState(64, maxBatch: 8, cacheType: cacheType);
        using var graphA = graphs.CreateState(64, maxBatch: 8, cacheType);
        using var graphB = graphs.CreateState(64, maxBatch: 8, cacheType);
        using var directA = direct.CreateState(64, maxBatch: 8, cacheType);
        using var directB = direct.CreateState(64, maxBatch: 8, cacheType);

        var tally = CacheTally(name, cacheType);
        int steps = 0, bitMismatches = 0;
        string firstMismatch = "";
        var graphLogits = new float[vocab];
        var directLogits = new float[vocab];

        void CompareBits(string where, ReadOnlySpan<float> a, ReadOnlySpan<float> b)
        {
            for (int i = 0; i < a.Length; i++)
            {
                if (BitConverter.SingleToInt32Bits(a[i]) == BitConverter.SingleToInt32Bits(b[i])) continue;
                if (bitMismatches++ == 0) firstMismatch = $"{where}, logit {i}: graph {a[i]:R}, direct {b[i]:R}";
            }
        }

        // A prompt: all logits from the three; returns the CPU's greedy next token.
        int Prompt(string where, DecoderState cpu, GpuDecoderState g, GpuDecoderState d, int[] prompt)
        {
            var expected = new float[prompt.Length * vocab];
            var fromGraphs = new float[expected.Length];
            var fromDirect = new float[expected.Length];
            model.Forward(cpu, prompt, LogitsMode.All, expected);
            graphs.Forward(g, prompt, LogitsMode.All, fromGraphs);
            direct.Forward(d, prompt, LogitsMode.All, fromDirect);
            tally.Logits(where, fromGraphs, expected, vocab);
            CompareBits(where, fromGraphs, fromDirect);
            return ArgMax(expected.AsSpan((prompt.Length - 1) * vocab, vocab));
        }

        // Greedy steps from `next`: ForwardGreedy on A's states, Forward (logits copied back) on B's, so both APIs
        // go through the graph.
        int Decode(string where, DecoderState cpu, GpuDecoderState g, GpuDecoderState d, int next, int count)
        {
            for (int i = 0; i < count; i++)
            {
                int[] one = [next];
                float[] want = model.Forward(cpu, one).ToArray();
                int graphNext, directNext;
                if (g == graphA)
                {
                    graphNext = graphs.ForwardGreedy(g, one);
                    device.Download<float>(graphLogits, g.Logits.Pointer);
                    directNext = direct.ForwardGreedy(d, one);
                    device.Download<float>(directLogits, d.Logits.Pointer);
                }
                else
                {
                    graphs.Forward(g, one).CopyTo(graphLogits);
                    direct.Forward(d, one).CopyTo(directLogits);
                    graphNext = ArgMax(graphLogits);
                    directNext = ArgMax(directLogits);
                }
                string at = $"{where} step {i} (position {cpu.Position - 1})";
                tally.Logits(at, graphLogits, want, vocab);
                CompareBits(at, graphLogits, directLogits);
                if (graphNext != directNext) tally.Fail($"{at}: graph token {graphNext}, direct token {directNext}");
                tally.Greedy(steps++, graphNext, want);
                next = ArgMax(want);
            }
            return next;
        }

        // A: 9 tokens in batches of 8 + 1 (the single-row batch takes the decode-step launches, position from the
        // device, no graph), then 6 steps: the first direct (the kernels' first use), the rest captured and replayed.
        int nextA = Prompt("A prompt", cpuA, graphA, directA, Tokens(9));
        nextA = Decode("A decode", cpuA, graphA, directA, nextA, 6);
        if (!graphA.HasDecodeGraph) tally.Fail("A: no graph was captured by the decode steps");
        if (directA.HasDecodeGraph) tally.Fail("A: the decoder with UseGraphs off captured a graph");

        // B on the same decoder: its own graph, captured at its first step; steps in turns with A.
        int nextB = Prompt("B prompt", cpuB, graphB, directB, Tokens(5));
        for (int turn = 0; turn < 3; turn++)
        {
            nextB = Decode($"B turn {turn}", cpuB, graphB, directB, nextB, 2);
            nextA = Decode($"A turn {turn}", cpuA, graphA, directA, nextA, 2);
        }
        if (!graphB.HasDecodeGraph) tally.Fail("B: no graph was captured by its decode steps");

        // A second prompt in A's conversation (a prefill batch at position 21), then more replays.
        Prompt("A second prompt", cpuA, graphA, directA, Tokens(3));
        nextA = Decode("A after the second prompt", cpuA, graphA, directA, Tokens(1)[0], 3);

        // Truncate A by 5 positions (the graph is kept: the position lives on the device) and decode new tokens there.
        int keep = cpuA.Position - 5;
        cpuA.Truncate(keep);
        graphA.Truncate(keep);
        directA.Truncate(keep);
        Decode("A after Truncate", cpuA, graphA, directA, Tokens(1)[0], 4);

        // Reset B, a new 3-token prompt, decode.
        cpuB.Reset();
        graphB.Reset();
        directB.Reset();
        nextB = Prompt("B after Reset", cpuB, graphB, directB, Tokens(3));
        Decode("B after Reset", cpuB, graphB, directB, nextB, 4);

        if (graphA.Position != cpuA.Position || graphB.Position != cpuB.Position)
            tally.Fail($"positions differ: A graph {graphA.Position} / CPU {cpuA.Position}, B graph {graphB.Position} / CPU {cpuB.Position}");
        if (bitMismatches > 0) tally.Fail($"{bitMismatches} logits differ in bits between graph replay and direct launches; first: {firstMismatch}");
        return tally.Result($"two conversations, {steps} decode steps (graph replays vs direct launches: {bitMismatches} logits differ in bits)");
    }
}
