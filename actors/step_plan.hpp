// The one record the scheduler sends to the executor per iteration, and what comes back
// (vLLM's SchedulerOutput / ModelRunnerOutput). The executor never reaches into scheduler state:
// everything it needs to run the step and keep its per-sequence state is in here.
//
// Per-sequence executor state (sampling params, the token history used by penalties) is created
// when an entry arrives with is_new set and dropped when its id appears in freed_seq_ids. A
// sequence that is preempted, or replayed after an executor restart, arrives again with is_new.
#pragma once

#include <caf/meta/type_name.hpp>

#include <cstdint>
#include <vector>

#include "actors/messages.hpp"
#include "engine/sampler.hpp"

namespace troupe::actors {

struct scheduled_seq {
  uint64_t seq_id = 0;
  std::vector<int32_t> token_ids;   // tokens to compute now, at positions first_position...
  int32_t first_position = 0;       // = tokens whose K/V is already in the blocks
  std::vector<int32_t> block_table; // the sequence's full block table (logical block ids);
                                    // position p lives in block_table[p / block_size]
  bool do_sample = false;           // sample one token from the logits of the last position
  // Speculative decoding: the last num_draft_tokens of token_ids are drafts (do_sample is set).
  // The executor computes logits for every token, verifies the drafts
  // (engine/speculative_sampler.hpp) and returns every token it emits; the K/V of rejected
  // drafts is garbage, and the next plan continues after the accepted ones (first_position
  // then lies below what this stage computed: it drops the rejected tokens).
  int32_t num_draft_tokens = 0;
  // With a draft model (scheduler_config::has_draft_model), on a sampled entry: after emitting,
  // the last stage proposes up to this many drafts for the sequence's next step
  // (sampled_token::proposed_drafts) -- prompt lookup first, the draft model when lookup finds
  // nothing. 0: none.
  int32_t num_draft_proposals = 0;
  // Set when the executor must (re)create the sequence's state; the fields below are valid
  // only then.
  bool is_new = false;
  std::vector<int32_t> history_token_ids;  // tokens at [0, first_position) (cached K/V)
  int32_t num_prompt_tokens = 0;           // tokens at [num_prompt_tokens, ...) are output
  engine::sampling_params sampling;        // per choice (seed already derived for the choice)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, scheduled_seq& x) {
  return f(caf::meta::type_name("scheduled_seq"), x.seq_id, x.token_ids, x.first_position,
           x.block_table, x.do_sample, x.num_draft_tokens, x.num_draft_proposals, x.is_new,
           x.history_token_ids, x.num_prompt_tokens, x.sampling);
}

struct step_plan {
  uint64_t step_id = 0;                 // increasing; the result echoes it
  // The supervisor's count of executor (re)starts when the plan was made. A stage that was
  // started in a later epoch refuses the plan: it was made for K/V that no longer exists.
  uint64_t epoch = 0;
  std::vector<scheduled_seq> seqs;      // disjoint sequences, at most max_num_seqs
  int32_t num_scheduled_tokens = 0;     // sum of token_ids sizes, <= max_num_batched_tokens
  std::vector<uint64_t> freed_seq_ids;  // finished / cancelled / preempted since the last plan:
                                        // drop their state (applied before running `seqs`)
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_plan& x) {
  return f(caf::meta::type_name("step_plan"), x.step_id, x.epoch, x.seqs,
           x.num_scheduled_tokens, x.freed_seq_ids);
}

// What a pipeline stage hands to the next one with the plan: the residual stream after its last
// layer, one row per scheduled token (plan order, each sequence's token_ids in order).
struct hidden_states {
  int64_t num_rows = 0;
  int64_t row_size = 0;     // n_embd
  std::vector<float> data;  // [num_rows, row_size], row-major
  // Forward-pass time of every stage so far, in stage order (for /metrics; see step_result).
  std::vector<int64_t> stage_forward_ns;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, hidden_states& x) {
  return f(caf::meta::type_name("hidden_states"), x.num_rows, x.row_size, x.data,
           x.stage_forward_ns);
}

struct sampled_token {
  uint64_t seq_id = 0;
  engine::sample_result sample;  // token; logprob/top when the sequence asked for logprobs
  // With the first output token of a sequence whose sampling.prompt_logprobs >= 0 and that
  // computed its prompt from position 0: entry i is prompt token i+1's logprob (else empty).
  std::vector<engine::sample_result> prompt_logprobs;
  // Speculative decoding (num_draft_tokens > 0): the tokens emitted after `sample` in the same
  // step. `sample` and the first next_samples.size() drafts agreed, so that many drafts were
  // accepted; the last emitted token is the model's own (not yet computed).
  std::vector<engine::sample_result> next_samples;
  // num_draft_proposals > 0: drafts for the sequence's next step, to follow the last emitted
  // token (empty when none were found or the draft model failed). The stage keeps the draft
  // model's distributions for them and verifies with the general rule if the next plan sends
  // them (any prefix of them); other drafts get the point-mass rule.
  std::vector<int32_t> proposed_drafts;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, sampled_token& x) {
  return f(caf::meta::type_name("sampled_token"), x.seq_id, x.sample, x.prompt_logprobs,
           x.next_samples, x.proposed_drafts);
}

// One entry per scheduled sequence with do_sample, in any order.
struct step_result {
  uint64_t step_id = 0;
  std::vector<sampled_token> samples;
  // Timers for /metrics: the forward pass of each stage in stage order, and the last stage's
  // sampling. Empty / 0 when the executor does not measure (test fakes).
  std::vector<int64_t> stage_forward_ns;
  int64_t sample_ns = 0;
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, step_result& x) {
  return f(caf::meta::type_name("step_result"), x.step_id, x.samples, x.stage_forward_ns,
           x.sample_ns);
}

}  // namespace troupe::actors
