// Vision-tower helpers. The patch embedding (a stride-p convolution without padding) is im2col followed by the
// prefill mat-mul with the conv kernel as a [dim, 3·p·p] weight matrix, as on the CPU (VisionEncoder).
#include "common.cuh"

// patches [per_side², 3·p·p] from planar RGB pixels [3, S, S]: patch (py, px), element (ch, ky, kx) at column
// ch·p² + ky·p + kx = pixels[ch][py·p + ky][px·p + kx]. Pixels beyond per_side·p are not read. One block per patch.
extern "C" __global__ void im2col_patches_f32(const float* __restrict__ pixels, float* __restrict__ patches, int image_size, int patch_size,
    int per_side)
{
    const int patch = blockIdx.x, py = patch / per_side, px = patch % per_side;
    const int p = patch_size, area = p * p;
    float* row = patches + (long long)patch * 3 * area;
    for (int i = threadIdx.x; i < 3 * area; i += blockDim.x)
    {
        const int ch = i / area, ky = (i % area) / p, kx = i % p;
        row[i] = pixels[((long long)ch * image_size + py * p + ky) * image_size + px * p + kx];
    }
}
