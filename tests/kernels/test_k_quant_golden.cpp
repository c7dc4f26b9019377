// The Q5_0, Q5_1, Q4_K, Q5_K and Q6_K kernels against ggml's own results, bit for bit:
// tests/data/kernels/k_quant_golden.bin is written by tools/gen-k-quant-golden, which runs
// ggml's quantizers, dequantizers, x86 activation quantizers and vec_dots (built from the
// llama-cpp-python sdist the oracle uses), and a real mul_mat of a Q4_K matrix in ggml-cpu's
// repacked layout (what llama.cpp runs for Q4_K on x86). Every kernel variant this CPU has must
// agree: the dequantized weights (embedding lookups), the quantized activations and every dot.
#include <catch2/catch.hpp>

#include <cstdint>
#include <cstring>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>
#include <vector>

#include "kernels/cpu/kernel_table.hpp"
#include "memory/dequantize.hpp"
#include "memory/float16.hpp"
#include "memory/ggml_type.hpp"
#include "memory/quant_blocks.hpp"

namespace {

using troupe::ggml_type;
using namespace troupe::kernels;

// Weight type ids above 1000 mark dots in llama.cpp's repacked order (weight type id - 1000).
constexpr uint32_t k_repacked = 1000;

struct golden_case {
  ggml_type weight_type, act_type;
  bool repacked = false;  // dots from a mul_mat on ggml's CPU_REPACK buffer
  uint32_t k, n_rows, n_tokens;
  std::vector<uint8_t> weights, act_quantized;
  std::vector<float> dequantized, activations, dots;
};

class reader {
 public:
  explicit reader(std::vector<uint8_t> bytes) : bytes_(std::move(bytes)) {}
  uint32_t u32() {
    uint32_t v;
    take(&v, 4);
    return v;
  }
  std::vector<uint8_t> bytes(size_t n) {
    std::vector<uint8_t> v(n);
    take(v.data(), n);
    return v;
  }
  std::vector<float> floats(size_t n) {
    std::vector<float> v(n);
    take(v.data(), n * 4);
    return v;
  }
  bool done() const { return pos_ == bytes_.size(); }

 private:
  void take(void* dst, size_t n) {
    if (bytes_.size() - pos_ < n) throw std::runtime_error("k_quant_golden.bin is truncated");
    std::memcpy(dst, bytes_.data() + pos_, n);
    pos_ += n;
  }
  std::vector<uint8_t> bytes_;
  size_t pos_ = 0;
};

std::vector<golden_case> load_golden() {
  const std::string path = std::string(TROUPE_SOURCE_DIR) + "/tests/data/kernels/k_quant_golden.bin";
  std::ifstream in(path, std::ios::binary);
  if (!in) throw std::runtime_error(path + " is missing: run tools/gen-k-quant-golden");
  reader r(std::vector<uint8_t>(std::istreambuf_iterator<char>(in), {}));
  if (r.u32() != 0x47514B54u || r.u32() != 1) throw std::runtime_error(path + ": not a version-1 TKQG file");
  std::vector<golden_case> cases(r.u32());
  for (auto& c : cases) {
    const uint32_t wt = r.u32();
    c.repacked = wt > k_repacked;
    c.weight_type = static_cast<ggml_type>(c.repacked ? wt - k_repacked : wt);
    c.act_type = static_cast<ggml_type>(r.u32());
    c.k = r.u32();
    c.n_rows = r.u32();
    c.n_tokens = r.u32();
    const uint64_t act_bytes = c.act_type == ggml_type::q8_k
                                   ? c.k / 256 * sizeof(troupe::block_q8_k)
                                   : troupe::ggml_row_bytes(c.act_type, c.k);
    c.weights = r.bytes(troupe::ggml_row_bytes(c.weight_type, c.k) * c.n_rows);
    c.dequantized = r.floats(size_t{c.k} * c.n_rows);
    c.activations = r.floats(size_t{c.k} * c.n_tokens);
    c.act_quantized = r.bytes(act_bytes * c.n_tokens);
    c.dots = r.floats(size_t{c.n_tokens} * c.n_rows);
  }
  if (!r.done()) throw std::runtime_error(path + " has trailing bytes");
  return cases;
}

uint32_t bits(float f) {
  uint32_t b;
  std::memcpy(&b, &f, 4);
  return b;
}

gemm_fn gemm_for(const kernel_table& kt, const golden_case& c) {
  if (c.repacked) return c.weight_type == ggml_type::q4_k ? kt.gemm_q4_k_x8 : nullptr;
  switch (c.weight_type) {
    case ggml_type::q5_0: return kt.gemm_q5_0;
    case ggml_type::q5_1: return kt.gemm_q5_1;
    case ggml_type::q4_k: return kt.gemm_q4_k;
    case ggml_type::q5_k: return kt.gemm_q5_k;
    case ggml_type::q6_k: return kt.gemm_q6_k;
    default: return nullptr;
  }
}

// A 64-byte aligned byte buffer (act rows must be).
struct aligned_bytes {
  explicit aligned_bytes(size_t n) : storage(n + 64) {}
  uint8_t* data() {
    const auto p = reinterpret_cast<uintptr_t>(storage.data());
    return storage.data() + (64 - p % 64) % 64;
  }
  std::vector<uint8_t> storage;
};

// Our act rows hold ggml's Q8_0 / Q8_1 blocks unpacked (kernel_table.hpp): compare field by field.
void check_act_row_matches(const golden_case& c, const uint8_t* row, const uint8_t* golden) {
  const bool q8_1 = c.act_type == ggml_type::q8_1;
  const size_t block_bytes = q8_1 ? sizeof(troupe::block_q8_1) : sizeof(troupe::block_q8_0);
  const uint32_t nb = c.k / 32;
  const auto* d = reinterpret_cast<const float*>(row + nb * 32);
  for (uint32_t b = 0; b < nb; ++b) {
    const uint8_t* g = golden + b * block_bytes;
    uint16_t gd, gs = 0;
    std::memcpy(&gd, g, 2);
    if (q8_1) std::memcpy(&gs, g + 2, 2);
    INFO("block " << b);
    CHECK(bits(d[b]) == bits(troupe::fp16_to_fp32(gd)));
    if (q8_1) CHECK(bits(d[nb + b]) == bits(troupe::fp16_to_fp32(gs)));
    CHECK(std::memcmp(row + 32 * b, g + (q8_1 ? 4 : 2), 32) == 0);
  }
}

}  // namespace

TEST_CASE("Q5 and K-quant weights dequantize to ggml's bits", "[k_quant][golden]") {
  for (const auto& c : load_golden()) {
    INFO(troupe::ggml_type_name(c.weight_type));
    std::vector<float> y(c.dequantized.size());
    troupe::dequantize_row(c.weight_type, c.weights.data(), y.data(), static_cast<int64_t>(y.size()));
    size_t mismatches = 0, first = y.size();
    for (size_t i = 0; i < y.size(); ++i)
      if (bits(y[i]) != bits(c.dequantized[i])) {
        if (mismatches++ == 0) first = i;
      }
    INFO("first mismatch at " << first);
    CHECK(mismatches == 0);
  }
}

TEST_CASE("Q5 and K-quant dots match ggml's vec_dot bit for bit, every kernel variant",
          "[k_quant][golden]") {
  const auto cases = load_golden();
  REQUIRE(cases.size() == 6);
  for (const kernel_table* kt : available_kernel_tables()) {
    for (const auto& c : cases) {
      INFO(kt->name << ": " << troupe::ggml_type_name(c.weight_type)
                    << (c.repacked ? " (repacked order)" : "") << " x "
                    << troupe::ggml_type_name(c.act_type));
      const bool k_act = c.act_type == ggml_type::q8_k;
      const uint64_t arb = k_act ? act_k_row_bytes(c.k) : act_row_bytes(c.k);
      const uint64_t golden_arb = c.act_quantized.size() / c.n_tokens;
      aligned_bytes act(arb * c.n_tokens);
      for (uint32_t t = 0; t < c.n_tokens; ++t) {
        INFO("token " << t);
        uint8_t* row = act.data() + t * arb;
        const float* x = c.activations.data() + size_t{t} * c.k;
        const uint8_t* golden = c.act_quantized.data() + t * golden_arb;
        if (k_act) {
          kt->quantize_row_act_k(x, row, c.k);
          CHECK(std::memcmp(row, golden, golden_arb) == 0);
        } else {
          kt->quantize_row_act(x, row, c.k);
          check_act_row_matches(c, row, golden);
        }
      }
      const gemm_fn gemm = gemm_for(*kt, c);
      REQUIRE(gemm != nullptr);
      std::vector<float> y(c.dots.size());
      const uint64_t wrb = troupe::ggml_row_bytes(c.weight_type, c.k);
      // llama.cpp's repacked mul_mat runs tokens [0, n - n % 4) through its gemm (another order).
      const uint32_t n_gemm = c.repacked ? c.n_tokens - c.n_tokens % 4 : 0;
      if (n_gemm > 0) kt->gemm_q4_k_x8x4(c.k, c.weights.data(), wrb, c.n_rows, act.data(), arb, n_gemm, y.data(), c.n_rows);
      gemm(c.k, c.weights.data(), wrb, c.n_rows, act.data() + n_gemm * arb, arb, c.n_tokens - n_gemm,
           y.data() + size_t{n_gemm} * c.n_rows, c.n_rows);
      for (size_t i = 0; i < y.size(); ++i) {
        INFO("token " << i / c.n_rows << " row " << i % c.n_rows << ": " << y[i] << " vs ggml "
                      << c.dots[i]);
        CHECK(bits(y[i]) == bits(c.dots[i]));
      }
    }
  }
}
