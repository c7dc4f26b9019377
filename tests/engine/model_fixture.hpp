// Shared set-up of the engine tests that run the real default model: one loaded file, one
// thread pool, helpers to run a sequence through llama_model with a private block table.
#pragma once

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <algorithm>
#include <cstdio>
#include <limits>
#include <memory>
#include <numeric>
#include <string>
#include <vector>

#include "engine/fast_weights.hpp"
#include "engine/llama_model.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"

namespace troupe::engine::testing {

// The default model, loaded once for the whole test executable. Fails the test (with the
// command that fetches the model) when it is missing.
inline const llama_model_file& default_model_file() {
  static std::unique_ptr<llama_model_file> file = [] {
    auto r = load_llama_model(TROUPE_DEFAULT_MODEL);
    if (!r.ok()) {
      std::fprintf(stderr, "cannot load %s: %s (run `make model`)\n", TROUPE_DEFAULT_MODEL,
                   r.message().c_str());
      return std::unique_ptr<llama_model_file>();
    }
    return std::make_unique<llama_model_file>(std::move(r.value()));
  }();
  REQUIRE(file != nullptr);
  return *file;
}

inline kernels::thread_pool& test_pool() {
  static kernels::thread_pool pool(2);
  return pool;
}

// llama.cpp-exact arithmetic with kernel variant kt (nullptr: the fastest this CPU has).
inline model_options exact_options(const kernels::kernel_table* kt) {
  model_options o;
  o.mode = arithmetic::llama_cpp_exact;
  o.kt = kt;
  return o;
}

// The fast arithmetic, with the default model's weights packed once for the whole executable.
inline model_options fast_options() {
  static std::shared_ptr<const fast_weights> packed = [] {
    const auto& file = default_model_file();
    auto p = fast_weights::pack(file, {0, static_cast<int32_t>(file.hparams.n_layer)});
    REQUIRE(p.ok());
    return *p;
  }();
  model_options o;
  o.mode = arithmetic::fast;
  o.packed = packed;
  return o;
}

inline model_options reference_options() {
  model_options o;
  o.mode = arithmetic::fp32_reference;
  return o;
}

inline paged_kv_storage make_storage(const llama_model& m, int64_t num_blocks,
                                     int32_t block_size = 16) {
  auto s = paged_kv_storage::create(m.kv_shape(num_blocks, block_size));
  REQUIRE(s.ok());
  return std::move(s.value());
}

// A sequence's state for tests: its tokens so far and its private block table.
struct test_sequence {
  std::vector<int32_t> blocks;
  int32_t n_past = 0;
  int32_t sampled_from = std::numeric_limits<int32_t>::max();  // see batch_sequence
};

// Feeds `tokens` to `seq` in chunks of at most `chunk` tokens; returns the logits of every fed
// token when all_logits, else of the last one. REQUIREs success.
inline std::vector<float> feed(llama_model& m, paged_kv_storage& kv, test_sequence& seq,
                               const std::vector<int32_t>& tokens, size_t chunk,
                               bool all_logits) {
  std::vector<float> out;
  std::vector<float> step;
  for (size_t i = 0; i < tokens.size(); i += chunk) {
    const size_t n = std::min(chunk, tokens.size() - i);
    batch_sequence b;
    b.tokens = std::span<const int32_t>(tokens).subspan(i, n);
    b.first_position = seq.n_past;
    b.block_table = seq.blocks;
    b.all_logits = all_logits;
    b.sampled_from = seq.sampled_from;
    step.resize(llama_model::num_logit_rows({&b, 1}) * m.n_vocab());
    status st = m.forward({&b, 1}, kv, step);
    INFO(st.message());
    REQUIRE(st.ok());
    seq.n_past += static_cast<int32_t>(n);
    if (all_logits || i + n == tokens.size()) out.insert(out.end(), step.begin(), step.end());
  }
  return out;
}

inline std::vector<int32_t> iota_blocks(int32_t first, int32_t count) {
  std::vector<int32_t> v(count);
  std::iota(v.begin(), v.end(), first);
  return v;
}

inline int32_t argmax(const float* row, int64_t n) {
  return static_cast<int32_t>(std::max_element(row, row + n) - row);
}

inline float max_abs_diff(const std::vector<float>& a, const std::vector<float>& b) {
  REQUIRE(a.size() == b.size());
  float m = 0.0f;
  for (size_t i = 0; i < a.size(); ++i) m = std::max(m, std::abs(a[i] - b[i]));
  return m;
}

// The token ids of every oracle prompt (tests/data/engine/logits_oracle.json: llama.cpp's
// tokenization of real text), in the file's order.
inline std::vector<std::vector<int32_t>> oracle_prompt_tokens() {
  simdjson::dom::parser parser;
  simdjson::dom::element doc =
      parser.load(std::string(TROUPE_SOURCE_DIR) + "/tests/data/engine/logits_oracle.json");
  std::vector<std::vector<int32_t>> prompts;
  for (simdjson::dom::element p : doc["prompts"].get_array()) {
    std::vector<int32_t> tokens;
    for (int64_t t : p["tokens"].get_array()) tokens.push_back(static_cast<int32_t>(t));
    prompts.push_back(std::move(tokens));
  }
  return prompts;
}

}  // namespace troupe::engine::testing
