// The per-step pieces of a decode step that runs as a captured CUDA graph: everything that changes from one step
// to the next lives in device memory, written by decode_step_begin (a direct launch before the graph's), and the
// graph's kernels read it: the position (RoPE row, cache row, key count) and the token id (embedding gather).

#include "common.cuh"

// *position = pos; *token_id = token unless token_id is null (a step fed by an embedding row). One thread.
extern "C" __global__ void decode_step_begin(int* position, int pos, int* token_id, int token)
{
    if (threadIdx.x != 0 || blockIdx.x != 0) return;
    *position = pos;
    if (token_id != nullptr) *token_id = token;
}

// Row *position of the caches [positions, kv_dim] = the step's K and V rows [kv_dim] (already biased and rotated).
// Grid-stride over kv_dim; the grid does not depend on the position.
extern "C" __global__ void kv_append_f32(const float* __restrict__ k_row, const float* __restrict__ v_row, float* __restrict__ k_cache,
    float* __restrict__ v_cache, const int* __restrict__ position, int kv_dim)
{
    const long long row = (long long)*position * kv_dim;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < kv_dim; i += gridDim.x * blockDim.x)
    {
        k_cache[row + i] = k_row[i];
        v_cache[row + i] = v_row[i];
    }
}

// kv_append_f32 for an F16 cache: row *position of the caches [positions, kv_dim] (IEEE halves) = the step's F32 K and
// V rows rounded to nearest even (float_to_half: what the CPU's Fp16.FromFloatRow and ggml's F32 → F16 copy give).
extern "C" __global__ void kv_append_f16(const float* __restrict__ k_row, const float* __restrict__ v_row, u16* __restrict__ k_cache,
    u16* __restrict__ v_cache, const int* __restrict__ position, int kv_dim)
{
    const long long row = (long long)*position * kv_dim;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < kv_dim; i += gridDim.x * blockDim.x)
    {
        k_cache[row + i] = float_to_half(k_row[i]);
        v_cache[row + i] = float_to_half(v_row[i]);
    }
}

// A prefill batch's rows into an F16 cache: k_cache[i] = half(k_rows[i]), v_cache[i] = half(v_rows[i]) for i < count
// (the caller offsets the caches to the batch's first row). Grid-stride.
extern "C" __global__ void kv_store_f16(const float* __restrict__ k_rows, const float* __restrict__ v_rows, u16* __restrict__ k_cache,
    u16* __restrict__ v_cache, int count)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < count; i += gridDim.x * blockDim.x)
    {
        k_cache[i] = float_to_half(k_rows[i]);
        v_cache[i] = float_to_half(v_rows[i]);
    }
}
