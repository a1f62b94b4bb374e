// The faces' conversion on the GPU: src/faces/convert.rs and src/faces/align.rs with the same
// maths. A frame is RGB 0-255 interleaved (h, w, 3), as benjamin's Planar; faces and masks
// are the model's planes (n, c, s, s).

#include <stdint.h>

#define FOR_EACH(i, n) \
  for (uint32_t i = blockIdx.x * blockDim.x + threadIdx.x; i < (n); i += gridDim.x * blockDim.x)

// Planar::sample of channel c of an interleaved picture at (x, y), already inside it.
__device__ __forceinline__ float sample(const float* img, uint32_t w, uint32_t h, uint32_t ch, uint32_t c,
                                        float x, float y) {
  float x0 = floorf(x), y0 = floorf(y), fx = x - x0, fy = y - y0;
  uint32_t xa = min((uint32_t)fmaxf(x0, 0.0f), w - 1), xb = min((uint32_t)fmaxf(x0 + 1.0f, 0.0f), w - 1);
  uint32_t ya = min((uint32_t)fmaxf(y0, 0.0f), h - 1), yb = min((uint32_t)fmaxf(y0 + 1.0f, 0.0f), h - 1);
  float top = img[(ya * w + xa) * ch + c] * (1.0f - fx) + img[(ya * w + xb) * ch + c] * fx;
  float bot = img[(yb * w + xa) * ch + c] * (1.0f - fx) + img[(yb * w + xb) * ch + c] * fx;
  return top * (1.0f - fy) + bot * fy;
}

// align::warp then to_tensor: crop b (3, s, s) in 0-1 of the frame through the inverse of its
// alignment, inverses (n, 6).
extern "C" __global__ void align_crops(const float* frame, uint32_t fw, uint32_t fh, const float* inverses,
                                       float* crops, uint32_t n, uint32_t s) {
  float mw = (float)(fw - 1), mh = (float)(fh - 1);
  size_t plane = (size_t)s * s;
  FOR_EACH(i, n * s * s) {
    uint32_t x = i % s, y = (i / s) % s, b = i / (s * s);
    const float* m = inverses + 6 * b;
    float sx = m[0] * x + m[1] * y + m[2], sy = m[3] * x + m[4] * y + m[5];
    sx = fminf(fmaxf(sx, 0.0f), mw);
    sy = fminf(fmaxf(sy, 0.0f), mh);
    for (uint32_t c = 0; c < 3; ++c)
      crops[(b * 3 + c) * plane + y * s + x] = sample(frame, fw, fh, 3, c, sx, sy) / 255.0f;
  }
}

// blend_mask's start: the learned mask inside the face region, zero outside.
extern "C" __global__ void blend_start(const float* learned, const float* region, float* out, uint32_t n,
                                       uint32_t s) {
  FOR_EACH(i, n * s * s) {
    float l = fminf(fmaxf(learned[i], 0.0f), 1.0f);
    out[i] = region[i % (s * s)] > 0.5f ? l : 0.0f;
  }
}

// One pass of convert.rs's box blur (radius each way, edges held) over n masks of s x s;
// `feather` pulls the last pass's fringe down to zero as blend_mask does.
extern "C" __global__ void box_blur(const float* src, float* dst, uint32_t n, uint32_t s, uint32_t radius,
                                    int horizontal, int feather) {
  FOR_EACH(i, n * s * s) {
    uint32_t x = i % s, y = (i / s) % s;
    const float* m = src + (size_t)(i / (s * s)) * s * s;
    float sum = 0.0f;
    for (int k = -(int)radius; k <= (int)radius; ++k) {
      int xx = horizontal ? min(max((int)x + k, 0), (int)s - 1) : (int)x;
      int yy = horizontal ? (int)y : min(max((int)y + k, 0), (int)s - 1);
      sum += m[yy * s + xx];
    }
    float v = sum / (float)(2 * radius + 1);
    dst[i] = feather ? fminf(fmaxf((v - 0.1f) / 0.9f, 0.0f), 1.0f) : v;
  }
}

__device__ __forceinline__ float srgb_to_linear(float c) {
  return c <= 0.04045f ? c / 12.92f : powf((c + 0.055f) / 1.055f, 2.4f);
}
__device__ __forceinline__ float linear_to_srgb(float c) {
  return c <= 0.0031308f ? c * 12.92f : 1.055f * powf(c, 1.0f / 2.4f) - 0.055f;
}
__device__ __forceinline__ float lab_f(float t) { return t > 0.008856f ? cbrtf(t) : 7.787f * t + 16.0f / 116.0f; }
__device__ __forceinline__ float lab_finv(float t) { return t > 0.206893f ? t * t * t : (t - 16.0f / 116.0f) / 7.787f; }

#define WX 0.95047f
#define WZ 1.08883f

// RGB 0-255 -> CIE L*a*b* (D65).
__device__ void rgb_to_lab(float r8, float g8, float b8, float* lab) {
  float r = srgb_to_linear(fminf(fmaxf(r8 / 255.0f, 0.0f), 1.0f));
  float g = srgb_to_linear(fminf(fmaxf(g8 / 255.0f, 0.0f), 1.0f));
  float b = srgb_to_linear(fminf(fmaxf(b8 / 255.0f, 0.0f), 1.0f));
  float x = (0.4124564f * r + 0.3575761f * g + 0.1804375f * b) / WX;
  float y = 0.2126729f * r + 0.7151522f * g + 0.072175f * b;
  float z = (0.0193339f * r + 0.119192f * g + 0.9503041f * b) / WZ;
  float fx = lab_f(x), fy = lab_f(y), fz = lab_f(z);
  lab[0] = 116.0f * fy - 16.0f;
  lab[1] = 500.0f * (fx - fy);
  lab[2] = 200.0f * (fy - fz);
}

// Each face's and its crop's weighted Lab sums where the mask is strong: one block a face,
// stats (n, 2, 7): weight, three sums, three sums of squares (face, then crop), in f64 as the
// CPU sums them. Faces and crops are (n, 3, s, s) in 0-1.
extern "C" __global__ void lab_stats(const float* faces, const float* crops, const float* masks, double* stats,
                                     uint32_t s) {
  __shared__ double part[256][14];
  uint32_t b = blockIdx.x, t = threadIdx.x;
  size_t plane = (size_t)s * s;
  double acc[14] = {0};
  for (uint32_t p = t; p < plane; p += blockDim.x) {
    double a = masks[b * plane + p];
    for (int which = 0; which < 2; ++which) {
      const float* img = (which ? crops : faces) + b * 3 * plane;
      float lab[3];
      rgb_to_lab(img[p] * 255.0f, img[plane + p] * 255.0f, img[2 * plane + p] * 255.0f, lab);
      double* o = acc + 7 * which;
      o[0] += a;
      for (int c = 0; c < 3; ++c) {
        o[1 + c] += a * lab[c];
        o[4 + c] += a * (double)lab[c] * lab[c];
      }
    }
  }
  for (int k = 0; k < 14; ++k) part[t][k] = acc[k];
  __syncthreads();
  for (uint32_t half = blockDim.x / 2; half > 0; half /= 2) {
    if (t < half)
      for (int k = 0; k < 14; ++k) part[t][k] += part[t + half][k];
    __syncthreads();
  }
  if (t < 14) stats[b * 14 + t] = part[0][t];
}

// colour_match's last step: each face's Lab moved to its crop's mean and spread, out as
// RGB 0-255 planes (n, 3, s, s).
extern "C" __global__ void lab_apply(const float* faces, const double* stats, float* out, uint32_t n,
                                     uint32_t s) {
  size_t plane = (size_t)s * s;
  FOR_EACH(i, n * s * s) {
    uint32_t b = i / (s * s), p = i % (s * s);
    const double* st = stats + 14 * b;
    const float* f = faces + b * 3 * plane;
    float lab[3];
    rgb_to_lab(f[p] * 255.0f, f[plane + p] * 255.0f, f[2 * plane + p] * 255.0f, lab);
    float q[3];
    for (int c = 0; c < 3; ++c) {
      double wf = fmax(st[0], 1e-6), wt = fmax(st[7], 1e-6);
      double mf = st[1 + c] / wf, mt = st[8 + c] / wt;
      double sf = sqrt(fmax(st[4 + c] / wf - mf * mf, 0.0)), stt = sqrt(fmax(st[11 + c] / wt - mt * mt, 0.0));
      // The spread is never widened much: a young decoder's noise would be blown up.
      double k = sf > 1e-3 ? fmin(fmax(stt / sf, 0.5), 1.2) : 1.0;
      q[c] = (float)(((double)lab[c] - mf) * k + mt);
    }
    float fy = (q[0] + 16.0f) / 116.0f, fx = fy + q[1] / 500.0f, fz = fy - q[2] / 200.0f;
    float x = lab_finv(fx) * WX, y = lab_finv(fy), z = lab_finv(fz) * WZ;
    float rgb[3] = {3.2404542f * x - 1.5371385f * y - 0.4985314f * z,
                    -0.969266f * x + 1.8760108f * y + 0.041556f * z,
                    0.0556434f * x - 0.2040259f * y + 1.0572252f * z};
    for (int c = 0; c < 3; ++c) out[(b * 3 + c) * plane + p] = linear_to_srgb(fminf(fmaxf(rgb[c], 0.0f), 1.0f)) * 255.0f;
  }
}

// An affine map (x, y) -> (m0 x + m1 y + m2, m3 x + m4 y + m5), passed by value.
struct Map {
  float m[6];
};

// align::paste of one face: each frame pixel of the footprint (x0, y0)-(x1, y1) that the
// square covers becomes mask * face + (1 - mask) * frame, face (3, s, s) RGB 0-255 and mask
// (s, s) sampled through the alignment `to_square`.
extern "C" __global__ void paste(float* frame, uint32_t fw, const float* face, const float* mask,
                                 Map to_square, uint32_t s, uint32_t x0, uint32_t y0, uint32_t x1,
                                 uint32_t y1) {
  uint32_t cols = x1 - x0;
  float lim = (float)(s - 1);
  size_t plane = (size_t)s * s;
  FOR_EACH(i, cols * (y1 - y0)) {
    uint32_t x = x0 + i % cols, y = y0 + i / cols;
    const float* m = to_square.m;
    float u = m[0] * x + m[1] * y + m[2], v = m[3] * x + m[4] * y + m[5];
    if (!(u >= 0.0f && v >= 0.0f && u <= lim && v <= lim)) continue;
    float a = fminf(fmaxf(sample(mask, s, s, 1, 0, u, v), 0.0f), 1.0f);
    if (a <= 0.0f) continue;
    float* px = frame + ((size_t)y * fw + x) * 3;
    for (uint32_t c = 0; c < 3; ++c) {
      float f = sample(face + c * plane, s, s, 1, 0, u, v);
      px[c] = a * f + (1.0f - a) * px[c];
    }
  }
}
