// Sampling on the device, so decode needs no logits download for greedy generation.
#include "common.cuh"

// result[0] = index of the largest of x[0 … n−1], the first one on ties (as Sampler.ArgMax). One block.
extern "C" __global__ void argmax_f32(const float* __restrict__ x, int n, int* __restrict__ result)
{
    __shared__ float best_value_s[32];
    __shared__ int best_index_s[32];
    const int lane = threadIdx.x % WARP_SIZE, warp = threadIdx.x / WARP_SIZE, warps = blockDim.x / WARP_SIZE;
    float best = NEG_INF_F;
    int index = 0x7fffffff;
    for (int i = threadIdx.x; i < n; i += blockDim.x)
        if (x[i] > best || index == 0x7fffffff) { best = x[i]; index = i; }
    // Reduce (value, index) pairs: larger value wins, the smaller index on ties.
    for (int offset = 16; offset > 0; offset >>= 1)
    {
        const float other = __shfl_xor_sync(FULL_MASK, best, offset);
        const int other_index = __shfl_xor_sync(FULL_MASK, index, offset);
        if (other > best || (other == best && other_index < index)) { best = other; index = other_index; }
    }
    if (lane == 0) { best_value_s[warp] = best; best_index_s[warp] = index; }
    __syncthreads();
    if (warp == 0)
    {
        best = lane < warps ? best_value_s[lane] : NEG_INF_F;
        index = lane < warps ? best_index_s[lane] : 0x7fffffff;
        for (int offset = 16; offset > 0; offset >>= 1)
        {
            const float other = __shfl_xor_sync(FULL_MASK, best, offset);
            const int other_index = __shfl_xor_sync(FULL_MASK, index, offset);
            if (other > best || (other == best && other_index < index)) { best = other; index = other_index; }
        }
        if (lane == 0) result[0] = index;
    }
}
