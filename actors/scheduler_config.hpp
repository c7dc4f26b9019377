// Settings of the scheduler and its KV block pool (the [scheduler] and [kv] sections of the
// serve config file map onto these). Plain data; validate() names the first bad field.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "troupe/result.hpp"

namespace troupe::actors {

struct scheduler_config {
  int32_t max_num_batched_tokens = 2048;  // tokens computed per step, all sequences together
  int32_t max_num_seqs = 64;              // sequences per step (and running at once)
  int32_t max_model_len = 8192;           // prompt + output tokens of one sequence
  int32_t block_size = 16;                // tokens per KV block
  int32_t num_kv_blocks = 1024;           // logical blocks in the pool (executors size K/V so)
  // Cap on the prefill tokens one sequence may take in a step, so that a long prompt leaves
  // budget to others (vLLM's long_prefill_token_threshold). 0: max_num_batched_tokens.
  int32_t long_prefill_token_threshold = 0;
  // Requests waiting for a seat (beyond those the running batch's free seats take next); a
  // submit beyond this gets submit_error::queue_full. Room = free seats + this.
  int32_t max_num_waiting_requests = 1024;
  bool enable_prefix_caching = true;
  std::vector<int32_t> eos_token_ids;     // end a choice (unless ignore_eos / min_tokens)
  int32_t vocab_size = 0;                 // > 0: prompt/stop token ids are checked against it
  // Step plans in flight at once, over disjoint sequences: the number of pipeline stages
  // (spawn_topology sets it), so that every stage has a plan to work on.
  int32_t max_num_steps_in_flight = 1;
  // Speculative decoding with prompt-lookup drafts (actors/draft_proposer.hpp): a decoding
  // sequence sends up to this many draft tokens with its last token; the executor verifies them
  // in the same forward pass. 0: off. 4 with n-grams of 2..4 is what BENCHMARKS.md measured
  // ("Speculative decoding"); single-token matches are right too rarely to pay.
  int32_t num_speculative_tokens = 0;
  int32_t prompt_lookup_min = 2;  // n-gram lengths looked up, the longest first
  int32_t prompt_lookup_max = 4;
  // No drafts while this many sequences (or more) run: a full batch keeps the cores busy anyway
  // and every rejected draft is a token computed for nothing.
  int32_t speculative_disable_by_batch_size = 4;
  // A draft model runs in the last executor stage (troupe serve's scheduler.speculative_model):
  // drafts come from the stage's proposals (step_plan.hpp num_draft_proposals), not from the
  // policy's own prompt lookup; every other rule above still applies.
  bool has_draft_model = false;
  // Latency targets (actors/slo_planner.hpp); 0 = none. TTFT: requests that can still get their
  // first token within it are admitted before those that cannot. TPOT: while streams decode, a
  // step's prefill is cut so the step is predicted to take at most this long -- what keeps a
  // long prompt from stalling every running stream for seconds (issue 10). TTFT defaults to the
  // CPU-sized SLO of issue 9 (1 s); TPOT is off by default because, measured on the fast
  // arithmetic, the cut halved the rate troupe sustains under Poisson overload (ARCHITECTURE.md
  // "SLO-aware scheduling"): set 50 to bound inter-token gaps instead.
  int32_t slo_ttft_ms = 1000;
  int32_t slo_tpot_ms = 0;
  // Chunked prefill that protects running streams (issue 10's head-of-line stall), relative
  // rather than absolute: while streams decode, a step that carries prefill is predicted to take
  // at most this many times a step of those decodes alone, so a long prompt stretches a
  // stream's inter-token gap by at most this factor (the issue asks for the longest gap within
  // 3x the median; 2.5 leaves room for the prediction's error). Relative, it scales with the
  // batch: 32 decoding streams leave prefill 1.5x their step, enough to keep the batch full,
  // where an absolute TPOT target would starve admission. 0: off (a prompt is prefilled in
  // chunks of up to max_num_batched_tokens). troupe serve sets 2.5 (cli/serve_config.hpp); the
  // library default stays off so that plans of the unit tests are the plain policy's.
  double max_decode_gap_factor = 0;
};

inline status validate(const scheduler_config& c) {
  auto bad = [](const char* name, const char* why) {
    return error{std::string("scheduler config: ") + name + " " + why};
  };
  if (c.max_num_batched_tokens < 1) return bad("max_num_batched_tokens", "must be >= 1");
  if (c.max_num_seqs < 1) return bad("max_num_seqs", "must be >= 1");
  if (c.max_model_len < 2) return bad("max_model_len", "must be >= 2");
  if (c.block_size < 1) return bad("block_size", "must be >= 1");
  if (c.num_kv_blocks < 1) return bad("num_kv_blocks", "must be >= 1");
  if (c.long_prefill_token_threshold < 0)
    return bad("long_prefill_token_threshold", "must be >= 0");
  if (c.max_num_waiting_requests < 1) return bad("max_num_waiting_requests", "must be >= 1");
  if (c.vocab_size < 0) return bad("vocab_size", "must be >= 0");
  if (c.max_num_steps_in_flight < 1) return bad("max_num_steps_in_flight", "must be >= 1");
  if (c.num_speculative_tokens < 0) return bad("num_speculative_tokens", "must be >= 0");
  if (c.max_decode_gap_factor != 0 &&
      !(c.max_decode_gap_factor >= 1.5 && c.max_decode_gap_factor <= 1000))
    return bad("max_decode_gap_factor", "must be 0 (off) or in [1.5, 1000]");
  if (c.prompt_lookup_min < 1) return bad("prompt_lookup_min", "must be >= 1");
  if (c.prompt_lookup_max < c.prompt_lookup_min)
    return bad("prompt_lookup_max", "must be >= prompt_lookup_min");
  if (c.speculative_disable_by_batch_size < 1)
    return bad("speculative_disable_by_batch_size", "must be >= 1");
  if (c.slo_ttft_ms < 0) return bad("slo_ttft_ms", "must be >= 0 (0: no target)");
  if (c.slo_tpot_ms < 0) return bad("slo_tpot_ms", "must be >= 0 (0: no target)");
  return {};
}

}  // namespace troupe::actors
