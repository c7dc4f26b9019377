// The llama forward pass against llama.cpp (tools/gen-logits-oracle wrote the data with
// llama-cpp-python on the default model): teacher-forced logits at every prompt position and
// 64-token greedy continuations, for 22 prompts (short, 1,185 tokens, code, chat, multilingual).
#include <simdjson.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>

#include "memory/float16.hpp"
#include "model_fixture.hpp"

using namespace troupe;
using namespace troupe::engine;
using namespace troupe::engine::testing;

namespace {

// Stated bounds. The engine computes llama.cpp's x86 operations in llama.cpp's order, bit for
// bit (kernels/cpu/ggml_arithmetic.hpp says why that is needed: activations are rounded to 8
// bits before every matmul, and on this model a last-bit difference anywhere flips roundings
// that grow to 0.1-0.2 logits, which changed the argmax at 3% of positions before). Measured
// (AVX-512 and AVX2 tables, 2 threads): 1745/1745 positions agree, top-8 logits identical
// (diff 0), 22/22 continuations identical. The bounds leave room for a CPU whose libm cosf /
// sinf (RoPE angles) round differently from this machine's glibc, and for the stored fp16 copy
// of the last row (<= ~0.01 of rounding).
constexpr double min_top1_agreement = 0.99;   // the bar
constexpr float max_flip_gap = 0.05f;         // a top-1 flip needs llama.cpp's top-2 gap below this
constexpr float max_logit_diff = 0.05f;       // |ours - llama.cpp| on llama.cpp's top-8 tokens
constexpr float max_mean_logit_diff = 0.005f; // mean of the same over all positions
constexpr float max_last_row_diff = 0.05f;    // full vocabulary, against the fp16 copy
constexpr int min_identical_continuations = 20;  // of 22 (the issue asks 18 of 20)

struct oracle_prompt {
  std::string name;
  std::vector<int32_t> tokens;
  std::vector<int32_t> continuation;
  std::vector<float> top2_gap;               // per prompt position, llama.cpp
  std::vector<float> continuation_top2_gap;  // per continuation step, llama.cpp
  std::vector<int32_t> top_ids;              // [n][top_k]
  std::vector<float> top_vals;               // [n][top_k]
  std::vector<float> last_logits;            // [n_vocab]
};

struct oracle {
  int64_t top_k = 0;
  std::vector<oracle_prompt> prompts;
};

const oracle& load_oracle(int64_t n_vocab) {
  static oracle o = [n_vocab] {
    oracle r;
    const std::string dir = std::string(TROUPE_SOURCE_DIR) + "/tests/data/engine/";
    std::ifstream bin(dir + "logits_oracle.bin", std::ios::binary);
    std::vector<char> blob((std::istreambuf_iterator<char>(bin)), std::istreambuf_iterator<char>());
    simdjson::dom::parser parser;
    simdjson::dom::element doc = parser.load(dir + "logits_oracle.json");
    r.top_k = int64_t(doc["top_k"]);
    for (simdjson::dom::element p : doc["prompts"].get_array()) {
      oracle_prompt op;
      op.name = std::string(std::string_view(p["name"]));
      for (int64_t t : p["tokens"].get_array()) op.tokens.push_back(static_cast<int32_t>(t));
      for (int64_t t : p["continuation"].get_array())
        op.continuation.push_back(static_cast<int32_t>(t));
      for (double g : p["top2_gap"].get_array()) op.top2_gap.push_back(static_cast<float>(g));
      for (double g : p["continuation_top2_gap"].get_array())
        op.continuation_top2_gap.push_back(static_cast<float>(g));
      const size_t n = op.tokens.size() * r.top_k;
      op.top_ids.resize(n);
      op.top_vals.resize(n);
      std::memcpy(op.top_ids.data(), blob.data() + int64_t(p["top_ids_offset"]), n * 4);
      std::memcpy(op.top_vals.data(), blob.data() + int64_t(p["top_vals_offset"]), n * 4);
      std::vector<uint16_t> half(n_vocab);
      std::memcpy(half.data(), blob.data() + int64_t(p["last_logits_f16_offset"]), n_vocab * 2);
      for (uint16_t h : half) op.last_logits.push_back(fp16_to_fp32(h));
      r.prompts.push_back(std::move(op));
    }
    return r;
  }();
  return o;
}

}  // namespace

TEST_CASE("teacher-forced logits agree with llama.cpp", "[model][oracle]") {
  const auto& file = default_model_file();
  llama_model model(file, test_pool());
  const int64_t V = model.n_vocab();
  const oracle& o = load_oracle(V);
  REQUIRE(o.prompts.size() >= 20);
  auto kv = make_storage(model, 96);

  int64_t positions = 0, agree = 0;
  double sum_diff = 0.0;
  float worst = 0.0f, worst_last_row = 0.0f;
  for (const auto& p : o.prompts) {
    INFO("prompt " << p.name);
    test_sequence seq{iota_blocks(0, 96), 0};
    // Chunks of 256: the long prompt's all-position logits would not fit in memory at once.
    const auto logits = feed(model, kv, seq, p.tokens, 256, true);
    const int64_t n = static_cast<int64_t>(p.tokens.size());
    for (int64_t i = 0; i < n; ++i) {
      const float* row = logits.data() + i * V;
      const int32_t ours = argmax(row, V);
      const int32_t theirs = p.top_ids[i * o.top_k];
      if (ours == theirs) {
        ++agree;
      } else {
        // A flip is only acceptable between two nearly equal candidates.
        INFO("position " << i << ": ours " << ours << ", llama.cpp " << theirs << ", gap "
                         << p.top2_gap[i]);
        CHECK(p.top2_gap[i] < max_flip_gap);
      }
      for (int64_t k = 0; k < o.top_k; ++k) {
        const float d = std::abs(row[p.top_ids[i * o.top_k + k]] - p.top_vals[i * o.top_k + k]);
        worst = std::max(worst, d);
        sum_diff += d;
      }
      ++positions;
    }
    const float* last = logits.data() + (n - 1) * V;
    for (int64_t v = 0; v < V; ++v)
      worst_last_row = std::max(worst_last_row, std::abs(last[v] - p.last_logits[v]));
  }
  const double agreement = double(agree) / positions;
  const double mean_diff = sum_diff / (positions * o.top_k);
  std::printf("oracle: top-1 agreement %lld/%lld = %.4f; top-%lld logit diff max %.4f mean %.5f; "
              "last-row full-vocab max diff %.4f (fp16 storage adds <= ~0.01)\n",
              (long long)agree, (long long)positions, agreement, (long long)o.top_k, worst,
              mean_diff, worst_last_row);
  CHECK(agreement >= min_top1_agreement);
  CHECK(worst <= max_logit_diff);
  CHECK(mean_diff <= max_mean_logit_diff);
  CHECK(worst_last_row <= max_last_row_diff);
}

TEST_CASE("greedy continuations match llama.cpp", "[model][oracle]") {
  const auto& file = default_model_file();
  llama_model model(file, test_pool());
  const int64_t V = model.n_vocab();
  const oracle& o = load_oracle(V);
  auto kv = make_storage(model, 96);

  int identical = 0;
  for (const auto& p : o.prompts) {
    test_sequence seq{iota_blocks(0, 96), 0, static_cast<int32_t>(p.tokens.size())};
    auto logits = feed(model, kv, seq, p.tokens, p.tokens.size(), false);
    std::vector<int32_t> ours;
    for (size_t i = 0; i < p.continuation.size(); ++i) {
      const int32_t tok = argmax(logits.data(), V);
      ours.push_back(tok);
      if (tok != p.continuation[i]) {
        std::printf("oracle: '%s' diverges at step %zu (ours %d, llama.cpp %d, llama.cpp top-2 "
                    "gap %.4f)\n", p.name.c_str(), i, tok, p.continuation[i],
                    p.continuation_top2_gap[i]);
        INFO("prompt " << p.name << " step " << i);
        CHECK(p.continuation_top2_gap[i] < max_flip_gap);  // a divergence is a top-1 flip
        break;
      }
      logits = feed(model, kv, seq, {tok}, 1, false);
    }
    if (ours == p.continuation) ++identical;
  }
  std::printf("oracle: %d/%zu greedy continuations identical over %zu tokens\n", identical,
              o.prompts.size(), o.prompts[0].continuation.size());
  CHECK(identical >= min_identical_continuations);
}
