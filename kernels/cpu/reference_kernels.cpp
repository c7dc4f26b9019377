// The oracle: plain scalar kernels, written for obviousness rather than speed. The quantized
// dot products follow llama.cpp's generic ggml_vec_dot_* (integer sum per block, then scaled),
// so the fast kernels and llama.cpp agree with them up to float summation order.
#include <cmath>
#include <cstring>
#include <limits>
#include <vector>

#include "kernels/cpu/kernel_table.hpp"
#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"

namespace troupe::kernels {

namespace {

template <class Block>
Block load_block(const uint8_t* p) {
  Block b;
  std::memcpy(&b, p, sizeof b);
  return b;
}

// llama.cpp's reference Q8_1 quantizer (memory/dequantize.hpp), unpacked into an act row.
void quantize_row_act(const float* x, uint8_t* y, int64_t k) {
  const int64_t nb = k / 32;
  auto* d = reinterpret_cast<float*>(y + nb * 32);
  for (int64_t b = 0; b < nb; ++b) {
    block_q8_1 blk;
    troupe::quantize_row_q8_1(x + 32 * b, &blk, 32);
    std::memcpy(y + 32 * b, blk.qs, 32);
    d[b] = fp16_to_fp32(blk.d);
    d[nb + b] = fp16_to_fp32(blk.s);
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) sum += blk.qs[j];
    std::memcpy(y + nb * 40 + 4 * b, &sum, 4);
  }
}

struct act_row {
  const int8_t* qs;
  const float* d;
  const float* s;
  act_row(const uint8_t* a, int64_t nb)
      : qs(reinterpret_cast<const int8_t*>(a)),
        d(reinterpret_cast<const float*>(a + nb * 32)),
        s(d + nb) {}
};

float dot_q4_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  const act_row act(a, k / 32);
  float sum = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b) {
    const auto wb = load_block<block_q4_0>(w + b * sizeof(block_q4_0));
    const int8_t* aq = act.qs + 32 * b;
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += ((wb.qs[j] & 0x0F) - 8) * aq[j];
      sumi += ((wb.qs[j] >> 4) - 8) * aq[j + 16];
    }
    sum += static_cast<float>(sumi) * fp16_to_fp32(wb.d) * act.d[b];
  }
  return sum;
}

float dot_q4_1_q8_1(int64_t k, const uint8_t* w, const uint8_t* a) {
  const act_row act(a, k / 32);
  float sum = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b) {
    const auto wb = load_block<block_q4_1>(w + b * sizeof(block_q4_1));
    const int8_t* aq = act.qs + 32 * b;
    int32_t sumi = 0;
    for (int j = 0; j < 16; ++j) {
      sumi += (wb.qs[j] & 0x0F) * aq[j];
      sumi += (wb.qs[j] >> 4) * aq[j + 16];
    }
    // sum((d*q + m) * da*qa) = d*da*sum(q*qa) + m * (da*sum(qa)) and s = da*sum(qa).
    sum += static_cast<float>(sumi) * fp16_to_fp32(wb.d) * act.d[b] +
           fp16_to_fp32(wb.m) * act.s[b];
  }
  return sum;
}

float dot_q8_0_q8_0(int64_t k, const uint8_t* w, const uint8_t* a) {
  const act_row act(a, k / 32);
  float sum = 0.0f;
  for (int64_t b = 0; b < k / 32; ++b) {
    const auto wb = load_block<block_q8_0>(w + b * sizeof(block_q8_0));
    const int8_t* aq = act.qs + 32 * b;
    int32_t sumi = 0;
    for (int j = 0; j < 32; ++j) sumi += wb.qs[j] * aq[j];
    sum += static_cast<float>(sumi) * fp16_to_fp32(wb.d) * act.d[b];
  }
  return sum;
}

// Float weights: dequantize one element at a time and accumulate in double.
template <float (*load)(const uint8_t*, int64_t)>
float dot_float(int64_t k, const uint8_t* w, const uint8_t* a) {
  double sum = 0.0;
  for (int64_t i = 0; i < k; ++i) {
    float x;
    std::memcpy(&x, a + i * 4, 4);
    sum += static_cast<double>(load(w, i)) * x;
  }
  return static_cast<float>(sum);
}

float load_f32(const uint8_t* w, int64_t i) {
  float x;
  std::memcpy(&x, w + i * 4, 4);
  return x;
}
float load_f16(const uint8_t* w, int64_t i) {
  uint16_t h;
  std::memcpy(&h, w + i * 2, 2);
  return fp16_to_fp32(h);
}
float load_bf16(const uint8_t* w, int64_t i) {
  uint16_t h;
  std::memcpy(&h, w + i * 2, 2);
  return bf16_to_fp32(h);
}

template <float (*dot)(int64_t, const uint8_t*, const uint8_t*)>
void gemm(int64_t k, const uint8_t* w, uint64_t w_row_bytes, int64_t n_rows, const uint8_t* a,
          uint64_t a_row_bytes, int64_t n_tokens, float* y, int64_t ldy) {
  for (int64_t t = 0; t < n_tokens; ++t)
    for (int64_t r = 0; r < n_rows; ++r)
      y[t * ldy + r] = dot(k, w + r * w_row_bytes, a + t * a_row_bytes);
}

void rms_norm(const float* x, const float* w, float* y, int64_t n, float eps) {
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) sum += static_cast<double>(x[i]) * x[i];
  const float scale = static_cast<float>(1.0 / std::sqrt(sum / static_cast<double>(n) + eps));
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * scale * w[i];
}

void silu_mul(const float* gate, const float* up, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float g = gate[i];
    y[i] = g / (1.0f + std::exp(-g)) * up[i];
  }
}

void softmax(float* x, int64_t n) {
  float max = -std::numeric_limits<float>::infinity();
  for (int64_t i = 0; i < n; ++i) max = std::fmax(max, x[i]);
  double sum = 0.0;
  for (int64_t i = 0; i < n; ++i) {
    x[i] = std::exp(x[i] - max);
    sum += x[i];
  }
  const float inv = static_cast<float>(1.0 / sum);
  for (int64_t i = 0; i < n; ++i) x[i] *= inv;
}

// Two passes (scores, then weighted sum) in double: the plainest correct attention.
void attention_head(const float* q, const uint16_t* k_pages, const uint16_t* v_pages,
                    const int32_t* block_table, int32_t n_pos, int32_t block_size,
                    int32_t n_head_kv, int32_t kv_head, int32_t head_dim, float scale,
                    float* out) {
  auto row = [&](const uint16_t* pages, int32_t p) {
    const int64_t block = block_table[p / block_size];
    return pages + ((block * n_head_kv + kv_head) * block_size + p % block_size) * head_dim;
  };
  double max = -std::numeric_limits<double>::infinity();
  std::vector<double> s(static_cast<size_t>(n_pos));
  for (int32_t p = 0; p < n_pos; ++p) {
    const uint16_t* k = row(k_pages, p);
    double dot = 0.0;
    for (int32_t d = 0; d < head_dim; ++d) dot += static_cast<double>(q[d]) * fp16_to_fp32(k[d]);
    s[static_cast<size_t>(p)] = dot * scale;
    max = std::fmax(max, dot * scale);
  }
  double sum = 0.0;
  for (auto& e : s) {
    e = std::exp(e - max);
    sum += e;
  }
  std::vector<double> acc(static_cast<size_t>(head_dim), 0.0);
  for (int32_t p = 0; p < n_pos; ++p) {
    const uint16_t* v = row(v_pages, p);
    for (int32_t d = 0; d < head_dim; ++d)
      acc[static_cast<size_t>(d)] += s[static_cast<size_t>(p)] * fp16_to_fp32(v[d]);
  }
  for (int32_t d = 0; d < head_dim; ++d) out[d] = static_cast<float>(acc[static_cast<size_t>(d)] / sum);
}

void attention(const attention_tile& a) {
  for (int32_t i = 0; i < a.n_tok; ++i)
    for (int32_t g = 0; g < a.n_group; ++g) {
      const int64_t off = i * a.tok_stride + static_cast<int64_t>(g) * a.head_dim;
      attention_head(a.q + off, a.k_pages, a.v_pages, a.block_table, a.positions[i] + 1,
                     a.block_size, a.n_head_kv, a.kv_head, a.head_dim, a.scale, a.out + off);
    }
}

const kernel_table reference_table = {
    .name = "reference",
    .quantize_row_act = &quantize_row_act,
    .gemm_f32 = &gemm<&dot_float<&load_f32>>,
    .gemm_f16 = &gemm<&dot_float<&load_f16>>,
    .gemm_bf16 = &gemm<&dot_float<&load_bf16>>,
    .gemm_q4_0 = &gemm<&dot_q4_0_q8_0>,
    .gemm_q4_1 = &gemm<&dot_q4_1_q8_1>,
    .gemm_q8_0 = &gemm<&dot_q8_0_q8_0>,
    .rms_norm = &rms_norm,
    .silu_mul = &silu_mul,
    .softmax = &softmax,
    .attention = &attention,
};

}  // namespace

const kernel_table& reference_kernels() { return reference_table; }

}  // namespace troupe::kernels
