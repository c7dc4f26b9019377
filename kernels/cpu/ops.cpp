#include "kernels/cpu/ops.hpp"

#include <cmath>

#include "memory/dequantize.hpp"
#include "troupe/result.hpp"

namespace troupe::kernels {

void rms_norm(const float* x, const float* w, float* y, int64_t n_rows, int64_t n, float eps) {
  rms_norm(active_kernels(), x, w, y, n_rows, n, eps);
}
void rms_norm(const kernel_table& kt, const float* x, const float* w, float* y, int64_t n_rows,
              int64_t n, float eps) {
  for (int64_t r = 0; r < n_rows; ++r) kt.rms_norm(x + r * n, w, y + r * n, n, eps);
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  active_kernels().silu_mul(gate, up, y, n);
}
void silu_mul(const kernel_table& kt, const float* gate, const float* up, float* y, int64_t n) {
  kt.silu_mul(gate, up, y, n);
}

void softmax(float* x, int64_t n) { active_kernels().softmax(x, n); }
void softmax(const kernel_table& kt, float* x, int64_t n) { kt.softmax(x, n); }

void add_inplace(float* y, const float* x, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] += x[i];  // auto-vectorised at -O3
}

void get_rows(const tensor_view& w, const int32_t* ids, int64_t n_ids, float* out) {
  for (int64_t j = 0; j < n_ids; ++j) {
    TROUPE_ASSERT(ids[j] >= 0 && ids[j] < w.ne1);
    dequantize_row(w.type, w.row(ids[j]), out + j * w.ne0, w.ne0);
  }
}

void rope_fill_cache(const int32_t* positions, int64_t n_tokens, int32_t n_rot, float freq_base,
                     float* rope_cache) {
  TROUPE_ASSERT(n_rot % 2 == 0);
  // llama.cpp (ggml rope, no scaling): theta_scale = base^(-2/n_dims), theta_0 = pos, and each
  // pair multiplies theta by theta_scale in float; cos/sin in float. Same recurrence here so
  // the angles (and hence logits) match llama.cpp's to the last bit we can.
  const float theta_scale = std::pow(freq_base, -2.0f / static_cast<float>(n_rot));
  for (int64_t t = 0; t < n_tokens; ++t) {
    float theta = static_cast<float>(positions[t]);
    float* c = rope_cache + t * n_rot;
    for (int32_t i = 0; i < n_rot / 2; ++i) {
      c[2 * i] = std::cos(theta);
      c[2 * i + 1] = std::sin(theta);
      theta *= theta_scale;
    }
  }
}

void rope_apply(float* x, int64_t n_tokens, int32_t n_heads, int32_t head_dim, int32_t n_rot,
                const float* rope_cache) {
  TROUPE_ASSERT(n_rot <= head_dim && n_rot % 2 == 0);
  for (int64_t t = 0; t < n_tokens; ++t) {
    const float* c = rope_cache + t * n_rot;
    for (int32_t h = 0; h < n_heads; ++h) {
      float* v = x + (t * n_heads + h) * head_dim;
      for (int32_t i = 0; i < n_rot / 2; ++i) {
        const float x0 = v[2 * i], x1 = v[2 * i + 1];
        const float cs = c[2 * i], sn = c[2 * i + 1];
        // As llama.cpp's rope compiles (GCC contracts x0*cs - x1*sn into one fma), checked
        // bit for bit against its Qcur/Kcur with tools/trace-diff.
        v[2 * i] = std::fma(x0, cs, -(x1 * sn));
        v[2 * i + 1] = std::fma(x0, sn, x1 * cs);
      }
    }
  }
}

}  // namespace troupe::kernels
