// benjamin's own CUDA kernels: the GPU forms of the fused CPU kernels in src/nn (each with
// the same maths and the same layouts), compiled to PTX by build.rs with the `cuda` feature.
// All take contiguous f32 tensors; sizes are element counts.

#include <stdint.h>

#define GELU_K 0.7978845608f  // sqrt(2 / pi)
#define GELU_C 0.044715f

// One thread per element, grid-stride so any launch covers any size.
#define FOR_EACH(i, n) \
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

extern "C" __global__ void gelu_fwd(const float* x, float* y, uint32_t n) {
  FOR_EACH(i, n) {
    float v = x[i];
    y[i] = 0.5f * v * (1.0f + tanhf(GELU_K * (v + GELU_C * v * v * v)));
  }
}

extern "C" __global__ void gelu_bwd(const float* x, const float* g, float* dx, uint32_t n) {
  FOR_EACH(i, n) {
    float v = x[i], v2 = v * v;
    float t = tanhf(GELU_K * v * (1.0f + GELU_C * v2));
    float d = 0.5f * (1.0f + t) + 0.5f * v * (1.0f - t * t) * GELU_K * (1.0f + 3.0f * GELU_C * v2);
    dx[i] = g[i] * d;
  }
}

// y[r, j] = x[r, j] + b[j] over `rows` rows of `n`.
extern "C" __global__ void add_bias(const float* x, const float* b, float* y, uint32_t rows, uint32_t n) {
  FOR_EACH(i, rows * n) { y[i] = x[i] + b[i % n]; }
}

// s[j] = sum over rows of x[r, j]: one thread a column, neighbours reading neighbours.
extern "C" __global__ void column_sum(const float* x, float* s, uint32_t rows, uint32_t n) {
  FOR_EACH(j, n) {
    float acc = 0.0f;
    for (uint32_t r = 0; r < rows; ++r) acc += x[(size_t)r * n + j];
    s[j] = acc;
  }
}

__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

__device__ __forceinline__ float warp_max(float v) {
  for (int o = 16; o > 0; o >>= 1) v = fmaxf(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Causal softmax of scaled scores [rows, keys], rows in groups of `t` queries: query i of a
// group sees keys up to keys - t + i, the rest get 0. One warp a row.
extern "C" __global__ void causal_softmax_fwd(const float* x, float* p, uint32_t rows, uint32_t t,
                                              uint32_t keys, float scale) {
  uint32_t row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = x + (size_t)row * keys;
  float* out = p + (size_t)row * keys;
  uint32_t seen = keys - t + row % t + 1;
  float m = -INFINITY;
  for (uint32_t j = lane; j < seen; j += 32) m = fmaxf(m, in[j] * scale);
  m = warp_max(m);
  float sum = 0.0f;
  for (uint32_t j = lane; j < seen; j += 32) sum += expf(in[j] * scale - m);
  float inv = 1.0f / warp_sum(sum);
  for (uint32_t j = lane; j < keys; j += 32) out[j] = j < seen ? expf(in[j] * scale - m) * inv : 0.0f;
}

// dx = scale * p * (g - sum(g * p)) row by row: the softmax's backward pass. One warp a row.
extern "C" __global__ void softmax_bwd(const float* p, const float* g, float* dx, uint32_t rows,
                                       uint32_t keys, float scale) {
  uint32_t row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  size_t base = (size_t)row * keys;
  float dot = 0.0f;
  for (uint32_t j = lane; j < keys; j += 32) dot += p[base + j] * g[base + j];
  dot = warp_sum(dot);
  for (uint32_t j = lane; j < keys; j += 32) dx[base + j] = scale * p[base + j] * (g[base + j] - dot);
}

// A convolution's sizes: input (n, c, h, w), kernel k, output oh x ow before any shuffle.
struct Conv {
  uint32_t n, c, h, w, k, stride, pad, oh, ow;
};

// cols[(ci * k + ky) * k + kx][(ni * oh + oy) * ow + ox] = x[ni, ci, oy*stride - pad + ky, ...],
// zero outside: the whole batch in one matrix, so the product is one GEMM.
extern "C" __global__ void im2col(const float* x, float* cols, Conv g) {
  uint32_t m = g.n * g.oh * g.ow;
  FOR_EACH(i, g.c * g.k * g.k * m) {
    uint32_t col = i % m, row = i / m;
    uint32_t ox = col % g.ow, oy = (col / g.ow) % g.oh, ni = col / (g.ow * g.oh);
    uint32_t kx = row % g.k, ky = (row / g.k) % g.k, ci = row / (g.k * g.k);
    int iy = (int)(oy * g.stride + ky) - (int)g.pad, ix = (int)(ox * g.stride + kx) - (int)g.pad;
    bool inside = iy >= 0 && iy < (int)g.h && ix >= 0 && ix < (int)g.w;
    cols[i] = inside ? x[(((size_t)ni * g.c + ci) * g.h + iy) * g.w + ix] : 0.0f;
  }
}

// im2col's adjoint: each input pixel gathers the columns that read it (no atomics).
extern "C" __global__ void col2im(const float* cols, float* dx, Conv g) {
  uint32_t m = g.n * g.oh * g.ow;
  FOR_EACH(i, g.n * g.c * g.h * g.w) {
    uint32_t ix = i % g.w, iy = (i / g.w) % g.h, ci = (i / (g.w * g.h)) % g.c, ni = i / (g.w * g.h * g.c);
    float acc = 0.0f;
    for (uint32_t ky = 0; ky < g.k; ++ky) {
      int ty = (int)(iy + g.pad) - (int)ky;
      if (ty < 0 || ty % g.stride) continue;
      uint32_t oy = ty / g.stride;
      if (oy >= g.oh) continue;
      for (uint32_t kx = 0; kx < g.k; ++kx) {
        int tx = (int)(ix + g.pad) - (int)kx;
        if (tx < 0 || tx % g.stride) continue;
        uint32_t ox = tx / g.stride;
        if (ox >= g.ow) continue;
        acc += cols[(size_t)((ci * g.k + ky) * g.k + kx) * m + (ni * g.oh + oy) * g.ow + ox];
      }
    }
    dx[i] = acc;
  }
}

// Where the product's element (o, ni, y, x) lands in the output (n, o', h', w'): as it is, or
// pixel-shuffled like PyTorch's pixel_shuffle(2) (channel 4c + 2i + j to (c, 2y + i, 2x + j)).
__device__ __forceinline__ size_t landing(uint32_t o, uint32_t ni, uint32_t y, uint32_t x,
                                          uint32_t outs, uint32_t oh, uint32_t ow, bool shuffle) {
  if (!shuffle) return (((size_t)ni * outs + o) * oh + y) * ow + x;
  uint32_t c = o / 4, i = (o / 2) % 2, j = o % 2;
  return (((size_t)ni * (outs / 4) + c) * (2 * oh) + 2 * y + i) * (2 * ow) + 2 * x + j;
}

// activation: 0 identity, 1 leaky (max(x, slope x)), 2 sigmoid.
__device__ __forceinline__ float activate(float v, int activation, float slope) {
  if (activation == 1) return v > 0.0f ? v : v * slope;
  if (activation == 2) return 1.0f / (1.0f + expf(-v));
  return v;
}

// The derivative read off the output y.
__device__ __forceinline__ float slope_at(float y, int activation, float slope) {
  if (activation == 1) return y > 0.0f ? 1.0f : slope;
  if (activation == 2) return y * (1.0f - y);
  return 1.0f;
}

// out = activation(pre + bias), written to the output's layout: pre is the product
// (outs, n * oh * ow).
extern "C" __global__ void conv_epilogue(const float* pre, const float* bias, float* out, uint32_t outs,
                                         uint32_t n, uint32_t oh, uint32_t ow, int activation, float slope,
                                         int shuffle) {
  uint32_t m = n * oh * ow;
  FOR_EACH(i, outs * m) {
    uint32_t o = i / m, col = i % m;
    uint32_t x = col % ow, y = (col / ow) % oh, ni = col / (ow * oh);
    out[landing(o, ni, y, x, outs, oh, ow, shuffle)] = activate(pre[i] + bias[o], activation, slope);
  }
}

// The epilogue's backward pass: the gradient of `pre` from the output's gradient and values.
extern "C" __global__ void conv_epilogue_grad(const float* grad, const float* out, float* gpre, uint32_t outs,
                                              uint32_t n, uint32_t oh, uint32_t ow, int activation,
                                              float slope, int shuffle) {
  uint32_t m = n * oh * ow;
  FOR_EACH(i, outs * m) {
    uint32_t o = i / m, col = i % m;
    uint32_t x = col % ow, y = (col / ow) % oh, ni = col / (ow * oh);
    size_t at = landing(o, ni, y, x, outs, oh, ow, shuffle);
    gpre[i] = grad[at] * slope_at(out[at], activation, slope);
  }
}

// Bilinear sample of one channel of side r at (x, y) in [0, r-1]: Planar::sample's maths.
__device__ __forceinline__ float bilinear(const float* img, uint32_t r, float x, float y) {
  float x0 = floorf(x), y0 = floorf(y), fx = x - x0, fy = y - y0;
  uint32_t xa = min((uint32_t)fmaxf(x0, 0.0f), r - 1), xb = min((uint32_t)fmaxf(x0 + 1.0f, 0.0f), r - 1);
  uint32_t ya = min((uint32_t)fmaxf(y0, 0.0f), r - 1), yb = min((uint32_t)fmaxf(y0 + 1.0f, 0.0f), r - 1);
  float top = img[ya * r + xa] * (1.0f - fx) + img[ya * r + xb] * fx;
  float bot = img[yb * r + xa] * (1.0f - fx) + img[yb * r + xb] * fx;
  return top * (1.0f - fy) + bot * fy;
}

#define WARP_GRID 5
#define WARP_FLOATS (7 + 2 * WARP_GRID * WARP_GRID)

// The training data's warps (src/faces/warp.rs, Warp::apply): faces (n, 3, r, r) in 0-1, the
// face region (r, r), packed warps (n, WARP_FLOATS: inverse similarity, flip, grid) -> out
// (n, 7, r, r): the input's three channels, the target's three, the mask.
extern "C" __global__ void random_warp(const float* faces, const float* region, const float* warps, float* out,
                                       uint32_t n, uint32_t r) {
  float lim = (float)(r - 1);
  size_t plane = (size_t)r * r;
  FOR_EACH(i, n * r * r) {
    uint32_t x = i % r, y = (i / r) % r, b = i / (r * r);
    const float* w = warps + (size_t)b * WARP_FLOATS;
    float xs = w[6] > 0.5f ? lim - (float)x : (float)x;
    float sx = w[0] * xs + w[1] * (float)y + w[2], sy = w[3] * xs + w[4] * (float)y + w[5];
    float cx = fminf(fmaxf(sx, 0.0f), lim), cy = fminf(fmaxf(sy, 0.0f), lim);
    const float* face = faces + (size_t)b * 3 * plane;
    float* o = out + (size_t)b * 7 * plane + (size_t)y * r + x;
    for (int c = 0; c < 3; ++c) o[(3 + c) * plane] = bilinear(face + c * plane, r, cx, cy);
    o[6 * plane] = bilinear(region, r, cx, cy);
    // The elastic part: the grid's displacements, interpolated bilinearly at (x, y).
    float gx = (float)x / lim * (WARP_GRID - 1), gy = (float)y / lim * (WARP_GRID - 1);
    uint32_t x0 = min((uint32_t)gx, (uint32_t)(WARP_GRID - 2)), y0 = min((uint32_t)gy, (uint32_t)(WARP_GRID - 2));
    float fx = gx - (float)x0, fy = gy - (float)y0;
    float d[2];
    for (int k = 0; k < 2; ++k) {
      const float* g = w + 7 + k;
#define NODE(i, j) g[2 * ((j) * WARP_GRID + (i))]
      d[k] = (NODE(x0, y0) * (1.0f - fx) + NODE(x0 + 1, y0) * fx) * (1.0f - fy) +
             (NODE(x0, y0 + 1) * (1.0f - fx) + NODE(x0 + 1, y0 + 1) * fx) * fy;
#undef NODE
    }
    float ix = fminf(fmaxf(sx + d[0], 0.0f), lim), iy = fminf(fmaxf(sy + d[1], 0.0f), lim);
    for (int c = 0; c < 3; ++c) o[c * plane] = bilinear(face + c * plane, r, ix, iy);
  }
}

// Layer normalisation over rows of c (src/nn/layer_norm.rs): one warp a row.
__device__ __forceinline__ void row_moments(const float* row, uint32_t c, float eps, uint32_t lane, float* mean,
                                            float* rstd) {
  float sum = 0.0f;
  for (uint32_t j = lane; j < c; j += 32) sum += row[j];
  float m = warp_sum(sum) / (float)c;
  float sq = 0.0f;
  for (uint32_t j = lane; j < c; j += 32) sq += (row[j] - m) * (row[j] - m);
  *mean = m;
  *rstd = 1.0f / sqrtf(warp_sum(sq) / (float)c + eps);
}

extern "C" __global__ void layer_norm_fwd(const float* x, const float* w, const float* b, float* y, uint32_t rows,
                                          uint32_t c, float eps) {
  uint32_t row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = x + (size_t)row * c;
  float mean, rstd;
  row_moments(in, c, eps, lane, &mean, &rstd);
  for (uint32_t j = lane; j < c; j += 32) y[(size_t)row * c + j] = (in[j] - mean) * rstd * w[j] + b[j];
}

// The input's gradient row by row into out's first rows; each row's mean and 1/std kept for
// the parameters' gradients.
extern "C" __global__ void layer_norm_bwd_rows(const float* x, const float* w, const float* g, float* out,
                                               float* moments, uint32_t rows, uint32_t c, float eps) {
  uint32_t row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = x + (size_t)row * c;
  const float* gr = g + (size_t)row * c;
  float mean, rstd;
  row_moments(in, c, eps, lane, &mean, &rstd);
  float sgw = 0.0f, sgwx = 0.0f;
  for (uint32_t j = lane; j < c; j += 32) {
    float gw = gr[j] * w[j];
    sgw += gw;
    sgwx += gw * (in[j] - mean) * rstd;
  }
  float mean_gw = warp_sum(sgw) / (float)c, mean_gwx = warp_sum(sgwx) / (float)c;
  for (uint32_t j = lane; j < c; j += 32) {
    float xhat = (in[j] - mean) * rstd;
    out[(size_t)row * c + j] = rstd * (gr[j] * w[j] - mean_gw - xhat * mean_gwx);
  }
  if (lane == 0) {
    moments[2 * row] = mean;
    moments[2 * row + 1] = rstd;
  }
}

// The weight's and the bias's gradients into out's last two rows: one thread a column.
extern "C" __global__ void layer_norm_bwd_cols(const float* x, const float* g, const float* moments, float* out,
                                               uint32_t rows, uint32_t c) {
  FOR_EACH(j, c) {
    float dw = 0.0f, db = 0.0f;
    for (uint32_t r = 0; r < rows; ++r) {
      float gv = g[(size_t)r * c + j];
      dw += gv * (x[(size_t)r * c + j] - moments[2 * r]) * moments[2 * r + 1];
      db += gv;
    }
    out[(size_t)rows * c + j] = dw;
    out[(size_t)(rows + 1) * c + j] = db;
  }
}

// Cross-entropy (src/nn/loss.rs) of logits [rows, classes] against class ids: each row's
// log-sum-exp minus its target's logit, one warp a row, into `losses` (a target out of range
// gives NaN: the CPU kernel's error, seen in the loss).
extern "C" __global__ void cross_entropy_rows(const float* x, const uint32_t* targets, float* losses, uint32_t rows,
                                              uint32_t classes) {
  uint32_t row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = x + (size_t)row * classes;
  float m = -INFINITY;
  for (uint32_t j = lane; j < classes; j += 32) m = fmaxf(m, in[j]);
  m = warp_max(m);
  float sum = 0.0f;
  for (uint32_t j = lane; j < classes; j += 32) sum += expf(in[j] - m);
  sum = warp_sum(sum);
  uint32_t t = targets[row];
  if (lane == 0) losses[row] = t < classes ? m + logf(sum) - in[t] : NAN;
}

// The mean of `n` values, summed in f64 as the CPU kernel sums: one block of 1024 threads.
extern "C" __global__ void mean_of(const float* v, float* out, uint32_t n) {
  __shared__ double part[1024];
  double acc = 0.0;
  for (uint32_t i = threadIdx.x; i < n; i += blockDim.x) acc += v[i];
  part[threadIdx.x] = acc;
  __syncthreads();
  for (uint32_t half = blockDim.x / 2; half > 0; half /= 2) {
    if (threadIdx.x < half) part[threadIdx.x] += part[threadIdx.x + half];
    __syncthreads();
  }
  if (threadIdx.x == 0) out[0] = (float)(part[0] / (double)(n > 0 ? n : 1));
}

// (softmax(row) - onehot(target)) / rows: the cross-entropy's gradient, one warp a row.
extern "C" __global__ void cross_entropy_grad(const float* x, const uint32_t* targets, float* d, uint32_t rows,
                                              uint32_t classes) {
  uint32_t row = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32, lane = threadIdx.x % 32;
  if (row >= rows) return;
  const float* in = x + (size_t)row * classes;
  float* out = d + (size_t)row * classes;
  float m = -INFINITY;
  for (uint32_t j = lane; j < classes; j += 32) m = fmaxf(m, in[j]);
  m = warp_max(m);
  float sum = 0.0f;
  for (uint32_t j = lane; j < classes; j += 32) sum += expf(in[j] - m);
  float inv_sum = 1.0f / warp_sum(sum), inv_rows = 1.0f / (float)(rows > 0 ? rows : 1);
  uint32_t t = targets[row];
  for (uint32_t j = lane; j < classes; j += 32)
    out[j] = (expf(in[j] - m) * inv_sum - (j == t ? 1.0f : 0.0f)) * inv_rows;
}

// The least-squares GAN loss mean((x - t)^2) (src/nn/loss.rs): the squares, then mean_of.
extern "C" __global__ void squared_error(const float* x, float* sq, uint32_t n, float t) {
  FOR_EACH(i, n) { sq[i] = (x[i] - t) * (x[i] - t); }
}

// Its gradient: 2 (x - t) / n.
extern "C" __global__ void squared_error_grad(const float* x, float* d, uint32_t n, float t) {
  FOR_EACH(i, n) { d[i] = 2.0f * (x[i] - t) / (float)n; }
}
