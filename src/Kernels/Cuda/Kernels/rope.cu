// Rotary position embeddings on the first rope_dims dimensions of every head (the rest pass through).
// x: token t's heads start at x + t·row_stride, head h at + h·head_dim. cos/sin [n_tokens, rope_dims/2] are
// the angle tables the CPU computes (Rope.ComputeAngles), so both backends rotate by identical angles.
// neox = 0: ggml "normal", pairs (2i, 2i+1); neox = 1: NEOX / rotate_half, pairs (i, i + rope_dims/2).
// One block per token; threads over (head, pair).
// Version 1 (rope_f32): the caller passes the batch's rows of the table. Version 1b (rope_f32_at): one token whose
// position is read from device memory picks its row of a table of every position, for decode steps captured into
// a CUDA graph (nothing in the launch depends on the position). Both rotate with rope_rotate_token.
#include "common.cuh"

__device__ __forceinline__ void rope_rotate_token(float* xt, const float* __restrict__ c, const float* __restrict__ s, int n_heads,
    int head_dim, int rope_dims, int neox)
{
    const int half = rope_dims / 2;
    for (int item = threadIdx.x; item < n_heads * half; item += blockDim.x)
    {
        const int h = item / half, i = item % half;
        float* v = xt + h * head_dim;
        const int i0 = neox ? i : 2 * i, i1 = neox ? i + half : 2 * i + 1;
        const float x0 = v[i0], x1 = v[i1];
        v[i0] = x0 * c[i] - x1 * s[i];
        v[i1] = x0 * s[i] + x1 * c[i];
    }
}

extern "C" __global__ void rope_f32(float* x, const float* __restrict__ cos_table, const float* __restrict__ sin_table, int n_heads,
    int head_dim, int rope_dims, int row_stride, int neox)
{
    const int t = blockIdx.x, half = rope_dims / 2;
    rope_rotate_token(x + (long long)t * row_stride, cos_table + (long long)t * half, sin_table + (long long)t * half, n_heads, head_dim,
        rope_dims, neox);
}

// x: one token's heads; cos/sin [positions, rope_dims/2]; row *position is used. One block.
extern "C" __global__ void rope_f32_at(float* x, const float* __restrict__ cos_table, const float* __restrict__ sin_table,
    const int* __restrict__ position, int n_heads, int head_dim, int rope_dims, int neox)
{
    const long long row = (long long)*position * (rope_dims / 2);
    rope_rotate_token(x, cos_table + row, sin_table + row, n_heads, head_dim, rope_dims, neox);
}
