// Whole weight matrices expanded to F16 for the tensor-core mat-mul of prefill batches (CudaOps.MatMul with
// MatMulPath TensorCores on a quantized weight): out [rows, cols] = the CPU's Dequantize of each element (quant.cuh
// groups, exact in float), rounded to F16 (nearest even). One thread per 32-element group, grid-stride; a group's
// 32 halves are written as four 16-byte stores.
#include "quant.cuh"

template <class Block>
__device__ __forceinline__ void dequantize_to_f16(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    const int groupsPerRow = cols / 32;
    const long long rowBytes = (long long)(cols / Block::block_elems) * Block::block_bytes;
    const long long groups = (long long)rows * groupsPerRow;
    for (long long i = (long long)blockIdx.x * blockDim.x + threadIdx.x; i < groups; i += (long long)gridDim.x * blockDim.x)
    {
        const long long r = i / groupsPerRow;
        const int g = (int)(i % groupsPerRow);
        float v[32];
        Block::group(w + r * rowBytes, g, v);
        uint4* o = (uint4*)(out + r * cols + g * 32);
#pragma unroll
        for (int q = 0; q < 4; q++)
        {
            uint4 packed;
            packed.x = (u32)float_to_half(v[8 * q + 0]) | ((u32)float_to_half(v[8 * q + 1]) << 16);
            packed.y = (u32)float_to_half(v[8 * q + 2]) | ((u32)float_to_half(v[8 * q + 3]) << 16);
            packed.z = (u32)float_to_half(v[8 * q + 4]) | ((u32)float_to_half(v[8 * q + 5]) << 16);
            packed.w = (u32)float_to_half(v[8 * q + 6]) | ((u32)float_to_half(v[8 * q + 7]) << 16);
            o[q] = packed;
        }
    }
}

// One kernel per type, written out: KernelSources reads the kernel list from the declarations.
extern "C" __global__ void dequantize_f16_q8_0(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ8_0>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q4_0(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ4_0>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q4_1(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ4_1>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q5_0(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ5_0>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q5_1(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ5_1>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_iq4_nl(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockIQ4_NL>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q2_k(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ2_K>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q3_k(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ3_K>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q4_k(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ4_K>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q5_k(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ5_K>(w, out, rows, cols);
}

extern "C" __global__ void dequantize_f16_q6_k(const u8* __restrict__ w, u16* __restrict__ out, int rows, int cols)
{
    dequantize_to_f16<BlockQ6_K>(w, out, rows, cols);
}
