// What NVRTC declares implicitly, for a device-only syntax and type check of src/Kernels/Cuda/Kernels/*.cu with
// clang (clang -x cuda --cuda-device-only -nocudainc -nocudalib -include nvrtc_shim.h): the execution-space
// attributes, the builtin variables, warp shuffles, the float math functions (declared through libdevice's
// __nv_* names, left unresolved: the check stops at PTX), bit casts and the vector types.
#pragma once

#define __global__ __attribute__((global))
#define __device__ __attribute__((device))
#define __host__ __attribute__((host))
#define __shared__ __attribute__((shared))
#define __constant__ __attribute__((constant))
#define __forceinline__ __inline__ __attribute__((always_inline))
#define __launch_bounds__(...) __attribute__((launch_bounds(__VA_ARGS__)))

#include <__clang_cuda_builtin_vars.h>

#define warpSize 32

// __syncthreads is a clang builtin for NVPTX.
__device__ inline void __syncwarp(unsigned mask = 0xffffffffu) { __nvvm_bar_warp_sync(mask); }

__device__ inline float __shfl_xor_sync(unsigned mask, float v, int lane_mask, int width = 32)
{
    return __nvvm_shfl_sync_bfly_f32(mask, v, lane_mask, ((32 - width) << 8) | 0x1f);
}
__device__ inline int __shfl_xor_sync(unsigned mask, int v, int lane_mask, int width = 32)
{
    return __nvvm_shfl_sync_bfly_i32(mask, v, lane_mask, ((32 - width) << 8) | 0x1f);
}
__device__ inline float __shfl_down_sync(unsigned mask, float v, unsigned delta, int width = 32)
{
    return __nvvm_shfl_sync_down_f32(mask, v, delta, ((32 - width) << 8) | 0x1f);
}
__device__ inline int __shfl_down_sync(unsigned mask, int v, unsigned delta, int width = 32)
{
    return __nvvm_shfl_sync_down_i32(mask, v, delta, ((32 - width) << 8) | 0x1f);
}
__device__ inline float __shfl_sync(unsigned mask, float v, int lane, int width = 32)
{
    return __nvvm_shfl_sync_idx_f32(mask, v, lane, ((32 - width) << 8) | 0x1f);
}
__device__ inline int __shfl_sync(unsigned mask, int v, int lane, int width = 32)
{
    return __nvvm_shfl_sync_idx_i32(mask, v, lane, ((32 - width) << 8) | 0x1f);
}

__device__ inline float atomicAdd(float* address, float value) { return __nvvm_atom_add_gen_f(address, value); }
__device__ inline int atomicAdd(int* address, int value) { return __nvvm_atom_add_gen_i(address, value); }
__device__ inline int atomicMax(int* address, int value) { return __nvvm_atom_max_gen_i(address, value); }

__device__ inline float __uint_as_float(unsigned int u) { return __builtin_bit_cast(float, u); }
__device__ inline float __int_as_float(int i) { return __builtin_bit_cast(float, i); }
__device__ inline unsigned int __float_as_uint(float f) { return __builtin_bit_cast(unsigned int, f); }
__device__ inline int __float_as_int(float f) { return __builtin_bit_cast(int, f); }
__device__ inline float __fmul_rn(float a, float b) { return __nvvm_mul_rn_f(a, b); }
__device__ inline float __fadd_rn(float a, float b) { return __nvvm_add_rn_f(a, b); }
__device__ inline float __fdiv_rn(float a, float b) { return __nvvm_div_rn_f(a, b); }

extern "C" __device__ float __nv_expf(float);
extern "C" __device__ float __nv_erff(float);
extern "C" __device__ float __nv_erfcf(float);
extern "C" __device__ float __nv_tanhf(float);
extern "C" __device__ float __nv_sqrtf(float);
extern "C" __device__ float __nv_rsqrtf(float);
extern "C" __device__ float __nv_fmaf(float, float, float);
extern "C" __device__ float __nv_fmaxf(float, float);
extern "C" __device__ float __nv_fminf(float, float);
extern "C" __device__ float __nv_logf(float);
extern "C" __device__ float __nv_powf(float, float);
extern "C" __device__ float __nv_cosf(float);
extern "C" __device__ float __nv_sinf(float);
extern "C" __device__ float __nv_fast_expf(float);
extern "C" __device__ float __nv_fabsf(float);
extern "C" __device__ float __nv_rintf(float);
__device__ inline float expf(float x) { return __nv_expf(x); }
__device__ inline float fabsf(float x) { return __nv_fabsf(x); }
__device__ inline float rintf(float x) { return __nv_rintf(x); }
__device__ inline float __expf(float x) { return __nv_fast_expf(x); }
__device__ inline float erff(float x) { return __nv_erff(x); }
__device__ inline float erfcf(float x) { return __nv_erfcf(x); }
__device__ inline float tanhf(float x) { return __nv_tanhf(x); }
__device__ inline float sqrtf(float x) { return __nv_sqrtf(x); }
__device__ inline float rsqrtf(float x) { return __nv_rsqrtf(x); }
__device__ inline float fmaf(float a, float b, float c) { return __nv_fmaf(a, b, c); }
__device__ inline float fmaxf(float a, float b) { return __nv_fmaxf(a, b); }
__device__ inline float fminf(float a, float b) { return __nv_fminf(a, b); }
__device__ inline float logf(float x) { return __nv_logf(x); }
__device__ inline float powf(float a, float b) { return __nv_powf(a, b); }
__device__ inline float cosf(float x) { return __nv_cosf(x); }
__device__ inline float sinf(float x) { return __nv_sinf(x); }
__device__ inline int min(int a, int b) { return a < b ? a : b; }
__device__ inline int max(int a, int b) { return a > b ? a : b; }

struct __attribute__((aligned(16))) float4 { float x, y, z, w; };
struct __attribute__((aligned(16))) uint4 { unsigned int x, y, z, w; };
struct __attribute__((aligned(8))) float2 { float x, y; };
