using System.Runtime.Intrinsics;
using System.Runtime.CompilerServices;

namespace LlavaNative.Kernels.Cpu.Quant;

/// <summary>Unpacking of the packed sub-block scales of the K-quant super-blocks (QK_K = 256).</summary>
internal static unsafe class KQuantScales
{
    /// <summary>
    /// Q4_K/Q5_K: the 12 bytes at <paramref name="packed"/> hold eight 6-bit scales and eight 6-bit mins;
    /// writes scales to <paramref name="out16"/>[0..7] and mins to [8..15] (ggml's utmp shuffle).
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackQ4K(byte* packed, uint* out16)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint u0 = *(uint*)packed, u1 = *(uint*)(packed + 4), u2 = *(uint*)(packed + 8);
        out16[3] = ((u2 >> 4) & kmask2) | (((u1 >> 6) & kmask3) << 4);
        out16[2] = u1 & kmask1;
        out16[1] = (u2 & kmask2) | (((u0 >> 6) & kmask3) << 4);
        out16[0] = u0 & kmask1;
    }

    /// <summary>As <see cref="UnpackQ4K(byte*, uint*)"/>, into registers: byte k of <paramref name="scales"/> is scale k, of <paramref name="mins"/> min k.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackQ4K(byte* packed, out ulong scales, out ulong mins)
    {
        const uint kmask1 = 0x3f3f3f3f, kmask2 = 0x0f0f0f0f, kmask3 = 0x03030303;
        uint u0 = *(uint*)packed, u1 = *(uint*)(packed + 4), u2 = *(uint*)(packed + 8);
        scales = (u0 & kmask1) | ((ulong)((u2 & kmask2) | (((u0 >> 6) & kmask3) << 4)) << 32);
        mins = (u1 & kmask1) | ((ulong)(((u2 >> 4) & kmask2) | (((u1 >> 6) & kmask3) << 4)) << 32);
    }

    /// <summary>Q3_K scales as a vector of 16 signed bytes, bias 32 still included.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static System.Runtime.Intrinsics.Vector128<sbyte> UnpackQ3K(byte* packed)
    {
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint a0 = *(uint*)packed, a1 = *(uint*)(packed + 4), tmp = *(uint*)(packed + 8);
        return System.Runtime.Intrinsics.Vector128.Create(
            (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4),
            (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4),
            ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4),
            ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4)).AsSByte();
    }

    /// <summary>Q3_K: sixteen 6-bit scales from 12 bytes, as signed bytes still biased by +32.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public static void UnpackQ3K(byte* packed, uint* out16)
    {
        const uint kmask1 = 0x03030303, kmask2 = 0x0f0f0f0f;
        uint a0 = *(uint*)packed, a1 = *(uint*)(packed + 4), tmp = *(uint*)(packed + 8);
        out16[2] = ((a0 >> 4) & kmask2) | (((tmp >> 4) & kmask1) << 4);
        out16[3] = ((a1 >> 4) & kmask2) | (((tmp >> 6) & kmask1) << 4);
        out16[0] = (a0 & kmask2) | (((tmp >> 0) & kmask1) << 4);
        out16[1] = (a1 & kmask2) | (((tmp >> 2) & kmask1) << 4);
    }
}
