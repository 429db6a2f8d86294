// Shared by every kernel unit. Written for NVRTC with no CUDA headers, so the same text also compiles with
// clang (syntax check) and with g++ plus tests/LlavaNative.Tests/Cuda/Emulator/cuda_emu.h (host emulator).
// Only the device builtins NVRTC declares implicitly are used: threadIdx & co, __syncthreads,
// __shfl_xor_sync, atomics, the float math functions and __fmul_rn / __fdiv_rn / __uint_as_float.
#pragma once

typedef unsigned char u8;
typedef signed char i8;
typedef unsigned short u16;
typedef unsigned int u32;

#define WARP_SIZE 32
#define FULL_MASK 0xffffffffu
#define NEG_INF_F __int_as_float(0xff800000)

// IEEE half (GGUF F16 and the scales of quantized blocks) to float, exactly.
__device__ __forceinline__ float half_to_float(u16 h)
{
#if defined(__CUDA_ARCH__)
    float f;
    asm("cvt.f32.f16 %0, %1;" : "=f"(f) : "h"(h));
    return f;
#else
    return llava_emu_half_to_float(h);
#endif
}

// bfloat16 to float: the top half of the float's bits.
__device__ __forceinline__ float bf16_to_float(u16 h) { return __uint_as_float((u32)h << 16); }

// Little-endian 16-bit load from a byte address with no alignment requirement (block fields sit at odd offsets).
__device__ __forceinline__ u16 load_u16(const u8* p) { return (u16)(p[0] | (p[1] << 8)); }

__device__ __forceinline__ u32 load_u32(const u8* p) { return (u32)p[0] | ((u32)p[1] << 8) | ((u32)p[2] << 16) | ((u32)p[3] << 24); }

// Sum over the 32 lanes of a warp; every lane gets the total.
__device__ __forceinline__ float warp_sum(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(FULL_MASK, v, offset);
    return v;
}

__device__ __forceinline__ float warp_max(float v)
{
    for (int offset = 16; offset > 0; offset >>= 1) v = fmaxf(v, __shfl_xor_sync(FULL_MASK, v, offset));
    return v;
}

// Sum over a whole block (blockDim.x a multiple of 32, at most 1024); every thread gets the total.
// scratch: 32 floats of shared memory; it is reusable after the call returns.
__device__ __forceinline__ float block_sum(float v, float* scratch)
{
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, warps = blockDim.x / WARP_SIZE;
    v = warp_sum(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : 0.0f;
    v = warp_sum(v);
    __syncthreads();
    return v;
}

__device__ __forceinline__ float block_max(float v, float* scratch)
{
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, warps = blockDim.x / WARP_SIZE;
    v = warp_max(v);
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    v = lane < warps ? scratch[lane] : NEG_INF_F;
    v = warp_max(v);
    __syncthreads();
    return v;
}

// float → IEEE half / bfloat16 bits, round to nearest even (activations staged for the tensor cores).
__device__ __forceinline__ u16 float_to_half(float f)
{
#if defined(__CUDA_ARCH__)
    u16 h;
    asm("cvt.rn.f16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#else
    return llava_emu_float_to_half(f);
#endif
}

__device__ __forceinline__ u16 float_to_bf16(float f)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    u32 u = __float_as_uint(f); // no cvt.rn.bf16.f32 before sm_80: round to nearest even by hand, NaN kept quiet
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u16)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (u16)(u >> 16);
#elif defined(__CUDA_ARCH__)
    u16 h;
    asm("cvt.rn.bf16.f32 %0, %1;" : "=h"(h) : "f"(f));
    return h;
#else
    return llava_emu_float_to_bf16(f);
#endif
}

// 16 bytes global → shared without passing through registers (cp.async.cg, sm_80+); when !valid the 16 shared bytes
// are zero-filled and nothing is read (src-size 0; gmem must still be a valid address). Both addresses 16-byte aligned.
// The copies of a thread are ordered by cp_async_commit / cp_async_wait; a __syncthreads after the wait publishes them.
__device__ __forceinline__ void cp_async16(void* smem, const void* gmem, bool valid)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    // No cp.async before sm_80: a plain (synchronous) copy; commit / wait are then no-ops.
    uint4 v;
    if (valid) v = *(const uint4*)gmem;
    else v.x = v.y = v.z = v.w = 0u;
    *(uint4*)smem = v;
#elif defined(__CUDA_ARCH__)
    unsigned long long shared;
    asm("cvta.to.shared.u64 %0, %1;" : "=l"(shared) : "l"(smem));
    const int bytes = valid ? 16 : 0;
    asm volatile("cp.async.cg.shared.global [%0], [%1], 16, %2;" ::"r"((u32)shared), "l"(gmem), "r"(bytes) : "memory");
#else
    if (valid) memcpy(smem, gmem, 16);
    else memset(smem, 0, 16);
#endif
}

// Closes the group of cp.async copies this thread issued since the last commit.
__device__ __forceinline__ void cp_async_commit()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.commit_group;" ::: "memory");
#endif
}

// Waits until at most Pending of this thread's committed groups are still in flight (the emulator copies at once).
template <int Pending> __device__ __forceinline__ void cp_async_wait()
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ >= 800
    asm volatile("cp.async.wait_group %0;" ::"n"(Pending) : "memory");
#endif
}

// One warp-wide tensor-core product D = A·B + C, m16n8k16, F32 accumulators (mma.sync, sm_80+).
// Fragments (PTX ISA, "matrix fragments for mma.m16n8k16", 16-bit types), lane = 4·g + t:
//   a[0] = A[g][2t, 2t+1]    a[1] = A[g+8][2t, 2t+1]    a[2] = A[g][2t+8, 2t+9]    a[3] = A[g+8][2t+8, 2t+9]
//   b[0] = B[2t, 2t+1][g]    b[1] = B[2t+8, 2t+9][g]
//   c[0], c[1] = D[g][2t, 2t+1]    c[2], c[3] = D[g+8][2t, 2t+1]
// (two 16-bit values per register, the lower column / row in the low half). Bf16 selects bfloat16 inputs.
template <bool Bf16>
__device__ __forceinline__ void mma_m16n8k16(float* c, const u32* a, const u32* b)
{
#if defined(__CUDA_ARCH__) && __CUDA_ARCH__ < 800
    // mma.m16n8k16 needs sm_80; the units that hold tensor-core kernels must still compile for older GPUs, whose
    // launchers never choose these kernels (CudaOps checks the compute capability).
    asm volatile("trap;");
#elif defined(__CUDA_ARCH__)
    if (Bf16)
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.bf16.bf16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
    else
        asm volatile("mma.sync.aligned.m16n8k16.row.col.f32.f16.f16.f32 {%0,%1,%2,%3}, {%4,%5,%6,%7}, {%8,%9}, {%0,%1,%2,%3};"
                     : "+f"(c[0]), "+f"(c[1]), "+f"(c[2]), "+f"(c[3])
                     : "r"(a[0]), "r"(a[1]), "r"(a[2]), "r"(a[3]), "r"(b[0]), "r"(b[1]));
#else
    llava_emu_mma_m16n8k16(c, a, b, Bf16);
#endif
}

// c + the dot product of the four signed bytes of a with those of b (dp4a, sm_61+).
__device__ __forceinline__ int dot4_i8(int a, int b, int c)
{
#if defined(__CUDA_ARCH__)
    int r;
    asm("dp4a.s32.s32 %0, %1, %2, %3;" : "=r"(r) : "r"(a), "r"(b), "r"(c));
    return r;
#else
    return __dp4a(a, b, c);
#endif
}
