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
/// A persistent pool of <c>threads − 1</c> worker threads plus the calling thread. A dispatch cuts the
/// index range into contiguous chunks (multiples of a grain, so chunks of output rows start on cache-line
/// boundaries and no two threads write the same line), about four per participant, and every participant
/// claims chunks until none are left. Claiming (rather than a fixed chunk per thread) matters on a busy
/// machine: a worker the OS has not scheduled yet simply claims nothing and the others finish its share,
/// instead of the whole token waiting a scheduler time slice for it. Workers spin briefly between
/// dispatches — decode issues hundreds of small ops per token — and then sleep.
/// <para>Why not <c>Parallel.For</c>: its scheduling overhead and per-call allocations are comparable
/// to a whole mat-vec at decode sizes.</para>
/// </summary>
public sealed unsafe class ComputeThreadPool : IDisposable
{
    private const int SpinIterations = 20_000;
    private const int ChunksPerParticipant = 4;

    private readonly Thread[] _workers;
    private readonly object _sleepLock = new();

    // The current dispatch. Written by the caller before the generation is published, read after it.
    private delegate*<void*, int, int, void> _invoke;
    private void* _job;
    private int _total;
    private int _chunkSize;
    private int _chunkCount;

    /// <summary>Dispatch counter; workers wake when it changes.</summary>
    private long _generation;
    /// <summary>(generation &lt;&lt; 32) | next unclaimed chunk. Tagging claims with the generation stops a
    /// late worker of an earlier dispatch from claiming a chunk of the current one before it is published.</summary>
    private long _ticket;
    private int _chunksDone;
    /// <summary>Held for the whole of a dispatch: callers on other threads (two sessions of one model) queue here.</summary>
    private readonly object _dispatchLock = new();
    /// <summary>The thread inside a dispatch (0 when none): a Run it makes from inside its own job runs inline.</summary>
    private int _dispatcherThreadId;
    /// <summary>The pool whose worker the current thread is: a Run made from inside a job runs inline.</summary>
    [ThreadStatic] private static ComputeThreadPool? t_workerOf;
    private int _sleepers;
    private volatile bool _disposed;
    private Exception? _failure;

    /// <summary>Total threads that execute work, including the caller.</summary>
    public int ThreadCount { get; }

    /// <summary>A pool with <paramref name="threads"/> participants (default: all logical processors).</summary>
    public ComputeThreadPool(int threads = 0)
    {
        if (threads <= 0) threads = DefaultThreadCount();
        ThreadCount = threads;
        _workers = new Thread[threads - 1];
        for (int i = 0; i < _workers.Length; i++)
        {
            _workers[i] = new Thread(WorkerLoop) { IsBackground = true, Name = $"llava-compute-{i + 1}" };
            _workers[i].Start();
        }
    }

    /// <summary>Processor count, the default thread count.</summary>
    public static int DefaultThreadCount() => Math.Max(1, Environment.ProcessorCount);

    /// <summary>
    /// Runs <paramref name="job"/> over [0, <paramref name="total"/>) on all participants and returns when every
    /// chunk is done. Chunk boundaries are multiples of <paramref name="grain"/> (except the final end).
    /// <para>Thread safety: a pool runs one dispatch at a time. A caller on another thread while one is in progress
    /// (two sessions of one model used from two threads) waits for it and then dispatches; a Run made from inside a
    /// job of this pool (by a worker or by the dispatching thread) executes the whole range inline on that thread.</para>
    /// </summary>
    public void Run<TJob>(ref TJob job, int total, int grain = 1) where TJob : unmanaged, IRangeJob
    {
        if (total <= 0) return;
        if (grain < 1) grain = 1;
        int grains = (total + grain - 1) / grain;
        if (_workers.Length == 0 || grains == 1)
        {
            job.Execute(0, total);
            return;
        }
        // Two dispatches at once would overwrite each other's job fields and chunk counts (a hang, or work silently
        // undone), so they are serialized. From inside a job the participants are all busy with the outer dispatch:
        // waiting for the lock there would deadlock, so that range runs on the calling thread.
        int thread = Environment.CurrentManagedThreadId;
        if (t_workerOf == this || Volatile.Read(ref _dispatcherThreadId) == thread)
        {
            job.Execute(0, total);
            return;
        }
        lock (_dispatchLock)
        {
            Volatile.Write(ref _dispatcherThreadId, thread);
            try
            {
                Dispatch(ref job, total, grain, grains);
            }
            finally
            {
                Volatile.Write(ref _dispatcherThreadId, 0);
            }
        }
    }

    private void Dispatch<TJob>(ref TJob job, int total, int grain, int grains) where TJob : unmanaged, IRangeJob
    {
        int chunkGrains = Math.Max(1, grains / (ThreadCount * ChunksPerParticipant));
        int chunkSize = chunkGrains * grain;
        int chunkCount = (total + chunkSize - 1) / chunkSize;

        fixed (TJob* jobPtr = &job)
        {
            _invoke = &Invoke<TJob>;
            _job = jobPtr;
            _total = total;
            _chunkSize = chunkSize;
            _chunkCount = chunkCount;
            _failure = null;
            Volatile.Write(ref _chunksDone, 0);
            long generation = _generation + 1;
            Interlocked.Exchange(ref _ticket, generation << 32);  // full fence: job fields visible first
            Interlocked.Exchange(ref _generation, generation);
            if (Volatile.Read(ref _sleepers) > 0)
            {
                lock (_sleepLock) Monitor.PulseAll(_sleepLock);
            }

            RunChunks(generation);

            var spinner = new SpinWait();
            while (Volatile.Read(ref _chunksDone) != chunkCount) spinner.SpinOnce(sleep1Threshold: -1);
            _job = null;
        }

        if (_failure is { } failure) throw new AggregateException("a compute job failed", failure);
    }

    private static void Invoke<TJob>(void* job, int start, int end) where TJob : unmanaged, IRangeJob
        => ((TJob*)job)->Execute(start, end);

    /// <summary>Claims and executes chunks of dispatch <paramref name="generation"/> until none are left.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private void RunChunks(long generation)
    {
        while (true)
        {
            long ticket = Volatile.Read(ref _ticket);
            if (ticket >> 32 != generation) return;      // a later dispatch has begun: nothing of ours is left
            int chunk = (int)ticket;
            if (chunk >= _chunkCount) return;
            if (Interlocked.CompareExchange(ref _ticket, ticket + 1, ticket) != ticket) continue;
            int begin = chunk * _chunkSize;
            int end = Math.Min(begin + _chunkSize, _total);
            try
            {
                _invoke(_job, begin, end);
            }
            catch (Exception e)
            {
                _failure = e;
            }
            Interlocked.Increment(ref _chunksDone);
        }
    }

    private void WorkerLoop()
    {
        t_workerOf = this;
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
            RunChunks(seen);
        }
    }

    public void Dispose()
    {
        if (_disposed) return;
        _disposed = true;
        lock (_sleepLock) Monitor.PulseAll(_sleepLock);
        foreach (var t in _workers) t.Join();
    }
}
