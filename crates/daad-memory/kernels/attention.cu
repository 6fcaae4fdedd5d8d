// Sparse thresholded cosine attention of daad-memory (f32): the row kernels of the forward and
// backward passes. The three dense products (q M^T, w M and their backward) run through cuBLAS
// on candle's handle; everything else runs here, one thread block per query row.
//
// Layouts are row-major: queries (m, d), bank (n, d), similarities / weights (m, n).
// Shrink modes: 0 = drop below 1/N and renormalise, 1 = drop only, 2 = MemAE hard shrinkage.
// The backward recomputes p = softmax(s / T) with the same code as the forward, so the drop mask
// is bit-identical to the forward's.

#include <math.h>

#define DAAD_MAX_WARPS 32

__device__ __forceinline__ float warp_sum(float v) {
    for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

__device__ __forceinline__ float warp_max(float v) {
    for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
    return v;
}

// Sum over the block; every thread gets the result. `scratch` holds DAAD_MAX_WARPS floats.
__device__ float block_sum(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n_warps = (blockDim.x + 31) >> 5;
    v = warp_sum(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < n_warps ? scratch[lane] : 0.0f;
        v = warp_sum(v);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

__device__ float block_max(float v, float *scratch) {
    const int lane = threadIdx.x & 31, warp = threadIdx.x >> 5;
    const int n_warps = (blockDim.x + 31) >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0) scratch[warp] = v;
    __syncthreads();
    if (warp == 0) {
        v = lane < n_warps ? scratch[lane] : -INFINITY;
        v = warp_max(v);
        if (lane == 0) scratch[0] = v;
    }
    __syncthreads();
    return scratch[0];
}

// p[j] = softmax(s[j] * inv_t) for one row; p in shared memory. Each thread touches the same j.
__device__ void softmax_row(const float *s, float *p, int n, float inv_t, float *scratch) {
    float mx = -INFINITY;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float z = s[j] * inv_t;
        p[j] = z;
        mx = fmaxf(mx, z);
    }
    mx = block_max(mx, scratch);
    float sum = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float e = expf(p[j] - mx);
        p[j] = e;
        sum += e;
    }
    const float inv = 1.0f / block_sum(sum, scratch);
    for (int j = threadIdx.x; j < n; j += blockDim.x) p[j] *= inv;
}

// sqrt(|row|^2 + eps) for each row of x (rows, d). One block per row.
extern "C" __global__ void daad_row_norms(const float *x, float *norms, int d, float eps) {
    __shared__ float scratch[DAAD_MAX_WARPS];
    const float *row = x + (size_t)blockIdx.x * d;
    float acc = 0.0f;
    for (int k = threadIdx.x; k < d; k += blockDim.x) acc += row[k] * row[k];
    acc = block_sum(acc, scratch);
    if (threadIdx.x == 0) norms[blockIdx.x] = sqrtf(acc + eps);
}

// Forward rows. In: s = raw dots q M^T (m, n). Out: s = cosine similarities, w = shrunk weights.
// Dynamic shared memory: n floats.
extern "C" __global__ void daad_attn_fwd_rows(float *s, float *w, const float *nq, const float *nm,
                                              int n, float inv_t, float thr, int mode,
                                              float lambda, float shrink_eps) {
    extern __shared__ float p[];
    __shared__ float scratch[DAAD_MAX_WARPS];
    const size_t i = blockIdx.x;
    float *srow = s + i * n;
    float *wrow = w + i * n;
    const float inq = 1.0f / nq[i];
    for (int j = threadIdx.x; j < n; j += blockDim.x) srow[j] = srow[j] * inq * (1.0f / nm[j]);
    softmax_row(srow, p, n, inv_t, scratch);
    float acc = 0.0f;
    if (mode == 2) {
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float a = p[j] - lambda;
            const float h = a > 0.0f ? a * p[j] / (a + shrink_eps) : 0.0f;
            wrow[j] = h;
            acc += h;
        }
        acc = block_sum(acc, scratch);
        const float inv = 1.0f / (acc > shrink_eps ? acc : shrink_eps);
        for (int j = threadIdx.x; j < n; j += blockDim.x) wrow[j] *= inv;
    } else {
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float v = p[j] >= thr ? p[j] : 0.0f;
            wrow[j] = v;
            acc += v;
        }
        if (mode == 0) {
            // the largest p is >= 1/N, so acc > 0
            const float inv = 1.0f / block_sum(acc, scratch);
            for (int j = threadIdx.x; j < n; j += blockDim.x) wrow[j] *= inv;
        }
    }
}

// Backward rows. In: g = dL/dw (m, n), the forward's w and s. Out: g = dL/ds / (|q_i| |M_j|),
// gss = dL/ds * s (for the bank's column sums), c[i] = sum_j dL/ds_ij s_ij.
// Dynamic shared memory: n floats.
extern "C" __global__ void daad_attn_bwd_rows(float *g, float *gss, float *c, const float *w,
                                              const float *s, const float *nq, const float *nm,
                                              int n, float inv_t, float thr, int mode,
                                              float lambda, float shrink_eps) {
    extern __shared__ float p[];
    __shared__ float scratch[DAAD_MAX_WARPS];
    const size_t i = blockIdx.x;
    float *grow = g + i * n;
    float *gsrow = gss + i * n;
    const float *wrow = w + i * n;
    const float *srow = s + i * n;
    softmax_row(srow, p, n, inv_t, scratch);
    // g := dL/dp
    if (mode == 0) {
        float kept = 0.0f, gw = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            if (p[j] >= thr) {
                kept += p[j];
                gw += grow[j] * wrow[j];
            }
        }
        kept = block_sum(kept, scratch);
        gw = block_sum(gw, scratch);
        const float inv = 1.0f / kept;
        for (int j = threadIdx.x; j < n; j += blockDim.x)
            grow[j] = p[j] >= thr ? (grow[j] - gw) * inv : 0.0f;
    } else if (mode == 1) {
        for (int j = threadIdx.x; j < n; j += blockDim.x)
            if (p[j] < thr) grow[j] = 0.0f;
    } else {
        float sum = 0.0f, gy = 0.0f;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float a = p[j] - lambda;
            if (a > 0.0f) sum += a * p[j] / (a + shrink_eps);
            gy += grow[j] * wrow[j];
        }
        sum = block_sum(sum, scratch);
        gy = block_sum(gy, scratch);
        float denom = sum;
        if (!(sum > shrink_eps)) {
            denom = shrink_eps;
            gy = 0.0f;
        }
        const float inv = 1.0f / denom;
        for (int j = threadIdx.x; j < n; j += blockDim.x) {
            const float a = p[j] - lambda;
            float v = 0.0f;
            if (a > 0.0f) {
                const float b = a + shrink_eps;
                const float dh = (p[j] * shrink_eps + a * a + a * shrink_eps) / (b * b);
                v = (grow[j] - gy) * inv * dh;
            }
            grow[j] = v;
        }
    }
    // softmax backward: dz = p (dp - <dp, p>)
    float cp = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) cp += grow[j] * p[j];
    cp = block_sum(cp, scratch);
    const float inq = 1.0f / nq[i];
    float ci = 0.0f;
    for (int j = threadIdx.x; j < n; j += blockDim.x) {
        const float gs = p[j] * (grow[j] - cp) * inv_t;
        const float v = gs * srow[j];
        gsrow[j] = v;
        ci += v;
        grow[j] = gs * inq * (1.0f / nm[j]);
    }
    ci = block_sum(ci, scratch);
    if (threadIdx.x == 0) c[i] = ci;
}

// e[j] = sum_i x[i, j] for x (m, n). One thread per column.
extern "C" __global__ void daad_col_sums(const float *x, float *e, int m, int n) {
    const int j = blockIdx.x * blockDim.x + threadIdx.x;
    if (j >= n) return;
    float acc = 0.0f;
    for (int i = 0; i < m; ++i) acc += x[(size_t)i * n + j];
    e[j] = acc;
}

// dst[r, k] = -coef[r] / norms[r]^2 * x[r, k]: the normalisation backward's correction term,
// written before the products accumulate onto it.
extern "C" __global__ void daad_neg_scale_rows(float *dst, const float *x, const float *coef,
                                               const float *norms, int rows, int d) {
    const size_t total = (size_t)rows * d;
    for (size_t idx = (size_t)blockIdx.x * blockDim.x + threadIdx.x; idx < total;
         idx += (size_t)gridDim.x * blockDim.x) {
        const size_t r = idx / d;
        const float nr = norms[r];
        dst[idx] = -coef[r] / (nr * nr) * x[idx];
    }
}
