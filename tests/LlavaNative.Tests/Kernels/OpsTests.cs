using System.Runtime.InteropServices;
using LlavaNative.Kernels.Cpu;
using LlavaNative.Kernels.Cpu.Ops;
using Xunit;

namespace LlavaNative.Tests.Kernels;

/// <summary>Float kernels against scalar/float64 references on random inputs of awkward sizes.</summary>
public sealed unsafe class OpsTests
{
    private static float[] RandomFloats(Random r, int n, float scale = 1f)
    {
        var a = new float[n];
        for (int i = 0; i < n; i++) a[i] = (float)(r.NextDouble() * 2 - 1) * scale;
        return a;
    }

    public static TheoryData<int> AwkwardLengths => new() { 1, 3, 7, 8, 15, 16, 17, 31, 33, 63, 64, 65, 127, 255, 257, 896, 1001 };

    [Theory, MemberData(nameof(AwkwardLengths))]
    public void FloatDotMatchesFloat64(int n)
    {
        var r = new Random(n);
        var a = RandomFloats(r, n);
        var b = RandomFloats(r, n);
        double exact = 0;
        for (int i = 0; i < n; i++) exact += (double)a[i] * b[i];
        fixed (float* pa = a, pb = b)
        {
            float got = FloatDot.Dot(pa, pb, n);
            Assert.True(Math.Abs(got - exact) <= 1e-5 * n, $"n={n}: {got} vs {exact}");
        }
    }

    [Theory, MemberData(nameof(AwkwardLengths))]
    public void RmsNormMatchesScalar(int n)
    {
        var r = new Random(100 + n);
        var x = RandomFloats(r, n, 3f);
        var w = RandomFloats(r, n);
        var y1 = new float[n];
        var y2 = new float[n];
        fixed (float* px = x, pw = w, p1 = y1, p2 = y2)
        {
            RmsNorm.Apply(px, pw, p1, n, 1e-5f);
            RmsNorm.ApplyScalar(px, pw, p2, n, 1e-5f);
        }
        // Independent float64 formula.
        double ss = 0;
        foreach (var v in x) ss += (double)v * v;
        double scale = 1 / Math.Sqrt(ss / n + 1e-5);
        for (int i = 0; i < n; i++)
        {
            Assert.Equal(y2[i], y1[i], 1e-6f * Math.Max(1, Math.Abs(y2[i])));
            Assert.Equal(x[i] * scale * w[i], y1[i], 1e-5 * Math.Max(1, Math.Abs(y1[i])));
        }
    }

    [Theory, MemberData(nameof(AwkwardLengths))]
    public void SiluMulMatchesScalar(int n)
    {
        var r = new Random(200 + n);
        var g = RandomFloats(r, n, 8f);
        var u = RandomFloats(r, n);
        var g2 = (float[])g.Clone();
        fixed (float* pg = g, pu = u, pg2 = g2)
        {
            Elementwise.SiluMul(pg, pu, n);
            Elementwise.SiluMulScalar(pg2, pu, n);
        }
        for (int i = 0; i < n; i++) Assert.Equal(g2[i], g[i], 2e-6f * Math.Max(1, Math.Abs(g2[i])));
    }

    [Theory]
    [InlineData(64, 64, RopeMode.Normal, 10000f)]
    [InlineData(64, 64, RopeMode.Neox, 1000000f)]
    [InlineData(80, 32, RopeMode.Neox, 10000f)] // partial rotary: last 48 dims untouched
    [InlineData(128, 128, RopeMode.Normal, 500000f)]
    public void RopeMatchesFloat64Rotation(int headDim, int ropeDims, RopeMode mode, float freqBase)
    {
        const int heads = 3, tokens = 5, start = 1000;
        var r = new Random(headDim + ropeDims);
        var x = RandomFloats(r, tokens * heads * headDim);
        var y = (float[])x.Clone();
        var cos = new float[tokens * ropeDims / 2];
        var sin = new float[tokens * ropeDims / 2];
        fixed (float* py = y, pc = cos, ps = sin)
        {
            Rope.ComputeAngles(start, tokens, ropeDims, freqBase, pc, ps);
            for (int t = 0; t < tokens; t++)
                Rope.Apply(py + t * heads * headDim, heads, headDim, ropeDims, mode, pc + t * ropeDims / 2, ps + t * ropeDims / 2);
        }
        for (int t = 0; t < tokens; t++)
        for (int h = 0; h < heads; h++)
        {
            int b = (t * heads + h) * headDim;
            for (int i = 0; i < ropeDims / 2; i++)
            {
                double theta = (start + t) * Math.Pow(freqBase, -2.0 * i / ropeDims);
                int i0 = mode == RopeMode.Normal ? 2 * i : i;
                int i1 = mode == RopeMode.Normal ? 2 * i + 1 : i + ropeDims / 2;
                double e0 = x[b + i0] * Math.Cos(theta) - x[b + i1] * Math.Sin(theta);
                double e1 = x[b + i0] * Math.Sin(theta) + x[b + i1] * Math.Cos(theta);
                // θ reaches ~1000 rad; float angle accumulation (as ggml does it) costs ~1e-4 there.
                Assert.Equal(e0, y[b + i0], 2e-3);
                Assert.Equal(e1, y[b + i1], 2e-3);
            }
            for (int i = ropeDims; i < headDim; i++) Assert.Equal(x[b + i], y[b + i]);
        }
    }

    [Theory]
    [InlineData(1, 4, 4, 64, 0, true)]       // decode, no GQA
    [InlineData(1, 14, 2, 64, 300, true)]    // decode with GQA (Qwen2-0.5B heads) over a long cache
    [InlineData(37, 4, 2, 32, 5, true)]      // prefill chunk after 5 cached positions
    [InlineData(9, 6, 6, 72, 0, false)]      // bidirectional (vision)
    [InlineData(130, 2, 1, 16, 0, true)]     // more keys than one online-softmax block
    public void AttentionMatchesScalarReference(int tokens, int heads, int kvHeads, int headDim, int startPos, bool causal)
    {
        int keys = startPos + tokens;
        int kvStride = kvHeads * headDim;
        var r = new Random(tokens * 31 + heads);
        var q = RandomFloats(r, tokens * heads * headDim, 2f);
        var k = RandomFloats(r, keys * kvStride, 2f);
        var v = RandomFloats(r, keys * kvStride);
        var o1 = new float[tokens * heads * headDim];
        var o2 = new float[tokens * heads * headDim];
        using var pool = new ComputeThreadPool(2);
        fixed (float* pq = q, pk = k, pv = v, p1 = o1, p2 = o2)
        {
            var problem = new Attention.Problem
            {
                Q = pq, K = pk, V = pv, Output = p1, Tokens = tokens, Heads = heads, KvHeads = kvHeads, HeadDim = headDim,
                KvStride = kvStride, StartPos = startPos, KeyCount = keys, Causal = causal, Scale = 1f / MathF.Sqrt(headDim),
            };
            Attention.Compute(pool, problem);
            problem.Output = p2;
            Attention.ComputeScalar(problem);
        }
        for (int i = 0; i < o1.Length; i++) Assert.Equal(o2[i], o1[i], 1e-5f);
    }

    private struct MarkJob : IRangeJob
    {
        public int* Hits;
        public void Execute(int start, int end)
        {
            for (int i = start; i < end; i++) Interlocked.Increment(ref Hits[i]);
        }
    }

    [Theory]
    [InlineData(1, 1000, 1)]
    [InlineData(2, 1000, 16)]
    [InlineData(3, 7, 16)]
    [InlineData(4, 4096, 16)]
    [InlineData(8, 4864, 16)] // oversubscribed (more threads than cores): late workers must not double-claim
    public void ThreadPoolCoversEveryIndexOnce(int threads, int total, int grain)
    {
        using var pool = new ComputeThreadPool(threads);
        var hits = new int[total];
        fixed (int* h = hits)
        {
            for (int round = 0; round < 50; round++)
            {
                var job = new MarkJob { Hits = h };
                pool.Run(ref job, total, grain);
            }
        }
        Assert.All(hits, c => Assert.Equal(50, c));
    }

    private struct ThrowingJob : IRangeJob
    {
        public void Execute(int start, int end)
        {
            if (start == 0) throw new InvalidOperationException("boom");
        }
    }

    [Fact]
    public void ThreadPoolPropagatesAJobFailureAndStaysUsable()
    {
        using var pool = new ComputeThreadPool(2);
        var failing = new ThrowingJob();
        var e = Assert.Throws<AggregateException>(() => pool.Run(ref failing, 1000, 16));
        Assert.Equal("boom", e.InnerException!.Message);
        var hits = new int[100];
        fixed (int* h = hits)
        {
            var job = new MarkJob { Hits = h };
            pool.Run(ref job, 100, 1);
        }
        Assert.All(hits, c => Assert.Equal(1, c));
    }

    /// <summary>Holds its chunk until *Gate is set, after saying it started: keeps a dispatch in progress.</summary>
    private struct GatedJob : IRangeJob
    {
        public int* Gate, Started;
        public void Execute(int start, int end)
        {
            Volatile.Write(ref *Started, 1);
            while (Volatile.Read(ref *Gate) == 0) Thread.SpinWait(16);
        }
    }

    /// <summary>
    /// A dispatch from a second thread while one is in progress waits for it (both complete every index exactly once);
    /// before, the second caller overwrote the first's job fields — a hang or skipped work.
    /// </summary>
    [Fact]
    public void ThreadPoolSerializesDispatchesFromTwoThreads()
    {
        using var pool = new ComputeThreadPool(2);
        int* flags = stackalloc int[2];
        flags[0] = flags[1] = 0;
        nint address = (nint)flags;
        var first = new Thread(() =>
        {
            var job = new GatedJob { Gate = (int*)address, Started = (int*)address + 1 };
            pool.Run(ref job, 64, 1);
        });
        first.Start();
        while (Volatile.Read(ref flags[1]) == 0) Thread.SpinWait(16);
        var hits = new int[100];
        using var secondDone = new ManualResetEventSlim();
        var second = new Thread(() =>
        {
            fixed (int* h = hits)
            {
                var job = new MarkJob { Hits = h };
                pool.Run(ref job, 100, 1);
            }
            secondDone.Set();
        });
        second.Start();
        Assert.False(secondDone.Wait(200), "the second dispatch ran while the first was still in progress");
        Volatile.Write(ref flags[0], 1);
        first.Join();
        Assert.True(secondDone.Wait(TimeSpan.FromSeconds(30)), "the second dispatch never ran after the first ended");
        second.Join();
        Assert.All(hits, c => Assert.Equal(1, c));
    }

    /// <summary>Several threads dispatching on one pool at once: every dispatch covers its range exactly once.</summary>
    [Fact]
    public void ThreadPoolStaysCorrectUnderConcurrentCallers()
    {
        using var pool = new ComputeThreadPool(3);
        const int callers = 4, rounds = 200, size = 257;
        var failures = new int[callers];
        var threads = Enumerable.Range(0, callers).Select(c => new Thread(() =>
        {
            var hits = new int[size];
            fixed (int* h = hits)
                for (int r = 0; r < rounds; r++)
                {
                    Array.Clear(hits);
                    var job = new MarkJob { Hits = h };
                    pool.Run(ref job, size, 1 + r % 5);
                    if (hits.Any(v => v != 1)) failures[c]++;
                }
        }) { IsBackground = true }).ToArray();
        foreach (var t in threads) t.Start();
        foreach (var t in threads) Assert.True(t.Join(TimeSpan.FromMinutes(2)), "a caller hung");
        Assert.All(failures, f => Assert.Equal(0, f));
    }

    /// <summary>Marks its range and, for each index, dispatches a MarkJob on the same pool from inside the job.</summary>
    private struct NestedJob : IRangeJob
    {
        public int* Outer, Inner;
        public int InnerSize;
        public nint PoolHandle;
        public void Execute(int start, int end)
        {
            var pool = (ComputeThreadPool)GCHandle.FromIntPtr(PoolHandle).Target!;
            for (int i = start; i < end; i++)
            {
                Interlocked.Increment(ref Outer[i]);
                var inner = new MarkJob { Hits = Inner + (long)i * InnerSize };
                pool.Run(ref inner, InnerSize, 1);
            }
        }
    }

    /// <summary>A Run made from inside a job (on a worker or on the dispatching thread) runs inline instead of deadlocking.</summary>
    [Fact]
    public void ThreadPoolRunsANestedDispatchInline()
    {
        using var pool = new ComputeThreadPool(2);
        const int outer = 16, inner = 40;
        var outerHits = new int[outer];
        var innerHits = new int[outer * inner];
        var handle = GCHandle.Alloc(pool);
        var caller = new Thread(() =>
        {
            fixed (int* o = outerHits)
            fixed (int* n = innerHits)
            {
                var job = new NestedJob { Outer = o, Inner = n, InnerSize = inner, PoolHandle = GCHandle.ToIntPtr(handle) };
                pool.Run(ref job, outer, 1);
            }
        }) { IsBackground = true };
        caller.Start();
        Assert.True(caller.Join(TimeSpan.FromSeconds(30)), "the nested dispatch deadlocked");
        handle.Free();
        Assert.All(outerHits, c => Assert.Equal(1, c));
        Assert.All(innerHits, c => Assert.Equal(1, c));
    }
}
