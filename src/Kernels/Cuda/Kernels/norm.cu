// Row normalisations and softmax: one block per row (blockDim.x a multiple of 32), block reductions in float.
// In place is allowed (y == x): each thread rewrites only the elements it read.
#include "common.cuh"

// RMSNorm: y = x / sqrt(mean(x²) + eps) ⊙ w, x and y [rows, cols]
extern "C" __global__ void rms_norm_f32(const float* x, const float* __restrict__ w, float* y, int cols, float eps)
{
    __shared__ float scratch[32];
    const float* xr = x + (long long)blockIdx.x * cols;
    float* yr = y + (long long)blockIdx.x * cols;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) sum += xr[i] * xr[i];
    sum = block_sum(sum, scratch);
    const float scale = 1.0f / sqrtf(sum / (float)cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = xr[i] * scale * w[i];
}

// LayerNorm: y = (x − mean) / sqrt(var + eps) ⊙ w + b (b may be null), two passes over the row.
extern "C" __global__ void layer_norm_f32(const float* x, const float* __restrict__ w, const float* __restrict__ b, float* y, int cols, float eps)
{
    __shared__ float scratch[32];
    const float* xr = x + (long long)blockIdx.x * cols;
    float* yr = y + (long long)blockIdx.x * cols;
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) sum += xr[i];
    const float mean = block_sum(sum, scratch) / (float)cols;
    float squares = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
    {
        const float d = xr[i] - mean;
        squares += d * d;
    }
    const float scale = 1.0f / sqrtf(block_sum(squares, scratch) / (float)cols + eps);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) yr[i] = (xr[i] - mean) * scale * w[i] + (b != nullptr ? b[i] : 0.0f);
}

// Softmax of each row of x [rows, cols], in place.
extern "C" __global__ void softmax_f32(float* x, int cols)
{
    __shared__ float scratch[32];
    float* xr = x + (long long)blockIdx.x * cols;
    float m = NEG_INF_F;
    for (int i = threadIdx.x; i < cols; i += blockDim.x) m = fmaxf(m, xr[i]);
    m = block_max(m, scratch);
    float sum = 0.0f;
    for (int i = threadIdx.x; i < cols; i += blockDim.x)
    {
        const float e = expf(xr[i] - m);
        xr[i] = e;
        sum += e;
    }
    const float inv = 1.0f / block_sum(sum, scratch);
    for (int i = threadIdx.x; i < cols; i += blockDim.x) xr[i] *= inv;
}
