using System.Runtime.CompilerServices;

namespace LlavaNative.Kernels.Cpu;

/// <summary>
/// A unit of parallel work over an index range. Jobs are unmanaged structs (pointers and sizes only)
/// so dispatching one allocates nothing: the pool passes a pointer to the caller's stack copy.
/// </summary>
public interface IRangeJob
{
    /// <summary>Processes indices [start, end).</summary>
    void Execute(int start, int end);
}

/// <summary>
/// A persistent pool of <c>threads − 1</c> worker threads plus the calling thread. Each dispatch splits
/// an index range into one contiguous chunk per participant (rounded to a grain, so that chunks of output
/// rows start on cache-line boundaries and no two threads write the same line). Workers spin briefly
/// between dispatches — decode issues hundreds of small ops per token — and then sleep.
/// <para>Why not <c>Parallel.For</c>: its scheduling overhead and per-call allocations are comparable
/// to a whole mat-vec at decode sizes.</para>
/// </summary>
public sealed unsafe class ComputeThreadPool : IDisposable
{
    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();
    private const int SpinIterations = 20_000;

    // The current dispatch. Written by the caller before the generation bump, read by workers after it.
    private delegate*<void*, int, int, void> _invoke;
    private void* _job;
    private int _total;
    private int _grain;
    private int _participants;

    private long _generation;
    private int _pending;
    private int _sleepers;
    private volatile bool _disposed;
    private ExceptionHolder? _failure;

    /// <summary>Total threads that execute work, including the caller.</summary>
    public int ThreadCount { get; }

    /// <summary>A pool with <paramref name="threads"/> participants (default: physical-core estimate).</summary>
    public ComputeThreadPool(int threads = 0)
    {
        if (threads <= 0) threads = DefaultThreadCount();
        ThreadCount = threads;
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            int index = i + 1; // participant 0 is the caller
            _workers[i] = new Thread(() => WorkerLoop(index))
            {
                IsBackground = true,
                Name = $"llava-compute-{index}",
            };
            _workers[i].Start();
        }
    }

    /// <summary>Processor count, the default thread count.</summary>
    public static int DefaultThreadCount() => Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// Runs <paramref name="job"/> over [0, <paramref name="total"/>) on all participants and returns when every
    /// chunk is done. Chunk boundaries are multiples of <paramref name="grain"/> (except the final end).
    /// Must not be called re-entrantly from inside a job.
    /// </summary>
    public void Run<TJob>(ref TJob job, int total, int grain = 1) where TJob : unmanaged, IRangeJob
    {
        if (total <= 0) return;
        if (grain < 1) grain = 1;
        int chunks = (total + grain - 1) / grain;
        int participants = Math.Min(ThreadCount, chunks);
        if (participants <= 1 || _workers.Length == 0)
        {
            job.Execute(0, total);
            return;
        }

        fixed (TJob* jobPtr = &job)
        {
            _invoke = &Invoke<TJob>;
            _job = jobPtr;
            _total = total;
            _grain = grain;
            _participants = participants;
            _failure = null;
            Volatile.Write(ref _pending, _workers.Length);
            Interlocked.Increment(ref _generation); // full fence: job fields are visible before the bump
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleepLock) Monitor.PulseAll(_sleepLock);
            }

            ExecuteChunk(0);

            // Wait for the workers; they finish at about the same time as the caller for balanced chunks.
            var spinner = new SpinWait();
            while (Volatile.Read(ref _pending) != 0) spinner.SpinOnce(sleep1Threshold: -1);
            _job = null;
        }

        if (_failure is { } failure) throw new AggregateException("a compute job failed", failure.Exception);
    }

    private static void Invoke<TJob>(void* job, int start, int end) where TJob : unmanaged, IRangeJob
        => ((TJob*)job)->Execute(start, end);

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void ExecuteChunk(int participant)
    {
        if (participant >= _participants) return;
        int chunks = (_total + _grain - 1) / _grain;
        int begin = (int)((long)chunks * participant / _participants) * _grain;
        int end = (int)((long)chunks * (participant + 1) / _participants) * _grain;
        if (end > _total) end = _total;
        if (begin < end) _invoke(_job, begin, end);
    }

    private void WorkerLoop(int participant)
    {
        long seen = 0;
        while (true)
        {
            // Spin first: between ops of one token the next dispatch arrives within microseconds.
            int spins = 0;
            while (Volatile.Read(ref _generation) == seen && !_disposed)
            {
                if (++spins < SpinIterations) Thread.SpinWait(8);
                else
                {
                    lock (_sleepLock)
                    {
                        Interlocked.Increment(ref _sleepers);
                        while (Volatile.Read(ref _generation) == seen && !_disposed) Monitor.Wait(_sleepLock);
                        Interlocked.Decrement(ref _sleepers);
                    }
                }
            }
            if (_disposed) return;
            seen = Volatile.Read(ref _generation);
            try
            {
                ExecuteChunk(participant);
            }
            catch (Exception e)
            {
                _failure = new ExceptionHolder(e);
            }
            Interlocked.Decrement(ref _pending);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_sleepLock) Monitor.PulseAll(_sleepLock);
        foreach (var t in _workers) t.Join();
    }

    private sealed record ExceptionHolder(Exception Exception);
}
