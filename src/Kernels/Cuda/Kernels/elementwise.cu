// Pointwise kernels over flat float arrays: grid-stride loops, any n, 256 threads per block.
#include "common.cuh"

// dst[i] = a[i] + b[i] (dst may alias a or b)
extern "C" __global__ void add_f32(const float* a, const float* b, float* dst, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) dst[i] = a[i] + b[i];
}

// dst[i] = src[i] (device-to-device copy of n floats; the ranges must not overlap)
extern "C" __global__ void copy_f32(const float* __restrict__ src, float* __restrict__ dst, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) dst[i] = src[i];
}

// x[r, c] += bias[c] for x [rows, cols]
extern "C" __global__ void add_bias_rows_f32(float* x, const float* bias, int rows, int cols)
{
    const long long n = (long long)rows * cols;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] += bias[i % cols];
}

// x[i] *= s
extern "C" __global__ void scale_f32(float* x, float s, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x) x[i] *= s;
}

// SwiGLU: gate[i] = silu(gate[i]) * up[i], silu(g) = g / (1 + e^-g)
extern "C" __global__ void silu_mul_f32(float* gate, const float* up, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        const float g = gate[i];
        gate[i] = g / (1.0f + expf(-g)) * up[i];
    }
}

// Exact GELU, 0.5x(1 + erf(x/sqrt2)) written as 0.5x·erfc(-x/sqrt2): erfc keeps the negative tail's relative
// accuracy where 1 + erf would cancel.
extern "C" __global__ void gelu_erf_f32(const float* x, float* y, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        const float v = x[i];
        y[i] = 0.5f * v * erfcf(-0.70710678118654752f * v);
    }
}

// GELU tanh form, 0.5x(1 + tanh(u)) = x / (1 + e^(-2u)), u = sqrt(2/pi)(x + 0.044715x^3); -2u = x(K0 + K1 x^2).
extern "C" __global__ void gelu_tanh_f32(const float* x, float* y, int n)
{
    const float k0 = -1.5957691216057308f, k1 = -0.07135481627260025f;
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        const float v = x[i];
        y[i] = v / (1.0f + expf(v * fmaf(k1, v * v, k0)));
    }
}

// CLIP's quick_gelu: x·sigmoid(1.702x) = x / (1 + e^(-1.702x))
extern "C" __global__ void quick_gelu_f32(const float* x, float* y, int n)
{
    for (int i = blockIdx.x * blockDim.x + threadIdx.x; i < n; i += gridDim.x * blockDim.x)
    {
        const float v = x[i];
        y[i] = v / (1.0f + expf(-1.702f * v));
    }
}
