#include "kernels/cpu/fast_matmul.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "kernels/cpu/cpu_features.hpp"
#include "kernels/cpu/fast_kernel_variants.hpp"
#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/quant_blocks.hpp"

namespace troupe::kernels {

void packed_weight::free_deleter::operator()(uint8_t* p) const { std::free(p); }

bool packed_weight::packable(ggml_type type) {
  return type == ggml_type::q4_0 || type == ggml_type::q4_1 || type == ggml_type::q8_0;
}

namespace {

// Element j (0..31) of a 4-bit GGUF block's nibbles (quant_blocks.hpp: low nibble of byte j is
// element j, high nibble of byte j is element j + 16).
uint8_t nibble(const uint8_t* qs, int j) {
  return j < 16 ? static_cast<uint8_t>(qs[j] & 0x0F) : static_cast<uint8_t>(qs[j - 16] >> 4);
}

void store_f16(uint8_t* p, uint16_t h) { std::memcpy(p, &h, 2); }

}  // namespace

result<packed_weight> packed_weight::pack(const tensor_view& w) {
  if (!packable(w.type))
    return error{"fast arithmetic: tensor '" + std::string(w.name) + "' has type " +
                 std::string(ggml_type_name(w.type)) + ", which has no packed layout"};
  if (w.ne0 % 32 != 0 || w.ne0 <= 0 || w.ne1 <= 0)
    return error{"fast arithmetic: tensor '" + std::string(w.name) + "' has rows of " +
                 std::to_string(w.ne0) + " elements, not a multiple of 32"};
  packed_weight p;
  p.kind_ = w.type == ggml_type::q8_0 ? packed_kind::q8 : packed_kind::q4;
  p.k_ = w.ne0;
  p.n_ = w.ne1;
  const uint64_t bytes = p.bytes();
  auto* data = static_cast<uint8_t*>(std::aligned_alloc(64, bytes));
  if (!data) return error{"fast arithmetic: cannot allocate " + std::to_string(bytes) +
                          " bytes for the packed copy of '" + std::string(w.name) + "'"};
  std::memset(data, 0, bytes);  // padding rows: q = 0, d = m = 0 -> outputs never stored
  p.data_.reset(data);
  const int64_t nb = p.n_blocks();
  const uint64_t bb = p.block_bytes();
  for (int64_t r = 0; r < p.n_; ++r) {
    const int64_t panel = r / k_panel_rows;
    const int jr = static_cast<int>(r % k_panel_rows);
    const uint8_t* row = w.row(r);
    for (int64_t b = 0; b < nb; ++b) {
      uint8_t* rec = data + p.panel_bytes() * static_cast<uint64_t>(panel) + bb * static_cast<uint64_t>(b);
      if (p.kind_ == packed_kind::q8) {
        block_q8_0 blk;
        std::memcpy(&blk, row + sizeof(block_q8_0) * b, sizeof blk);
        for (int i = 0; i < 16; ++i)
          for (int s = 0; s < 2; ++s)
            rec[i * 32 + 2 * jr + s] = static_cast<uint8_t>(blk.qs[2 * i + s]);
        store_f16(rec + 512 + 2 * jr, blk.d);
        continue;
      }
      uint16_t d, m;
      const uint8_t* qs;
      block_q4_0 b0;
      block_q4_1 b1;
      if (w.type == ggml_type::q4_1) {
        std::memcpy(&b1, row + sizeof(block_q4_1) * b, sizeof b1);
        d = b1.d;
        m = b1.m;
        qs = b1.qs;
      } else {
        std::memcpy(&b0, row + sizeof(block_q4_0) * b, sizeof b0);
        d = b0.d;
        // w = d (q - 8) = d q + (-8 d): a power-of-two multiple, exact in fp16 unless it
        // overflows (|d| > 8191), which no real model has; refuse rather than round.
        const float m_f = -8.0f * fp16_to_fp32(d);
        m = fp32_to_fp16(m_f);
        if (fp16_to_fp32(m) != m_f)
          return error{"fast arithmetic: tensor '" + std::string(w.name) +
                       "' has a Q4_0 scale too large for the packed layout"};
        qs = b0.qs;
      }
      for (int c = 0; c < 8; ++c)
        for (int s = 0; s < 2; ++s)
          rec[c * 32 + 2 * jr + s] =
              static_cast<uint8_t>(nibble(qs, 4 * c + s) | (nibble(qs, 4 * c + 2 + s) << 4));
      store_f16(rec + 256 + 2 * jr, d);
      store_f16(rec + 288 + 2 * jr, m);
    }
  }
  return p;
}

// ---------------------------------------------------------------- the reference variant

namespace {

void reference_quantize_row(const float* x, uint8_t* y, int64_t k) {
  const int64_t nb = k / 32;
  auto* q = reinterpret_cast<int16_t*>(y);
  auto* d = reinterpret_cast<float*>(y + 2 * k);
  float* s = d + nb;
  for (int64_t b = 0; b < nb; ++b) {
    float amax = 0.0f;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[32 * b + j]));
    const float db = amax / 32767.0f;
    const float id = amax != 0.0f ? 32767.0f / amax : 0.0f;
    int32_t sum = 0;
    for (int j = 0; j < 32; ++j) {
      // nearbyint rounds half to even in the default mode, as cvtps2dq does.
      float v = std::nearbyint(x[32 * b + j] * id);
      v = std::min(32767.0f, std::max(-32767.0f, v));
      q[32 * b + j] = static_cast<int16_t>(v);
      sum += q[32 * b + j];
    }
    d[b] = db;
    s[b] = db * static_cast<float>(sum);
  }
}

// Weight integer of row jr, column 32 b + j, from a packed record.
int32_t packed_q(const uint8_t* rec, packed_kind kind, int jr, int j) {
  if (kind == packed_kind::q8) return static_cast<int8_t>(rec[(j / 2) * 32 + 2 * jr + j % 2]);
  const int c = j / 4, s = j % 2;
  const uint8_t byte = rec[c * 32 + 2 * jr + s];
  return (j % 4) < 2 ? (byte & 0x0F) : (byte >> 4);
}

float packed_scale(const uint8_t* rec, uint64_t offset, int jr) {
  uint16_t h;
  std::memcpy(&h, rec + offset + 2 * jr, 2);
  return fp16_to_fp32(h);
}

void reference_gemm(const packed_weight& w, int64_t p0, int64_t p1, const uint8_t* a,
                    uint64_t arb, int64_t n_tokens, float* y, int64_t ldy) {
  const int64_t k = w.k(), nb = w.n_blocks();
  const bool q4 = w.kind() == packed_kind::q4;
  for (int64_t p = p0; p < p1; ++p) {
    const uint8_t* panel = w.panel(p);
    for (int jr = 0; jr < k_panel_rows && p * k_panel_rows + jr < w.n(); ++jr) {
      const int64_t r = p * k_panel_rows + jr;
      for (int64_t t = 0; t < n_tokens; ++t) {
        const uint8_t* row = a + static_cast<uint64_t>(t) * arb;
        const auto* xq = reinterpret_cast<const int16_t*>(row);
        const auto* xd = reinterpret_cast<const float*>(row + 2 * k);
        const float* xs = xd + nb;
        float acc = 0.0f;
        for (int64_t b = 0; b < nb; ++b) {
          const uint8_t* rec = panel + w.block_bytes() * static_cast<uint64_t>(b);
          int32_t isum = 0;
          for (int j = 0; j < 32; ++j) isum += packed_q(rec, w.kind(), jr, j) * xq[32 * b + j];
          const float dw = packed_scale(rec, q4 ? 256 : 512, jr);
          acc = std::fma(static_cast<float>(isum), dw * xd[b], acc);
          if (q4) acc = std::fma(packed_scale(rec, 288, jr), xs[b], acc);
        }
        y[t * ldy + r] = acc;
      }
    }
  }
}

const fast_kernel_table k_reference_table{"reference", reference_quantize_row, reference_gemm};

}  // namespace

const fast_kernel_table& reference_fast_kernels() { return k_reference_table; }

namespace {

// Whether `kt` gives the reference's bits on random Q4_1 and Q8_0 weights (every tile shape it
// has: token counts around its 16-token tile, a partial last panel).
bool agrees_with_reference(const fast_kernel_table& kt) {
  uint32_t state = 12345;
  auto next = [&] {
    state = state * 1664525u + 1013904223u;
    return static_cast<float>(state >> 8) / static_cast<float>(1u << 24) * 2.0f - 1.0f;
  };
  thread_pool pool(1);
  for (ggml_type type : {ggml_type::q4_1, ggml_type::q8_0}) {
    const int64_t rows = 40, k = 96, tokens = 37;
    const uint64_t rb = ggml_row_bytes(type, k);
    std::vector<uint8_t> bytes(rb * rows);
    std::vector<float> src(static_cast<size_t>(k));
    for (int64_t r = 0; r < rows; ++r) {
      for (auto& v : src) v = next();
      if (type == ggml_type::q4_1)
        quantize_row_q4_1(src.data(), bytes.data() + rb * r, k);
      else
        quantize_row_q8_0(src.data(), bytes.data() + rb * r, k);
    }
    tensor_view w;
    w.name = "self-check";
    w.type = type;
    w.ne0 = k;
    w.ne1 = rows;
    w.row_bytes = rb;
    w.data = bytes.data();
    auto packed = packed_weight::pack(w);
    if (!packed) return false;
    std::vector<float> x(static_cast<size_t>(tokens * k));
    for (auto& v : x) v = next() * (next() > 0.9f ? 30.0f : 1.0f);
    std::vector<float> want(static_cast<size_t>(tokens * rows)), got(want.size());
    fast_matmul(k_reference_table, *packed, x.data(), tokens, want.data(), pool);
    fast_matmul(kt, *packed, x.data(), tokens, got.data(), pool);
    if (std::memcmp(want.data(), got.data(), want.size() * sizeof(float)) != 0) return false;
  }
  return true;
}

// The AMX variant if it may run here (fast_matmul.hpp), else nullptr; decided once.
const fast_kernel_table* amx_fast_kernels_if_usable() {
  static const fast_kernel_table* const usable = []() -> const fast_kernel_table* {
    if (!detected_cpu_features().amx_int8) return nullptr;
    if (!request_amx_permission()) {
      std::fprintf(stderr, "troupe: the CPU has AMX but Linux refused the tile permission "
                           "(arch_prctl); the fast arithmetic runs on AVX-512\n");
      return nullptr;
    }
    if (!agrees_with_reference(amx_fast_kernels())) {
      std::fprintf(stderr, "troupe: the AMX kernels failed their self-check against the "
                           "reference; the fast arithmetic runs on AVX-512\n");
      return nullptr;
    }
    return &amx_fast_kernels();
  }();
  return usable;
}

}  // namespace

std::span<const fast_kernel_table* const> available_fast_kernel_tables() {
  static const std::vector<const fast_kernel_table*> tables = [] {
    std::vector<const fast_kernel_table*> t{&k_reference_table};
    const cpu_features& f = detected_cpu_features();
    if (f.avx2_fma) t.push_back(&avx2_fast_kernels());
    if (f.avx512_vnni) t.push_back(&avx512_fast_kernels());
    if (const fast_kernel_table* amx = amx_fast_kernels_if_usable()) t.push_back(amx);
    return t;
  }();
  return tables;
}

const fast_kernel_table& active_fast_kernels() {
  return *available_fast_kernel_tables().back();
}

fast_matmul_split::fast_matmul_split(std::span<const fast_matmul_output> outputs,
                                     int64_t n_tokens, int threads)
    : n_tokens_(n_tokens) {
  TROUPE_ASSERT(!outputs.empty() && outputs.size() <= k_max_outputs && threads >= 1);
  for (size_t i = 0; i < outputs.size(); ++i)
    first_panel_[i + 1] = first_panel_[i] + outputs[i].w->n_panels();
  for (size_t i = outputs.size() + 1; i <= k_max_outputs; ++i)
    first_panel_[i] = first_panel_[outputs.size()];
  total_panels_ = first_panel_[outputs.size()];
  // Tokens per task: a task's act16 rows (64 x ~1.3 KB for K = 576) stay in L2 while its
  // panels' weights (~6 KB each for K = 576) stay in L1 across the token tiles.
  n_token_chunks_ = (n_tokens + k_token_chunk - 1) / k_token_chunk;
  if (n_tokens <= k_few_tokens)
    panel_chunk_ = (total_panels_ + k_decode_tasks_per_thread * threads - 1) /
                   (k_decode_tasks_per_thread * threads);
  else
    panel_chunk_ = std::clamp<int64_t>((total_panels_ + 8 * threads - 1) / (8 * threads), 1, 4);
  n_panel_chunks_ = (total_panels_ + panel_chunk_ - 1) / panel_chunk_;
}

void fast_matmul_multi(const fast_kernel_table& kt, std::span<const fast_matmul_output> outputs,
                       const float* x, int64_t n_tokens, thread_pool& pool) {
  TROUPE_ASSERT(n_tokens >= 0);
  TROUPE_ASSERT(!outputs.empty() && outputs.size() <= fast_matmul_split::k_max_outputs);
  if (n_tokens == 0) return;
  const int64_t k = outputs[0].w->k();
  for (const auto& o : outputs) TROUPE_ASSERT(o.w->k() == k);

  const uint64_t arb = act16_row_bytes(k);
  thread_local std::vector<uint8_t> scratch;
  const uint64_t need = arb * static_cast<uint64_t>(n_tokens) + 64;
  if (scratch.size() < need) scratch.resize(need);
  uint8_t* a = scratch.data() + (64 - reinterpret_cast<uintptr_t>(scratch.data()) % 64) % 64;
  if (n_tokens >= 16) {
    pool.parallel_for(n_tokens, [&](int64_t t, int) {
      kt.quantize_row(x + t * k, a + static_cast<uint64_t>(t) * arb, k);
    });
  } else {
    for (int64_t t = 0; t < n_tokens; ++t)
      kt.quantize_row(x + t * k, a + static_cast<uint64_t>(t) * arb, k);
  }

  const fast_matmul_split split(outputs, n_tokens, pool.num_threads());
  pool.parallel_for(split.n_tasks(), [&](int64_t task, int) {
    split.run(kt, outputs, task, a, arb, [](size_t, int64_t, int64_t, int64_t, int64_t) {});
  });
}

}  // namespace troupe::kernels
