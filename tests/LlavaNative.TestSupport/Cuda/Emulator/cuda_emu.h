// Host emulation of the CUDA device builtins our kernels use, so src/Kernels/Cuda/Kernels/*.cu compile with g++
// and run on the CPU in tests (force-included before each unit: g++ -include cuda_emu.h).
//
// Model: the blocks of a grid run one after another on the calling OS thread; the threads of a block are
// cooperative fibers (ucontext) that switch only at __syncthreads and warp shuffles, so barriers and
// shuffles have CUDA's meaning, and __shared__ variables (function statics, one copy per OS thread) are
// per block. A thread that returns leaves every barrier, as on the hardware. A block whose live threads all
// wait at a barrier that can never complete is reported as a deadlock instead of hanging.
// Not emulated: dynamic shared memory (extern __shared__), warp-divergent shuffles with partial masks,
// memory ordering between blocks (blocks run sequentially), inline PTX (kernels guard it with __CUDA_ARCH__).
#pragma once

#include <math.h> // the float functions (expf, erfcf, fmaf …) in the global namespace, as NVRTC declares them
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#define __global__
#define __device__
#define __host__
#define __constant__
#define __forceinline__ inline
#define __launch_bounds__(...)
#define __shared__ static thread_local

struct llava_emu_uint3 { unsigned int x, y, z; };
struct llava_emu_dim3 { unsigned int x, y, z; };

namespace llava_emu
{
    // The executing fiber's thread index and the block's geometry (set by the scheduler).
    extern thread_local llava_emu_uint3 t_threadIdx;
    extern thread_local llava_emu_uint3 t_blockIdx;
    extern thread_local llava_emu_dim3 t_blockDim;
    extern thread_local llava_emu_dim3 t_gridDim;
    void sync_block();
    // Exchanges one 64-bit value among the lanes of the caller's warp and returns the value of lane `source`
    // (the caller's own value when `source` is outside the warp or names a thread that does not exist).
    std::uint64_t warp_exchange(std::uint64_t value, int source);
    int lane_id();
}

#define threadIdx (::llava_emu::t_threadIdx)
#define blockIdx (::llava_emu::t_blockIdx)
#define blockDim (::llava_emu::t_blockDim)
#define gridDim (::llava_emu::t_gridDim)
#define warpSize 32

inline void __syncthreads() { ::llava_emu::sync_block(); }
inline void __syncwarp(unsigned = 0xffffffffu) { ::llava_emu::warp_exchange(0, ::llava_emu::lane_id()); }

namespace llava_emu
{
    template <class T> inline std::uint64_t to_bits(T v)
    {
        static_assert(sizeof(T) <= 8 && std::is_trivially_copyable_v<T>, "shuffle of a type wider than 8 bytes");
        std::uint64_t b = 0;
        std::memcpy(&b, &v, sizeof(T));
        return b;
    }
    template <class T> inline T from_bits(std::uint64_t b)
    {
        T v;
        std::memcpy(&v, &b, sizeof(T));
        return v;
    }
}

template <class T> inline T __shfl_xor_sync(unsigned, T v, int laneMask, int width = 32)
{
    const int lane = ::llava_emu::lane_id();
    int source = lane ^ laneMask;
    if ((source / width) != (lane / width)) source = lane;
    return ::llava_emu::from_bits<T>(::llava_emu::warp_exchange(::llava_emu::to_bits(v), source));
}

template <class T> inline T __shfl_down_sync(unsigned, T v, unsigned delta, int width = 32)
{
    const int lane = ::llava_emu::lane_id();
    int source = lane + (int)delta;
    if ((source / width) != (lane / width)) source = lane;
    return ::llava_emu::from_bits<T>(::llava_emu::warp_exchange(::llava_emu::to_bits(v), source));
}

template <class T> inline T __shfl_up_sync(unsigned, T v, unsigned delta, int width = 32)
{
    const int lane = ::llava_emu::lane_id();
    int source = lane - (int)delta;
    if (source < 0 || (source / width) != (lane / width)) source = lane;
    return ::llava_emu::from_bits<T>(::llava_emu::warp_exchange(::llava_emu::to_bits(v), source));
}

template <class T> inline T __shfl_sync(unsigned, T v, int srcLane, int width = 32)
{
    const int lane = ::llava_emu::lane_id();
    const int source = (lane / width) * width + (srcLane % width);
    return ::llava_emu::from_bits<T>(::llava_emu::warp_exchange(::llava_emu::to_bits(v), source));
}

// Fibers switch only at barriers and shuffles, so read-modify-write is atomic here.
template <class T> inline T atomicAdd(T* address, T value) { T old = *address; *address = old + value; return old; }
inline int atomicMax(int* address, int value) { int old = *address; if (value > old) *address = value; return old; }
inline unsigned int atomicMax(unsigned int* address, unsigned int value) { unsigned int old = *address; if (value > old) *address = value; return old; }
inline unsigned long long atomicMax(unsigned long long* address, unsigned long long value)
{
    unsigned long long old = *address;
    if (value > old) *address = value;
    return old;
}
inline int atomicCAS(int* address, int compare, int value) { int old = *address; if (old == compare) *address = value; return old; }

inline float __uint_as_float(unsigned int u) { float f; std::memcpy(&f, &u, 4); return f; }
inline float __int_as_float(int i) { float f; std::memcpy(&f, &i, 4); return f; }
inline unsigned int __float_as_uint(float f) { unsigned int u; std::memcpy(&u, &f, 4); return u; }
inline int __float_as_int(float f) { int i; std::memcpy(&i, &f, 4); return i; }
// Units are compiled with -ffp-contract=off, so these are single IEEE operations as on the device.
inline float __fmul_rn(float a, float b) { return a * b; }
inline float __fadd_rn(float a, float b) { return a + b; }
inline float __fdiv_rn(float a, float b) { return a / b; }
inline float __expf(float x) { return std::exp(x); }
inline float rsqrtf(float x) { return 1.0f / std::sqrt(x); }

// dp4a: c + Σ over the four bytes of the signed-byte products of a and b (the device's dp4a.s32.s32).
inline int __dp4a(int a, int b, int c)
{
    int sum = c;
    for (int i = 0; i < 4; i++) sum += (int)(signed char)(a >> (8 * i)) * (int)(signed char)(b >> (8 * i));
    return sum;
}

inline int min(int a, int b) { return a < b ? a : b; }
inline int max(int a, int b) { return a > b ? a : b; }

// F16 → F32 exactly (the device uses cvt.f32.f16).
inline float llava_emu_half_to_float(unsigned short h)
{
    _Float16 v;
    std::memcpy(&v, &h, 2);
    return (float)v;
}

// The vector types NVRTC declares implicitly (16-byte aligned, as on the device).
struct alignas(16) float4 { float x, y, z, w; };
struct alignas(16) uint4 { unsigned int x, y, z, w; };
struct alignas(8) float2 { float x, y; };

// F32 → F16 / BF16 bits, round to nearest even (the device uses cvt.rn.f16.f32 / cvt.rn.bf16.f32).
inline unsigned short llava_emu_float_to_half(float f)
{
    _Float16 h = (_Float16)f;
    unsigned short bits;
    std::memcpy(&bits, &h, 2);
    return bits;
}

inline unsigned short llava_emu_float_to_bf16(float f)
{
    unsigned int u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (unsigned short)((u >> 16) | 0x40); // NaN stays a (quiet) NaN
    u += 0x7fffu + ((u >> 16) & 1);
    return (unsigned short)(u >> 16);
}

namespace llava_emu
{
    // Every lane of the caller's warp contributes `count` (≤ 8) words; `all` receives 32 × count words, lane-major
    // (lanes that do not exist contribute zeros).
    void warp_all_gather(const std::uint32_t* mine, int count, std::uint32_t* all);
}

// mma.sync.aligned.m16n8k16.row.col.f32.{f16,bf16} for one warp: each lane publishes its fragments, then
// computes its own four accumulators from the whole A (16×16) and B (16×8), in the fragment layout
// documented at mma_m16n8k16 in common.cuh. Products and sums in float.
inline void llava_emu_mma_m16n8k16(float* c, const unsigned int* a, const unsigned int* b, bool bf16)
{
    std::uint32_t mine[6] = {a[0], a[1], a[2], a[3], b[0], b[1]};
    std::uint32_t all[32 * 6];
    ::llava_emu::warp_all_gather(mine, 6, all);
    auto value = [bf16](std::uint32_t reg, int high) -> float {
        const unsigned short bits = (unsigned short)(high ? reg >> 16 : reg & 0xffffu);
        if (bf16) { unsigned int u = (unsigned int)bits << 16; float f; std::memcpy(&f, &u, 4); return f; }
        return llava_emu_half_to_float(bits);
    };
    // A[row][k]: lane 4·(row % 8) + (k % 8) / 2, register (row ≥ 8) + 2·(k ≥ 8), half k % 2.
    auto A = [&](int row, int k) { return value(all[(4 * (row % 8) + (k % 8) / 2) * 6 + (row >= 8 ? 1 : 0) + (k >= 8 ? 2 : 0)], k % 2); };
    // B[k][n]: lane 4·n + (k % 8) / 2, register 4 + (k ≥ 8), half k % 2.
    auto B = [&](int k, int n) { return value(all[(4 * n + (k % 8) / 2) * 6 + 4 + (k >= 8 ? 1 : 0)], k % 2); };
    const int lane = ::llava_emu::lane_id(), g = lane / 4, t = lane % 4;
    for (int i = 0; i < 4; i++)
    {
        const int row = g + (i >= 2 ? 8 : 0), col = 2 * t + (i & 1);
        float sum = c[i];
        for (int k = 0; k < 16; k++) sum += A(row, k) * B(k, col);
        c[i] = sum;
    }
}
