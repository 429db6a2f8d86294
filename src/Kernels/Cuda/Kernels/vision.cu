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

// The position table onto the embeddings x [n_pos, dim] (pos [n_pos, dim]). With a class token (cls [dim], CLIP),
// row 0 is set to cls + pos[0] — the CPU writes the class row, then adds the table — and x's row 0 is not read;
// without one (cls null, SigLIP) every row is x[r] += pos[r]. Grid-stride over n_pos·dim.
extern "C" __global__ void add_position_embeddings_f32(float* x, const float* __restrict__ pos, const float* __restrict__ cls, int n_pos, int dim)
{
    const long long n = (long long)n_pos * dim;
    for (long long i = blockIdx.x * (long long)blockDim.x + threadIdx.x; i < n; i += (long long)gridDim.x * blockDim.x)
        x[i] = (cls != nullptr && i < dim ? cls[i] : x[i]) + pos[i];
}
