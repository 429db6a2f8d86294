namespace LlavaNative.Kernels.Cpu.Ops;

/// <summary>
/// Row-wise ops between the mat-muls of an encoder, over [rows, cols] matrices, split across the pool by rows.
/// Each job is an unmanaged struct, so a dispatch allocates nothing.
/// </summary>
public static unsafe class RowOps
{
    /// <summary>LayerNorm of each row: <c>y[r] = LN(x[r]) ⊙ weight + bias</c> (y may alias x).</summary>
    public static void LayerNormRows(ComputeThreadPool pool, float* x, float* weight, float* bias, float* y, int rows, int cols, float eps)
    {
        var job = new LayerNormJob { X = x, Weight = weight, Bias = bias, Y = y, Cols = cols, Eps = eps };
        pool.Run(ref job, rows);
    }

    /// <summary><c>x[r] = f(x[r] + bias)</c> for every row (no bias when <paramref name="bias"/> is null).</summary>
    public static void AddBiasActivation(ComputeThreadPool pool, float* x, float* bias, ActivationFunction function, int rows, int cols)
    {
        var job = new BiasActivationJob { X = x, Bias = bias, Function = function, Cols = cols };
        pool.Run(ref job, rows);
    }

    /// <summary><c>x[r] += bias</c> for every row.</summary>
    public static void AddBias(ComputeThreadPool pool, float* x, float* bias, int rows, int cols)
    {
        if (bias == null) return;
        var job = new BiasResidualJob { Target = x, Addend = null, Bias = bias, Cols = cols };
        pool.Run(ref job, rows);
    }

    /// <summary><c>x[r] += y[r]</c> for every row (e.g. position embeddings onto the embeddings).</summary>
    public static void AddRows(ComputeThreadPool pool, float* x, float* y, int rows, int cols)
    {
        var job = new BiasResidualJob { Target = x, Addend = y, Bias = null, Cols = cols };
        pool.Run(ref job, rows);
    }

    /// <summary>
    /// The residual connection after a biased Linear: <c>y[r] += bias; residual[r] += y[r]</c>, in PyTorch's order
    /// (the bias belongs to the Linear's output before the sum). <paramref name="y"/> is left holding y + bias.
    /// </summary>
    public static void AddBiasResidual(ComputeThreadPool pool, float* residual, float* y, float* bias, int rows, int cols)
    {
        var job = new BiasResidualJob { Target = residual, Addend = y, Bias = bias, Cols = cols };
        pool.Run(ref job, rows);
    }

    private struct LayerNormJob : IRangeJob
    {
        public float* X, Weight, Bias, Y;
        public int Cols;
        public float Eps;

        public void Execute(int start, int end)
        {
            for (int r = start; r < end; r++)
                LayerNorm.Apply(X + (long)r * Cols, Weight, Bias, Y + (long)r * Cols, Cols, Eps);
        }
    }

    private struct BiasActivationJob : IRangeJob
    {
        public float* X, Bias;
        public ActivationFunction Function;
        public int Cols;

        public void Execute(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                float* row = X + (long)r * Cols;
                if (Bias != null) Elementwise.Add(row, Bias, row, Cols);
                Activations.Apply(Function, row, row, Cols);
            }
        }
    }

    private struct BiasResidualJob : IRangeJob
    {
        public float* Target, Addend, Bias;
        public int Cols;

        public void Execute(int start, int end)
        {
            for (int r = start; r < end; r++)
            {
                float* row = Target + (long)r * Cols;
                if (Addend == null)
                {
                    Elementwise.Add(row, Bias, row, Cols);
                    continue;
                }
                float* addend = Addend + (long)r * Cols;
                if (Bias != null) Elementwise.Add(addend, Bias, addend, Cols);
                Elementwise.Add(row, addend, row, Cols);
            }
        }
    }
}
