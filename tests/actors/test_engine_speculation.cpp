// Speculative decoding on the default model: verification logits equal plain decode logits (the
// engine computes each token the same in any chunk), so greedy and seeded outputs are the same
// with prompt-lookup drafts as without, alone or batched with other sequences, through
// preemption and over two pipeline stages -- and on a prompt that repeats itself, drafts are
// accepted.
#include <catch2/catch.hpp>

#include <cstdio>
#include <map>
#include <memory>

#include "actors/engine_step_executor.hpp"
#include "engine/fast_weights.hpp"
#include "policy_driver.hpp"

using namespace troupe;
using namespace troupe::actors;
using namespace troupe::actors::testing;

namespace {

std::shared_ptr<const llama_model_file> model_file() {
  static std::shared_ptr<const llama_model_file> file = [] {
    auto r = load_llama_model(TROUPE_DEFAULT_MODEL);
    if (!r.ok()) {
      std::fprintf(stderr, "cannot load %s: %s (run `make model`)\n", TROUPE_DEFAULT_MODEL,
                   r.message().c_str());
      return std::shared_ptr<const llama_model_file>();
    }
    return std::make_shared<const llama_model_file>(std::move(r.value()));
  }();
  REQUIRE(file != nullptr);
  return file;
}

std::shared_ptr<kernels::thread_pool> pool() {
  static auto p = std::make_shared<kernels::thread_pool>(2);
  return p;
}

scheduler_config spec_engine_config(int32_t k) {
  scheduler_config c;
  c.max_num_batched_tokens = 256;
  c.max_num_seqs = 8;
  c.max_model_len = 512;
  c.block_size = 16;
  c.num_kv_blocks = 64;
  c.vocab_size = 49152;
  c.num_speculative_tokens = k;
  c.speculative_disable_by_batch_size = 8;
  // No latency targets: their step-cost model learns from wall-clock times, which would make
  // chunking (and so preemption) depend on the machine's load.
  c.slo_ttft_ms = 0;
  c.slo_tpot_ms = 0;
  return c;
}

// Ordinary text pieces, the first half repeated: the model tends to keep copying, so prompt
// lookup has something to find (and is sometimes wrong).
std::vector<int32_t> repeating_prompt(int32_t i) {
  std::vector<int32_t> p;
  for (int32_t k = 0; k < 12 + 3 * i; ++k) p.push_back(300 + (k * 37 + i * 101) % 5000);
  const auto half = p;
  p.insert(p.end(), half.begin(), half.end());
  p.insert(p.end(), half.begin(), half.begin() + 4);
  return p;
}

generate_request spec_request(uint64_t id, float temperature) {
  auto r = make_request(id, repeating_prompt(static_cast<int32_t>(id)), 24, 500 + id);
  r.sampling.temperature = temperature;
  return r;
}

// Two pipeline stages (layers [0, 13) and [13, 30)) chained as one executor: the first stage
// never learns which drafts held, it drops the rejected ones when the next plan starts lower.
class two_stage_executor : public step_executor {
 public:
  two_stage_executor(const scheduler_config& cfg, const engine::model_options& opts) {
    for (engine::layer_range r : {engine::layer_range{0, 13}, engine::layer_range{13, 30}}) {
      auto e = engine_step_executor::create(model_file(), pool(), cfg.num_kv_blocks,
                                            cfg.block_size, {}, r, opts);
      REQUIRE(e.ok());
      stages_.push_back(std::move(e.value()));
    }
  }
  result<step_result> run_step(const step_plan& plan) override {
    auto first = stages_[0]->run_stage(plan, hidden_states{});
    if (!first) return first.err();
    auto last = stages_[1]->run_stage(plan, first->hidden);
    if (!last) return last.err();
    return std::move(last->result);
  }
  result<stage_output> run_stage(const step_plan&, const hidden_states&) override {
    return error{"not a stage"};
  }

 private:
  std::vector<std::unique_ptr<engine_step_executor>> stages_;
};

// Runs the requests together on a fresh executor; returns the tokens per request id.
std::map<uint64_t, std::vector<int32_t>> run(scheduler_config cfg, float temperature,
                                             std::vector<uint64_t> ids,
                                             scheduler_stats* stats = nullptr,
                                             bool two_stages = false,
                                             const engine::model_options& opts = {}) {
  scheduler_policy policy(cfg);
  std::unique_ptr<step_executor> exec;
  if (two_stages) {
    exec = std::make_unique<two_stage_executor>(cfg, opts);
  } else {
    auto e = engine_step_executor::create(model_file(), pool(), cfg.num_kv_blocks,
                                          cfg.block_size, {}, {}, opts);
    REQUIRE(e.ok());
    exec = std::move(e.value());
  }
  for (uint64_t id : ids) REQUIRE_FALSE(policy.add_request(spec_request(id, temperature)));
  run_log log;
  drive(policy, *exec, log);
  std::map<uint64_t, std::vector<int32_t>> out;
  for (uint64_t id : ids) {
    out[id] = log.tokens(id);
    CHECK(log.choices[{id, 0}].num_terminal == 1);
  }
  CHECK(policy.pool().num_used_blocks() == 0);
  if (stats) *stats = policy.stats();
  return out;
}

// The fast arithmetic, as troupe serve runs by default: the model's weights packed once.
engine::model_options fast_options() {
  static std::shared_ptr<const engine::fast_weights> packed = [] {
    auto p = engine::fast_weights::pack(*model_file(), {0, 30});
    REQUIRE(p.ok());
    return *p;
  }();
  engine::model_options o;
  o.mode = engine::arithmetic::fast;
  o.packed = packed;
  return o;
}

// opts: the arithmetic (default llama.cpp-exact).
void check_speculation_invisible(float temperature, const engine::model_options& opts = {}) {
  std::map<uint64_t, std::vector<int32_t>> plain;
  for (uint64_t id = 1; id <= 3; ++id) {
    auto one = run(spec_engine_config(0), temperature, {id}, nullptr, false, opts);
    plain[id] = one[id];
    REQUIRE(plain[id].size() == 24);
  }
  scheduler_stats st;
  for (uint64_t id = 1; id <= 3; ++id) {
    INFO("alone, request " << id);
    auto one = run(spec_engine_config(4), temperature, {id}, &st, false, opts);
    CHECK(one[id] == plain[id]);
  }
  CHECK(st.num_spec_draft_tokens_total > 0);
  // Batched with drafts in the same plans, chunked prefill and a pool small enough to preempt.
  auto cfg = spec_engine_config(4);
  cfg.max_num_batched_tokens = 24;
  cfg.block_size = 8;
  cfg.num_kv_blocks = 16;
  auto together = run(cfg, temperature, {1, 2, 3}, &st, false, opts);
  for (uint64_t id = 1; id <= 3; ++id) {
    INFO("batched, request " << id);
    CHECK(together[id] == plain[id]);
  }
  CHECK(st.num_spec_draft_tokens_total > 0);
  CHECK(st.num_preemptions_total > 0);
  // Pipeline stages: every stage keeps its token list in step with the accepted drafts.
  auto staged = run(spec_engine_config(4), temperature, {1, 2, 3}, &st, /*two_stages=*/true, opts);
  for (uint64_t id = 1; id <= 3; ++id) {
    INFO("two stages, request " << id);
    CHECK(staged[id] == plain[id]);
  }
  CHECK(st.num_spec_accepted_tokens_total > 0);
  // Sampled, some drafts fail: the first stage must have dropped tokens (greedy on these
  // prompts accepts every draft).
  if (temperature > 0) CHECK(st.num_spec_accepted_tokens_total < st.num_spec_draft_tokens_total);
}

}  // namespace

TEST_CASE("greedy: speculative decoding is invisible on the real model", "[engine_spec]") {
  check_speculation_invisible(0.0f);
  // On a prompt that repeats itself the model copies: most drafts are accepted.
  scheduler_stats st;
  run(spec_engine_config(4), 0.0f, {2}, &st);
  CHECK(st.num_spec_accepted_tokens_total * 2 > st.num_spec_draft_tokens_total);
}

// troupe serve's default: the fast arithmetic with drafting on.
TEST_CASE("fast arithmetic: speculative decoding is invisible on the real model",
          "[engine_spec]") {
  check_speculation_invisible(0.0f, fast_options());
  check_speculation_invisible(0.8f, fast_options());
}

TEST_CASE("seeded sampling: speculative decoding is invisible on the real model",
          "[engine_spec]") {
  check_speculation_invisible(0.8f);
}
