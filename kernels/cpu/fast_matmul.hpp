// fast_matmul: the matmuls of the "fast" arithmetic mode (issue 9). y = x · Wᵀ with W repacked
// once at load into panels, and x rounded to 16-bit integers per block of 32, so that the
// whole dot product is an exact integer sum per block and only a short, fixed float epilogue
// rounds. Every kernel variant (scalar reference, AVX2, AVX-512 VNNI, AMX) computes the same
// integers and the same float operations in the same order, so:
//   * batch invariance: an output depends only on its weight row and its activation row --
//     not on the batch, the tile it lands in, the thread split, or the variant's width;
//   * the variants agree bit for bit (tests/kernels/test_fast_matmul.cpp), so the engine gives
//     the same logits on Zen 4 and on an AMX Xeon.
//
// ---- the arithmetic (the definition; reference_gemm in fast_matmul.cpp spells it) ----
// Activation row x[K], per block b of 32 (q_x: int16, d_x, s_x: float):
//     a = max_j |x_j|;  d_x = a / 32767;  q_x[j] = round_half_even(x_j * (32767 / a))   (a = 0: all 0)
//     s_x = d_x * float(sum_j q_x[j])
// Weight row n, block b (from the GGUF block, exact): w_j = d_w * q_w[j] + m_w, with
//     Q4_1: q_w = nibble (0..15), d_w = d, m_w = m;   Q4_0: q_w = nibble, d_w = d, m_w = -8 d;
//     Q8_0: q_w = int8, d_w = d, m_w = 0.
// Output:  acc = 0;  for b = 0 .. K/32-1:
//              acc = fma(float(isum_b), d_w * d_x, acc)      isum_b = sum_j q_w[j] * q_x[j] (exact)
//              acc = fma(m_w, s_x, acc)                     (Q4 kinds only)
//          y = acc
// 16-bit activations (not llama.cpp's 8): their rounding error is 1/65534 of the block's
// largest value instead of 1/254, which is where llama.cpp loses accuracy against an fp32
// reference (docs/ARCHITECTURE.md "Arithmetic modes" gives the measured KL divergences).
//
// ---- packed weights (memory: see packed_weight::bytes) ----
// Rows in panels of 16 (the last one zero-padded); per panel, per block b of 32 columns one
// record of block_bytes:
//   q4 kind (Q4_0, Q4_1): 256 bytes of nibbles, then d_w[16] and m_w[16] as fp16  (320 bytes)
//      byte c*32 + 2j + s (chunk c = 0..7, row j = 0..15, s = 0..1) holds
//      q_w[j][4c + s] in its low nibble and q_w[j][4c + 2 + s] in its high nibble,
//      so one 32-byte chunk widened to 16-bit lanes gives, per row, the column pairs
//      (4c, 4c+1) (low nibbles) and (4c+2, 4c+3) (high nibbles): vpdpwssd's layout.
//   q8 kind (Q8_0): 512 bytes, byte i*32 + 2j + s = q_w[j][2i + s], then d_w[16] fp16, then
//      32 bytes of padding (576 bytes).
// The GGUF mapping stays the source; the packed copy is made once per model (per stage's
// layers) and shared by every executor (restarts do not repack).
//
// Threading: fast_matmul_multi drives the pool like kernels::matmul_multi (one caller per pool).
#pragma once

#include <algorithm>
#include <cstdint>
#include <memory>
#include <span>

#include "kernels/cpu/thread_pool.hpp"
#include "memory/tensor_view.hpp"
#include "troupe/result.hpp"

namespace troupe::kernels {

enum class packed_kind : uint8_t { q4, q8 };

inline constexpr int64_t k_panel_rows = 16;

class packed_weight {
 public:
  packed_weight() = default;
  // Repacks w (Q4_0, Q4_1 or Q8_0, K % 32 == 0). Errors name the tensor and its type.
  static result<packed_weight> pack(const tensor_view& w);
  // Whether pack() accepts this tensor type.
  static bool packable(ggml_type type);

  packed_kind kind() const { return kind_; }
  int64_t k() const { return k_; }           // columns (input dimension)
  int64_t n() const { return n_; }           // rows (output dimension)
  int64_t n_panels() const { return (n_ + k_panel_rows - 1) / k_panel_rows; }
  int64_t n_blocks() const { return k_ / 32; }
  uint64_t block_bytes() const { return kind_ == packed_kind::q4 ? 320 : 576; }
  uint64_t panel_bytes() const { return block_bytes() * static_cast<uint64_t>(n_blocks()); }
  const uint8_t* panel(int64_t p) const { return data_.get() + panel_bytes() * static_cast<uint64_t>(p); }
  uint64_t bytes() const { return panel_bytes() * static_cast<uint64_t>(n_panels()); }

 private:
  struct free_deleter {
    void operator()(uint8_t* p) const;
  };
  packed_kind kind_ = packed_kind::q4;
  int64_t k_ = 0, n_ = 0;
  std::unique_ptr<uint8_t[], free_deleter> data_;
};

// Activation rows of the fast arithmetic, each act16_row_bytes(K) bytes, 64-byte aligned:
//   int16 q[K] | float d[K/32] | float s[K/32] | (pad to 64) | int8 hi[K] | uint8 lo[K]
// hi/lo (q = 256 hi + lo) are the byte planes AMX's int8 tile products take; only the AMX
// variant writes and reads them.
constexpr uint64_t act16_split_offset(int64_t k) {
  return (static_cast<uint64_t>(k) * 2 + static_cast<uint64_t>(k / 32) * 8 + 63) / 64 * 64;
}
constexpr uint64_t act16_row_bytes(int64_t k) {
  return (act16_split_offset(k) + 2 * static_cast<uint64_t>(k) + 63) / 64 * 64;
}

// One variant of the fast kernels. All variants give identical bits.
struct fast_kernel_table {
  const char* name;  // "reference", "avx2", "avx512", "amx"
  // x[k] -> one act16 row at y. REQUIRES: k % 32 == 0, y 64-byte aligned.
  void (*quantize_row)(const float* x, uint8_t* y, int64_t k);
  // Panels [p0, p1) of w against n_tokens act16 rows a (row t at a + t * arb):
  //   y[t * ldy + r] for rows r of those panels that exist (r < w.n()).
  void (*gemm)(const packed_weight& w, int64_t p0, int64_t p1, const uint8_t* a, uint64_t arb,
               int64_t n_tokens, float* y, int64_t ldy);
};

const fast_kernel_table& reference_fast_kernels();
// Reference first, then the faster ones this CPU can run (honouring TROUPE_CPU). AMX comes last
// when this CPU has AMX-INT8, Linux granted the tile permission and the variant passed its
// start-up self-check against the reference bits.
std::span<const fast_kernel_table* const> available_fast_kernel_tables();
const fast_kernel_table& active_fast_kernels();

struct fast_matmul_output {
  const packed_weight* w = nullptr;
  float* y = nullptr;  // [n_tokens, w->n()]
};

// How fast_matmul_multi cuts its work into pool tasks, for callers that run the tasks inside
// their own dispatch (task_phases) and add an epilogue per piece. The outputs' panels, taken
// in order as one list, are cut into runs of consecutive panels (a run may span two outputs),
// times chunks of up to 64 tokens. Many tokens: short runs (at most 4 panels, ~8 per thread)
// so a run's weights stay in L1 across the token tiles. Few tokens (a decode step): ~2 runs
// per thread, long contiguous weight streams for the prefetchers and few claims. No split
// changes a result (the arithmetic above).
class fast_matmul_split {
 public:
  // outputs: their shapes (K, rows) decide the split; run() may be given other outputs of the
  // same shapes (the same matrices of another layer).
  fast_matmul_split(std::span<const fast_matmul_output> outputs, int64_t n_tokens, int threads);
  int64_t n_tasks() const { return n_panel_chunks_ * n_token_chunks_; }
  // Runs task `task` of `outputs` on act16 rows a (row t at a + t * arb, arb =
  // act16_row_bytes(K)), then calls after(output index, p0, p1, t0, t1) for each output piece
  // it wrote: panels [p0, p1) of that output, tokens [t0, t1).
  template <class After>
  void run(const fast_kernel_table& kt, std::span<const fast_matmul_output> outputs,
           int64_t task, const uint8_t* a, uint64_t arb, After&& after) const {
    const int64_t pc = task % n_panel_chunks_;
    const int64_t t0 = (task / n_panel_chunks_) * k_token_chunk;
    const int64_t t1 = std::min(n_tokens_, t0 + k_token_chunk);
    int64_t g0 = pc * panel_chunk_;
    const int64_t g1 = std::min(total_panels_, g0 + panel_chunk_);
    size_t i = 0;
    while (g0 >= first_panel_[i + 1]) ++i;
    for (; g0 < g1; ++i) {
      const packed_weight& w = *outputs[i].w;
      const int64_t p0 = g0 - first_panel_[i];
      const int64_t p1 = std::min(w.n_panels(), g1 - first_panel_[i]);
      kt.gemm(w, p0, p1, a + static_cast<uint64_t>(t0) * arb, arb, t1 - t0,
              outputs[i].y + t0 * w.n(), w.n());
      after(i, p0, p1, t0, t1);
      g0 = first_panel_[i] + p1;
    }
  }

  static constexpr int64_t k_token_chunk = 64;
  static constexpr size_t k_max_outputs = 8;
  // "Few tokens": at most one token tile of the kernels, so weights are read once per task.
  static constexpr int64_t k_few_tokens = 8;
  // Tasks per thread for few tokens: 2 leaves the dynamic claims some balance (a descheduled
  // or slower thread) at one claim per ~40 KB of weights.
  static constexpr int64_t k_decode_tasks_per_thread = 2;

 private:
  int64_t n_tokens_;
  int64_t first_panel_[k_max_outputs + 1] = {0};  // of output i in the one list
  int64_t total_panels_ = 0;
  int64_t panel_chunk_ = 1;
  int64_t n_panel_chunks_ = 0;
  int64_t n_token_chunks_ = 0;
};

// x [n_tokens, k] floats -> n_tokens act16 rows at a (row t at a + t * act16_row_bytes(k)).
inline void fast_quantize_rows(const fast_kernel_table& kt, const float* x, int64_t n_tokens,
                               int64_t k, uint8_t* a) {
  for (int64_t t = 0; t < n_tokens; ++t)
    kt.quantize_row(x + t * k, a + static_cast<uint64_t>(t) * act16_row_bytes(k), k);
}

// Several packed weights of the same K against the same x [n_tokens, K] floats: x is
// quantized once, and all outputs share one parallel_for. At most 8 outputs.
void fast_matmul_multi(const fast_kernel_table& kt, std::span<const fast_matmul_output> outputs,
                       const float* x, int64_t n_tokens, thread_pool& pool);
inline void fast_matmul(const fast_kernel_table& kt, const packed_weight& w, const float* x,
                        int64_t n_tokens, float* y, thread_pool& pool) {
  const fast_matmul_output o{&w, y};
  fast_matmul_multi(kt, std::span<const fast_matmul_output>(&o, 1), x, n_tokens, pool);
}

}  // namespace troupe::kernels
