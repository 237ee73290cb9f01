// Depthwise 2-D convolution for MindSpore's CPU backend (ops.Custom, func_type "aot").
//
// NCHW float32, weight (C, 1, K, K) with odd K, padding K/2, stride 1 or 2: exactly what
// nn.Conv2d(C, C, K, stride, pad_mode="pad", padding=K//2, group=C) computes. Forward,
// grad-input and grad-weight, one exported function each per stride. Single-threaded on
// purpose: OpenMP threads spin against MindSpore's own thread pool and made steps slower.
//
// Layout trick (ShuffleNetV2's planes are small, down to 2x2, where per-row loops cost more
// than the arithmetic): for one channel, the zero-padded planes of all N images are stacked
// into one tall image whose rows are `pitch` floats wide; neighbouring planes share their
// padding rows. Each kernel tap is then one long contiguous multiply-add over the whole tall
// image (junk outputs between planes are computed and dropped). Stride 2 splits the tall image
// into its four (row, column) parity phases so that every tap still reads contiguously.
//
// Signature (MindSpore's AOT convention): params holds the inputs then the output;
// shapes[i] has ndims[i] entries; dtypes[i] is "float32". A non-zero return makes MindSpore
// raise. Compiled with -O3 -fopenmp-simd (simd pragmas only, no threads).

#include <cstdint>
#include <algorithm>
#include <cstring>
#include <vector>

namespace {

struct Dims {
  int64_t n, c, h, w, k, ho, wo;
};

bool is_float32(const char* dtype) { return std::strcmp(dtype, "float32") == 0; }

int64_t out_size(int64_t in, int64_t k, int stride) { return (in + 2 * (k / 2) - k) / stride + 1; }

// Checks the shapes of (x, w, y-like) and fills dims; y is the forward output (or its grad).
bool read_dims(int nparam, int* ndims, int64_t** shapes, const char** dtypes, int expect, int stride, Dims* d) {
  if (nparam != expect) return false;
  for (int i = 0; i < nparam; ++i) {
    if (ndims[i] != 4 || !is_float32(dtypes[i])) return false;
  }
  const int64_t* xs = shapes[0];
  const int64_t* ws = shapes[1];
  const int64_t* ys = shapes[2];
  d->n = xs[0];
  d->c = xs[1];
  d->h = xs[2];
  d->w = xs[3];
  d->k = ws[2];
  if (ws[0] != d->c || ws[1] != 1 || ws[3] != d->k || d->k % 2 != 1 || d->k > 15) return false;
  if (d->n < 1 || d->c < 1 || d->h < 1 || d->w < 1) return false;
  d->ho = out_size(d->h, d->k, stride);
  d->wo = out_size(d->w, d->k, stride);
  return ys[0] == d->n && ys[1] == d->c && ys[2] == d->ho && ys[3] == d->wo;
}

bool same_shape(int64_t** shapes, int a, int b) {
  for (int i = 0; i < 4; ++i) {
    if (shapes[a][i] != shapes[b][i]) return false;
  }
  return true;
}

int64_t round_up(int64_t v, int64_t m) { return (v + m - 1) / m * m; }

// The tall image of one channel. Padded coordinates (row, col): plane n's pixel (iy, ix) sits at
// (n * band + pad + iy, pad + ix); everything else is zero. It is stored as S*S phase buffers of
// `rows` x `pitch` floats: phase (a, b) holds padded pixel (S*u + a, S*v + b) at u * pitch + v.
// Output (n, oy, ox) is at flat index (n * out_band + oy) * pitch + ox of an `outputs`-long
// buffer; tap (ky, kx) reads phase (ky % S, kx % S) at that index + (ky / S) * pitch + kx / S.
template <int S>
struct Tall {
  int64_t pad, band, out_band, pitch, rows, outputs;

  explicit Tall(const Dims& d) {
    pad = d.k / 2;
    band = round_up(d.h + pad, S);               // rows per plane, its padding shared with the next
    out_band = band / S;
    pitch = round_up(d.w + 2 * pad, S) / S;      // phase width; outputs use the same pitch
    rows = d.n * out_band + 2 * pad / S + 1;     // reads reach 2*pad/S rows (+ columns) past the last
    outputs = d.n * out_band * pitch;
  }

  int64_t phase_size() const { return rows * pitch; }
  int64_t tap_offset(int64_t ky, int64_t kx) const { return (ky / S) * pitch + kx / S; }
  int64_t tap_phase(int64_t ky, int64_t kx) const { return (ky % S) * S + kx % S; }

  // Scatters (or, with Gather, collects) one channel's N planes between NCHW and the phases.
  template <bool Gather>
  void move(const Dims& d, int64_t c, float* nchw, float* phases) const {
    const int64_t size = phase_size();
    for (int64_t n = 0; n < d.n; ++n) {
      float* plane = nchw + (n * d.c + c) * d.h * d.w;
      for (int64_t iy = 0; iy < d.h; ++iy) {
        const int64_t row = n * band + pad + iy;
        float* line = phases + (row % S) * S * size + (row / S) * pitch;  // phase (row % S, 0), row row / S
        float* pixels = plane + iy * d.w;
        if (S == 1) {
          if (Gather) {
            std::memcpy(pixels, line + pad, sizeof(float) * d.w);
          } else {
            std::memcpy(line + pad, pixels, sizeof(float) * d.w);
          }
          continue;
        }
        // Stride 2: even and odd input columns land in the two column phases.
        float* even = line + (pad % 2) * size + pad / 2;             // ix = 0, 2, 4, ...
        float* odd = line + ((pad + 1) % 2) * size + (pad + 1) / 2;  // ix = 1, 3, 5, ...
        for (int64_t j = 0; 2 * j < d.w; ++j) {
          if (Gather) {
            pixels[2 * j] = even[j];
          } else {
            even[j] = pixels[2 * j];
          }
        }
        for (int64_t j = 0; 2 * j + 1 < d.w; ++j) {
          if (Gather) {
            pixels[2 * j + 1] = odd[j];
          } else {
            odd[j] = pixels[2 * j + 1];
          }
        }
      }
    }
  }

  // Between one channel's NCHW output planes and the output buffer (junk slots left as they are).
  template <bool Gather>
  void move_out(const Dims& d, int64_t c, float* nchw, float* out) const {
    for (int64_t n = 0; n < d.n; ++n) {
      float* plane = nchw + (n * d.c + c) * d.ho * d.wo;
      for (int64_t oy = 0; oy < d.ho; ++oy) {
        float* row = out + (n * out_band + oy) * pitch;
        if (Gather) {
          std::memcpy(plane + oy * d.wo, row, sizeof(float) * d.wo);
        } else {
          std::memcpy(row, plane + oy * d.wo, sizeof(float) * d.wo);
        }
      }
    }
  }
};

template <int S>
void forward(const Dims& d, const float* x, const float* wt, float* y) {
  const Tall<S> t(d);
  std::vector<float> phases(S * S * t.phase_size(), 0.0f), out(t.outputs);
  const int64_t k = d.k;
  for (int64_t c = 0; c < d.c; ++c) {
    t.template move<false>(d, c, const_cast<float*>(x), phases.data());
    float* __restrict__ o = out.data();
    std::memset(o, 0, sizeof(float) * t.outputs);
    for (int64_t ky = 0; ky < k; ++ky) {
      for (int64_t kx = 0; kx < k; ++kx) {
        const float wv = wt[(c * k + ky) * k + kx];
        const float* __restrict__ src = phases.data() + t.tap_phase(ky, kx) * t.phase_size() + t.tap_offset(ky, kx);
#pragma omp simd
        for (int64_t i = 0; i < t.outputs; ++i) o[i] += wv * src[i];
      }
    }
    t.template move_out<true>(d, c, y, o);
  }
}

template <int S>
void grad_input(const Dims& d, const float* wt, const float* dy, float* dx) {
  const Tall<S> t(d);
  std::vector<float> phases(S * S * t.phase_size()), grads(t.outputs, 0.0f);  // junk slots of grads stay 0
  const int64_t k = d.k;
  for (int64_t c = 0; c < d.c; ++c) {
    t.template move_out<false>(d, c, const_cast<float*>(dy), grads.data());
    std::fill(phases.begin(), phases.end(), 0.0f);
    const float* __restrict__ g = grads.data();
    for (int64_t ky = 0; ky < k; ++ky) {
      for (int64_t kx = 0; kx < k; ++kx) {
        const float wv = wt[(c * k + ky) * k + kx];
        float* __restrict__ dst = phases.data() + t.tap_phase(ky, kx) * t.phase_size() + t.tap_offset(ky, kx);
#pragma omp simd
        for (int64_t i = 0; i < t.outputs; ++i) dst[i] += wv * g[i];
      }
    }
    t.template move<true>(d, c, dx, phases.data());
  }
}

template <int S>
void grad_weight(const Dims& d, const float* x, const float* dy, float* dw) {
  const Tall<S> t(d);
  std::vector<float> phases(S * S * t.phase_size(), 0.0f), grads(t.outputs, 0.0f);
  const int64_t k = d.k;
  const int64_t block = 1024;  // float sums per block, a double across blocks: fast and accurate
  for (int64_t c = 0; c < d.c; ++c) {
    t.template move<false>(d, c, const_cast<float*>(x), phases.data());
    t.template move_out<false>(d, c, const_cast<float*>(dy), grads.data());
    const float* __restrict__ g = grads.data();
    for (int64_t ky = 0; ky < k; ++ky) {
      for (int64_t kx = 0; kx < k; ++kx) {
        const float* __restrict__ src = phases.data() + t.tap_phase(ky, kx) * t.phase_size() + t.tap_offset(ky, kx);
        double acc = 0.0;
        for (int64_t start = 0; start < t.outputs; start += block) {
          const int64_t end = start + block < t.outputs ? start + block : t.outputs;
          float part = 0.0f;
#pragma omp simd reduction(+ : part)
          for (int64_t i = start; i < end; ++i) part += g[i] * src[i];
          acc += part;
        }
        dw[(c * k + ky) * k + kx] = static_cast<float>(acc);
      }
    }
  }
}

enum Kind { kForward, kGradInput, kGradWeight };

// Forward: params = (x, weight, y). Grad-input: (x [shape only], weight, dy, dx).
// Grad-weight: (x, weight [shape only], dy, dweight). Shapes are checked before any write.
template <Kind K, int S>
int run(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes) {
  Dims d;
  if (!read_dims(nparam, ndims, shapes, dtypes, K == kForward ? 3 : 4, S, &d)) return 1;
  if ((K == kGradInput && !same_shape(shapes, 0, 3)) || (K == kGradWeight && !same_shape(shapes, 1, 3))) return 1;
  const float* x = static_cast<const float*>(params[0]);
  const float* w = static_cast<const float*>(params[1]);
  if (K == kForward) {
    forward<S>(d, x, w, static_cast<float*>(params[2]));
  } else if (K == kGradInput) {
    grad_input<S>(d, w, static_cast<const float*>(params[2]), static_cast<float*>(params[3]));
  } else {
    grad_weight<S>(d, x, static_cast<const float*>(params[2]), static_cast<float*>(params[3]));
  }
  return 0;
}

}  // namespace

#define SHUFFLENAS_EXPORT(NAME, K, S)                                                                      \
  extern "C" int NAME(int nparam, void** params, int* ndims, int64_t** shapes, const char** dtypes, void*, \
                      void*) {                                                                             \
    return run<K, S>(nparam, params, ndims, shapes, dtypes);                                               \
  }

SHUFFLENAS_EXPORT(dw_forward_s1, kForward, 1)
SHUFFLENAS_EXPORT(dw_forward_s2, kForward, 2)
SHUFFLENAS_EXPORT(dw_grad_input_s1, kGradInput, 1)
SHUFFLENAS_EXPORT(dw_grad_input_s2, kGradInput, 2)
SHUFFLENAS_EXPORT(dw_grad_weight_s1, kGradWeight, 1)
SHUFFLENAS_EXPORT(dw_grad_weight_s2, kGradWeight, 2)
