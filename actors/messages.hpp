// Message payloads between the request actors (net/) and the scheduler: plain structs with
// CAF 0.17 inspect() so they can be sent locally and, once announced with add_message_type,
// across processes. No behaviour here; the contract of each message is in scheduler_actor.hpp.
//
// Sampling parameters are engine::sampling_params (engine/sampler.hpp); their inspect() lives
// here, next to the other message inspectors, so the engine stays free of CAF.
#pragma once

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <string>
#include <vector>

#include "engine/sampler.hpp"

namespace troupe::engine {

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampling_params& x) {
  return f(caf::meta::type_name("sampling_params"), x.temperature, x.top_k, x.top_p, x.min_p,
           x.repetition_penalty, x.presence_penalty, x.frequency_penalty, x.logit_bias, x.seed,
           x.top_logprobs, x.ignore_eos, x.prompt_logprobs, x.grammar);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_logprob& x) {
  return f(caf::meta::type_name("token_logprob"), x.token, x.logprob);
}

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sample_result& x) {
  return f(caf::meta::type_name("sample_result"), x.token, x.logprob, x.top);
}

}  // namespace troupe::engine

namespace troupe::actors {

// One generation request, tokenized and validated by net/ (the scheduler re-checks only what
// it needs to stay safe: sizes against the context and the pool).
struct generate_request {
  uint64_t request_id = 0;                 // chosen by the sender; unique among active requests
  std::vector<int32_t> prompt_token_ids;   // non-empty
  engine::sampling_params sampling;        // seed already chosen (random_seed() if none given);
                                           // choice i > 0 samples with a seed derived from it
  int32_t max_tokens = 16;                 // >= 1: output tokens per choice
  int32_t min_tokens = 0;                  // EOS / stop ids do not end a choice before this many
  std::vector<int32_t> stop_token_ids;     // end the choice like EOS (vLLM's stop_token_ids)
  int32_t n = 1;                           // choices; they share the prompt's KV blocks
  // Speculative decoding may be used when the scheduler has it on (false: the request opted
  // out; the output is the same either way, only the speed differs).
  bool allow_speculation = true;
  // The client-visible x-request-id of the HTTP request this belongs to: the `request_id` field
  // of the scheduler's log lines about it (request_id above is the scheduler's own number).
  std::string log_id;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, generate_request& x) {
  return f(caf::meta::type_name("generate_request"), x.request_id, x.prompt_token_ids,
           x.sampling, x.max_tokens, x.min_tokens, x.stop_token_ids, x.n, x.allow_speculation, x.log_id);
}

// Why a submit was refused (the scheduler replies with it inside a caf::error, see
// scheduler_actor.hpp).
enum class submit_error : uint8_t {
  invalid_request = 1,  // HTTP 500: a caller's bug (duplicate request id, no sink); clients'
                        // bad values are refused before the scheduler (frontend/)
  queue_full,           // HTTP 429
  shutting_down,        // HTTP 503
  unavailable,          // HTTP 503: no executor
};

enum class finish_reason : uint8_t {
  none = 0,    // not finished: more events follow for this choice
  stop,        // EOS or a stop token id (that token is not in token_ids; see stop_token_id)
  length,      // max_tokens reached, or the context (max_model_len) is full
  cancelled,   // cancel_atom / abort_atom / the requester died
  error,       // the runtime failed (executor lost for good, shutdown); see error_message
};

inline const char* to_string(finish_reason r) {
  switch (r) {
    case finish_reason::none: return "none";
    case finish_reason::stop: return "stop";
    case finish_reason::length: return "length";
    case finish_reason::cancelled: return "cancelled";
    case finish_reason::error: return "error";
  }
  return "?";
}

// Scheduler -> request actor, at most one per choice per step. Tokens are streamed exactly once,
// in order, across preemptions and executor restarts. Every choice of an accepted request gets
// exactly one event with finish != none (its terminal event) and nothing after it; the last
// terminal event of the request has is_request_done set.
struct token_event {
  uint64_t request_id = 0;
  int32_t choice_index = 0;                 // 0..n-1
  std::vector<int32_t> token_ids;           // new output tokens (possibly empty on a terminal)
  std::vector<engine::sample_result> logprobs;  // parallel to token_ids when top_logprobs >= 0
  finish_reason finish = finish_reason::none;
  int32_t stop_token_id = -1;               // finish == stop: the EOS/stop id that ended it
  std::string error_message;                // finish == error
  int32_t num_prompt_tokens = 0;            // for usage
  // usage.prompt_tokens_details.cached_tokens: prompt tokens whose KV came from the prefix
  // cache when the request was first admitted (the same in every event of the request).
  int32_t num_cached_prompt_tokens = 0;
  int32_t num_output_tokens = 0;            // this choice's output tokens so far (incl. these)
  bool is_request_done = false;             // no further events for this request id
  // sampling.prompt_logprobs >= 0: with choice 0's first event, the logprobs of prompt tokens
  // 1..num_prompt_tokens-1 (entry i is token i+1 given tokens 0..i); sent once, may be empty
  // if the request ended before its first token.
  std::vector<engine::sample_result> prompt_logprobs;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, token_event& x) {
  return f(caf::meta::type_name("token_event"), x.request_id, x.choice_index, x.token_ids,
           x.logprobs, x.finish, x.stop_token_id, x.error_message, x.num_prompt_tokens,
           x.num_cached_prompt_tokens, x.num_output_tokens, x.is_request_done, x.prompt_logprobs);
}

// A histogram snapshot for /metrics: counts[i] observations <= bounds[i] (not cumulative),
// counts.back() those above every bound; sum of the observed values, count of observations.
struct histogram_data {
  std::vector<double> bounds;
  std::vector<uint64_t> counts;  // bounds.size() + 1
  double sum = 0;
  uint64_t count = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, histogram_data& x) {
  return f(caf::meta::type_name("histogram_data"), x.bounds, x.counts, x.sum, x.count);
}

// Per-step timers (issue 5: where does a step's time go). Times in seconds. One observation
// per step whose result came back (plan_build_s and num_tokens: per plan sent).
struct step_timer_stats {
  histogram_data plan_build_s;               // scheduler: building one plan
  histogram_data round_trip_s;               // scheduler: plan sent -> result received
  std::vector<histogram_data> forward_s;     // executor stage k: its layers' forward pass
  histogram_data sample_s;                   // last stage: sampling every sequence of the step
  histogram_data num_tokens;                 // tokens computed per step
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_timer_stats& x) {
  return f(caf::meta::type_name("step_timer_stats"), x.plan_build_s, x.round_trip_s,
           x.forward_s, x.sample_s, x.num_tokens);
}

// Counters for /metrics (a snapshot; totals are since start).
struct scheduler_stats {
  int32_t num_waiting_seqs = 0;
  int32_t num_running_seqs = 0;
  int32_t num_active_requests = 0;
  int32_t num_kv_blocks_total = 0;
  int32_t num_kv_blocks_used = 0;          // referenced by a sequence
  int32_t num_kv_blocks_cached = 0;        // holding reusable prefix content (used or free)
  uint64_t num_preemptions_total = 0;
  uint64_t num_steps_total = 0;
  uint64_t num_prompt_tokens_total = 0;    // prompt tokens computed (recompute counts again)
  uint64_t num_generation_tokens_total = 0;  // output tokens streamed
  uint64_t num_prefix_cache_hit_tokens_total = 0;
  uint64_t num_executor_replays_total = 0;
  uint64_t num_requests_replayed_total = 0;  // requests recomputed after a restart (each time)
  uint64_t num_poison_requests_total = 0;    // ended by the quarantine (failed twice, once alone)
  // Speculative decoding: draft tokens sent for verification, and those the model accepted.
  uint64_t num_spec_draft_tokens_total = 0;
  uint64_t num_spec_accepted_tokens_total = 0;
  // Histogram of sequences per step: bucket i counts steps with <= 2^i sequences (last: +Inf).
  std::vector<uint64_t> batch_num_seqs_buckets;
  step_timer_stats step_timers;  // filled by the scheduler actor (the policy leaves it empty)
  // Readiness (filled by the scheduler actor, for GET /ready): a stage to send plans to, no
  // fail_atom / drain_atom yet, and for how long there has been work but no progress (no step
  // result, no new stage) -- 0 while idle.
  bool has_executor = false;
  bool is_failed = false;
  bool is_draining = false;
  double seconds_without_progress = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scheduler_stats& x) {
  return f(caf::meta::type_name("scheduler_stats"), x.num_waiting_seqs, x.num_running_seqs,
           x.num_active_requests, x.num_kv_blocks_total, x.num_kv_blocks_used,
           x.num_kv_blocks_cached, x.num_preemptions_total, x.num_steps_total,
           x.num_prompt_tokens_total, x.num_generation_tokens_total,
           x.num_prefix_cache_hit_tokens_total, x.num_executor_replays_total,
           x.num_requests_replayed_total, x.num_poison_requests_total,
           x.num_spec_draft_tokens_total, x.num_spec_accepted_tokens_total,
           x.batch_num_seqs_buckets, x.step_timers, x.has_executor, x.is_failed, x.is_draining,
           x.seconds_without_progress);
}

}  // namespace troupe::actors
