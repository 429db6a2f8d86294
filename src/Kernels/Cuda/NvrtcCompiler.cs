using System.Runtime.InteropServices;
using System.Text;

namespace LlavaNative.Kernels.Cuda;

/// <summary>
/// Compiles one kernel unit to a CUBIN for the device's architecture with NVRTC, through the
/// <see cref="CudaModuleCache"/>. A compilation error is a <see cref="CudaException"/> carrying NVRTC's log.
/// </summary>
internal sealed unsafe class NvrtcCompiler
{
    private readonly NvrtcApi _api;
    private readonly CudaModuleCache _cache;

    public (int Major, int Minor) Version { get; }

    public NvrtcCompiler(NvrtcApi api, CudaModuleCache cache)
    {
        _api = api;
        _cache = cache;
        Version = api.Version();
    }

    /// <summary>The options every unit is compiled with for compute capability <paramref name="major"/>.<paramref name="minor"/>.</summary>
    public static IReadOnlyList<string> Options(int major, int minor) =>
    [
        $"--gpu-architecture=sm_{major}{minor}",
        "-std=c++17",
        "-DLLAVA_NVRTC=1",
        "-lineinfo",
    ];

    public byte[] Compile(string unitName, string unitText, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string> options)
    {
        string key = CudaModuleCache.Key($"nvrtc {Version.Major}.{Version.Minor}", options, unitName, unitText, headers);
        if (_cache.TryRead(key) is { Length: > 0 } cached) return cached;
        byte[] image = CompileUncached(unitName, unitText, headers, options);
        _cache.Write(key, image);
        return image;
    }

    private byte[] CompileUncached(string unitName, string unitText, IReadOnlyDictionary<string, string> headers, IReadOnlyList<string> options)
    {
        var strings = new List<nint>();
        nint Utf8(string s)
        {
            nint p = Marshal.StringToCoTaskMemUTF8(s);
            strings.Add(p);
            return p;
        }
        nint program = 0;
        try
        {
            var headerNames = headers.Keys.ToArray();
            byte** headerTexts = stackalloc byte*[Math.Max(1, headerNames.Length)];
            byte** headerIncludes = stackalloc byte*[Math.Max(1, headerNames.Length)];
            for (int i = 0; i < headerNames.Length; i++)
            {
                headerTexts[i] = (byte*)Utf8(headers[headerNames[i]]);
                headerIncludes[i] = (byte*)Utf8(headerNames[i]);
            }
            _api.Check(_api.nvrtcCreateProgram(&program, (byte*)Utf8(unitText), (byte*)Utf8(unitName),
                headerNames.Length, headerTexts, headerIncludes), "nvrtcCreateProgram", unitName);

            byte** optionTexts = stackalloc byte*[Math.Max(1, options.Count)];
            for (int i = 0; i < options.Count; i++) optionTexts[i] = (byte*)Utf8(options[i]);
            int result = _api.nvrtcCompileProgram(program, options.Count, optionTexts);
            if (result != NvrtcApi.Success)
                _api.Check(result, "nvrtcCompileProgram", $"{unitName} with {string.Join(' ', options)}:\n{Log(program)}");

            nuint size;
            _api.Check(_api.nvrtcGetCUBINSize(program, &size), "nvrtcGetCUBINSize", unitName);
            var image = new byte[size];
            fixed (byte* p = image) _api.Check(_api.nvrtcGetCUBIN(program, p), "nvrtcGetCUBIN", unitName);
            return image;
        }
        finally
        {
            if (program != 0) _api.nvrtcDestroyProgram(&program);
            foreach (nint p in strings) Marshal.FreeCoTaskMem(p);
        }
    }

    private string Log(nint program)
    {
        nuint size;
        if (_api.nvrtcGetProgramLogSize(program, &size) != NvrtcApi.Success || size <= 1) return "(no log)";
        var log = new byte[size];
        fixed (byte* p = log) _api.nvrtcGetProgramLog(program, p);
        return Encoding.UTF8.GetString(log, 0, (int)size - 1);
    }
}
