namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// A CUDA driver or NVRTC call failed: names the call and the result code (<c>CUDA_ERROR_OUT_OF_MEMORY</c>,
/// <c>NVRTC_ERROR_COMPILATION</c> …) so a report says what went wrong without a debugger.
/// </summary>
public sealed class CudaException : Exception
{
    /// <summary>The API call that failed, e.g. <c>cuMemAlloc_v2</c>.</summary>
    public string Call { get; }

    /// <summary>The numeric CUresult / nvrtcResult.</summary>
    public int Code { get; }

    /// <summary>The symbolic name of <see cref="Code"/>.</summary>
    public string CodeName { get; }

    public CudaException(string call, int code, string codeName, string? detail = null)
        : base($"{call} failed: {codeName} ({code}){(string.IsNullOrEmpty(detail) ? "" : ": " + detail)}")
    {
        Call = call;
        Code = code;
        CodeName = codeName;
    }
}

/// <summary>
/// The CUDA driver or NVRTC is not installed (or no GPU is present). The message lists every place that was
/// searched and the environment variables that override the search; callers print it without a stack trace.
/// </summary>
public sealed class CudaUnavailableException(string message) : Exception(message);
