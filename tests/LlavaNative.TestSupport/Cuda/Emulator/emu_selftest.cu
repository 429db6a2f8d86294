// Kernels that test the emulator itself (compiled into the emulator library only, never for a GPU).
#include "common.cuh"

// Shuffle and barrier semantics against their CUDA definitions, for a block of blockDim.x threads (a partial
// last warp included): xor[t] = t ^ 5 (own value where the partner does not exist), down[t] = t + 3 within the
// warp (own value past its end), reversed[t] = blockDim.x − 1 − t through shared memory and __syncthreads.
extern "C" __global__ void emu_selftest_semantics(int* xor_out, int* down_out, int* reversed_out)
{
    __shared__ int s[1024];
    const int t = threadIdx.x;
    xor_out[t] = __shfl_xor_sync(FULL_MASK, t, 5);
    down_out[t] = __shfl_down_sync(FULL_MASK, t, 3);
    s[t] = t;
    __syncthreads();
    reversed_out[t] = s[blockDim.x - 1 - t];
}

// A divergent barrier: lane 0 of each warp waits at __syncthreads while the other lanes wait for it in a warp
// shuffle. On a GPU this hangs or is undefined; the emulator must report a deadlock instead of hanging.
extern "C" __global__ void emu_selftest_divergent_barrier(float* out)
{
    if (threadIdx.x % WARP_SIZE == 0) __syncthreads();
    else out[threadIdx.x] = warp_sum(1.0f);
}

// dot4_i8 (the emulator's __dp4a) on n word pairs: out[i] = dot4_i8(a[i], b[i], c[i]).
extern "C" __global__ void emu_selftest_dp4a(const int* a, const int* b, const int* c, int* out, int n)
{
    const int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) out[i] = dot4_i8(a[i], b[i], c[i]);
}
