// scheduler_policy: continuous batching without actors -- the waiting and running queues, the
// KV block pool, and the rule that turns them into one step_plan per iteration. The scheduler
// actor is a thin shell around it; tests drive it with a fake executor.
//
// The progress rule (vLLM v1): a sequence has num_tokens (prompt + output) and
// num_computed_tokens (K/V in its blocks); each step schedules some of the difference. A chunk
// that reaches the last token samples, and the sample is appended. There is no separate
// prefill/decode machinery: a decode is a chunk of one token.
//
// schedule() builds one plan under max_num_batched_tokens and max_num_seqs:
//   1. running sequences in admission order (decodes, then prefill chunks of partially computed
//      ones), each chunk capped by long_prefill_token_threshold; when the blocks a chunk needs
//      are not free, the newest running sequence is preempted (its blocks freed, requeued at the
//      front of `waiting`, is_new again) until they are -- possibly the sequence itself;
//   2. if nothing was preempted, waiting sequences in order while budget, seats and blocks last
//      (prefix-cache hits first: full blocks with the same content are shared, not recomputed).
// A preempted or replayed sequence recomputes prompt + output tokens; as only a chunk reaching
// the end of token_ids samples, tokens already streamed are never produced again.
//
// Plans in flight (pipeline stages): up to max_num_steps_in_flight plans may be out at once.
// A sequence belongs to at most one of them (it is "busy" until that plan's result): later
// plans skip it, and preemption only picks sequences that are not busy. So that P stages get P
// plans of similar size, a plan built while others are in flight takes at most its share of
// the idle sequences, ceil(idle running + waiting) / (free plan slots). With one plan in flight
// allowed, none of this changes anything.
//
// n > 1: the request is admitted as choice 0 only, with seats for all n reserved. When it has
// sampled its first token, choices 1..n-1 are forked: they share the prompt's full blocks
// (reference counts) up to the block holding the last prompt token, recompute the rest of the
// prompt into their own blocks (at most block_size tokens, so no block copy is ever needed),
// and sample with their own seed (derive_choice_seed).
//
// Speculative decoding (num_speculative_tokens > 0): a decoding sequence (one token left to
// compute, at least one output token) of a request that allows it gets up to k prompt-lookup
// drafts (actors/draft_proposer.hpp) appended to its chunk, with blocks for them, when the budget
// and the pool have room for them and fewer than speculative_disable_by_batch_size sequences
// run. The draft length adapts per sequence: one more after a step that accepted every draft,
// accepted + 1 after one that did not (a rejected draft costs compute, see draft_proposer.hpp).
// The executor answers with every token it emitted (the accepted drafts and the model's own
// next token); num_computed_tokens advances past the accepted drafts only, so rejected K/V is
// overwritten later. The emitted tokens are checked one by one like single samples (EOS, stop
// ids, min_tokens, max_tokens, max_model_len): nothing after a stop is streamed. A sequence
// whose drafts are mostly rejected (below min_spec_acceptance_percent after
// min_spec_draft_tokens drafts) stops drafting.
//
// Latency targets (slo_ttft_ms, slo_tpot_ms; actors/slo_planner.hpp, the calls in
// scheduler_policy_slo.cpp): while streams decode, prefill chunks (running and newly admitted
// ones) are cut so the plan's predicted time stays within slo_tpot_ms (or twice its decodes'
// time, when they alone take more than half of it); before admission, `waiting` is reordered so
// that requests that can still meet slo_ttft_ms go first. Neither changes what a sequence
// computes, only when.
//
// Failed steps and poison requests (scheduler_policy_quarantine.cpp): when a stage dies or hangs,
// replay_all() blames the requests of the plans in flight (each gets a strike) and quarantines
// them: while any suspect remains, one plan is in flight at a time and it holds one suspect
// request's sequences only, until they have recomputed past the work that failed (then the
// request is cleared and its strikes reset). A plan that fails holding one request only, which
// had failed before, convicts it: the request ends with an `error` event (retried once, alone),
// and every other request goes on. A random crash lands on a quarantined plan only if two
// crashes come within one replay, which the fault injector's schedule never does.
//
// Events: on_step_result / cancel_request / abort_all / fail_all return the token_events to
// send; each choice of an accepted request gets exactly one terminal event, and its blocks
// are back in the pool when that event is returned.
//
// Thread-safety: none; one owner (the scheduler actor).
#pragma once

#include <cstdint>
#include <deque>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "actors/messages.hpp"
#include "actors/scheduler_config.hpp"
#include "actors/slo_planner.hpp"
#include "actors/step_plan.hpp"
#include "memory/block_pool.hpp"

namespace troupe::actors {

// The seed choice `choice` of a request samples with (choice 0: the request's own seed).
uint64_t derive_choice_seed(uint64_t seed, int32_t choice);

struct refusal {
  submit_error code = submit_error::invalid_request;
  std::string message;
};

class scheduler_policy {
 public:
  // REQUIRES: validate(cfg) passed.
  explicit scheduler_policy(scheduler_config cfg);

  // Queues a request, or says why not (nothing changes then).
  std::optional<refusal> add_request(generate_request req);

  // Ends every unfinished choice of the request with `cancelled` and frees its blocks.
  // Unknown or finished ids give no events.
  std::vector<token_event> cancel_request(uint64_t request_id);
  // cancel_request for every active request.
  std::vector<token_event> abort_all();
  // Ends every active request with `error` carrying `reason`.
  std::vector<token_event> fail_all(const std::string& reason);

  // True when schedule() would produce a non-empty plan (something waits or runs).
  bool has_work() const { return !waiting_.empty() || !running_.empty(); }
  bool has_step_in_flight() const { return !in_flight_.empty(); }
  int32_t num_steps_in_flight() const { return static_cast<int32_t>(in_flight_.size()); }
  // True when another plan may be sent (fewer than max_num_steps_in_flight are out; one while
  // a suspect request is in quarantine, so that a failure names its plan alone).
  bool can_schedule() const {
    return num_steps_in_flight() < (is_quarantined() ? 1 : cfg_.max_num_steps_in_flight);
  }
  // True while requests blamed for a failed step are replayed one at a time.
  bool is_quarantined() const { return !suspects_.empty(); }

  // The next plan, over sequences no in-flight plan holds. REQUIRES: can_schedule(). The plan
  // is remembered as in flight until on_step_result(); an empty plan (no seqs) is not.
  step_plan schedule();

  // Applies the executor's answer to that in-flight plan: computed tokens advance, full blocks
  // enter the prefix cache, samples are appended and checked against max_tokens / EOS / stop
  // ids / max_model_len, finished sequences free their blocks. A result for a step id not in
  // flight is ignored (a step voided by replay_all). Returns the events to send.
  std::vector<token_event> on_step_result(const step_result& result);

  // The executor lost all K/V (restart): every in-flight plan is void, every running sequence
  // is requeued (front of `waiting`, admission order kept) to recompute from position 0, and
  // the prefix cache is emptied. The requests of the in-flight plans are blamed (see above);
  // returns the events of a request convicted as poison (an `error` for each of its choices).
  std::vector<token_event> replay_all();

  bool is_active(uint64_t request_id) const { return requests_.count(request_id) != 0; }
  int32_t num_active_requests() const { return static_cast<int32_t>(requests_.size()); }
  int32_t num_waiting_seqs() const { return static_cast<int32_t>(waiting_.size()); }
  int32_t num_running_seqs() const { return static_cast<int32_t>(running_.size()); }
  const block_pool& pool() const { return pool_; }
  scheduler_stats stats() const;
  const scheduler_config& config() const { return cfg_; }
  // The SLO side: its clock (tests set a fake one) and the step cost model it learns.
  slo_planner& slo() { return slo_; }

 private:
  struct sequence {
    uint64_t seq_id = 0;
    uint64_t request_id = 0;
    int32_t choice = 0;
    std::vector<int32_t> token_ids;      // prompt, then output
    int32_t num_prompt_tokens = 0;
    int32_t num_computed_tokens = 0;
    std::vector<int32_t> block_table;
    std::vector<uint64_t> block_hashes;  // of the first block_hashes.size() full blocks
    engine::sampling_params sampling;
    bool is_new = true;
    int32_t num_spec_draft_tokens = 0;     // speculative decoding: drafts sent, drafts accepted
    int32_t num_spec_accepted_tokens = 0;
    bool is_spec_off = false;              // acceptance was too low: no more drafts
    int32_t num_spec_drafts_cut = 0;       // draft length now: num_speculative_tokens - this
    // Quarantine: > 0 while this sequence was in a failed plan and has not yet recomputed
    // that far (num_computed_tokens must reach it after a successful step).
    int32_t suspect_until = 0;
    // With a draft model (cfg_.has_draft_model): what the last executor stage proposed for the
    // next step after the last one (sampled_token::proposed_drafts); cleared by release().
    std::vector<int32_t> proposed_drafts;
    int32_t num_tokens() const { return static_cast<int32_t>(token_ids.size()); }
    int32_t num_output_tokens() const { return num_tokens() - num_prompt_tokens; }
  };
  struct request_entry {
    generate_request req;
    std::vector<uint64_t> seq_ids;       // live sequences of this request
    std::vector<bool> choice_done;       // [n]
    int32_t num_choices_done = 0;
    bool forked = false;
    int32_t num_cached_prompt_tokens = -1;  // prefix-cache hits at choice 0's first admission
    int32_t num_failed_plans = 0;        // strikes since it was last cleared (quarantine)
  };
  struct scheduled_entry {
    uint64_t seq_id;
    int32_t num_new_tokens;
    bool do_sample;
    std::vector<int32_t> drafts;  // speculative decoding: sent after the num_new_tokens
  };
  struct in_flight_step {
    uint64_t step_id;
    std::vector<scheduled_entry> entries;
  };

  int32_t blocks_for(int32_t num_tokens) const;
  int32_t chunk_size(const sequence& s, int32_t budget) const;
  // Drafts for s when its chunk of num_new tokens is a decode and speculation may run; empty
  // when not, or when budget (after the chunk) or the pool has no room for them.
  std::vector<int32_t> propose_drafts(const sequence& s, int32_t num_new, int32_t budget) const;
  // With a draft model: how many drafts the last stage should propose for s's next step after
  // this one (0: s will not speculate then).
  int32_t num_draft_proposals(const sequence& s) const;
  // Checks an answer's emitted tokens against the drafts sent; updates the acceptance counters.
  // Returns false on a protocol breach (more tokens than drafts + 1, or an "accepted" draft
  // that is not the one sent).
  bool count_accepted_drafts(sequence& s, const scheduled_entry& e, const sampled_token& t);
  void preempt(uint64_t seq_id);
  void release(sequence& s);
  std::vector<int32_t> find_prefix_hits(const sequence& s, std::vector<uint64_t>& hashes) const;
  void cache_computed_blocks(sequence& s);
  void fork_choices(request_entry& r, const sequence& leader);
  // scheduler_policy_quarantine.cpp: blame the in-flight plans (before replay_all voids them);
  // whether a sequence may enter the plan being built; the suspect's waiting sequences to the
  // front of `waiting`; making blocks for it; clearing after a successful step.
  std::vector<token_event> blame_failed_plans();
  bool is_eligible(uint64_t seq_id) const;
  void front_suspect();
  bool preempt_for_suspect();
  void clear_suspects(const std::vector<scheduled_entry>& entries);
  int32_t reserved_seats() const;
  // Waiting requests beyond those the free seats of the running batch take next (what
  // max_num_waiting_requests bounds).
  int32_t num_queued_for_seats() const;
  // scheduler_policy_slo.cpp: this plan's prefill limiter; reorders `waiting` for TTFT.
  slo_planner::prefill_limiter begin_slo_plan() const;
  void order_waiting_for_slo();
  void end_choice(request_entry& r, int32_t choice, uint64_t seq_id, finish_reason why,
                  token_event& ev);
  std::vector<token_event> end_request(uint64_t request_id, finish_reason why,
                                       const std::string& message);
  void erase_sequence(uint64_t seq_id);
  scheduled_seq describe(const sequence& s, int32_t num_new, bool do_sample) const;
  std::vector<token_event> end_all(finish_reason why, const std::string& message);

  scheduler_config cfg_;
  block_pool pool_;
  std::map<uint64_t, request_entry> requests_;
  std::map<uint64_t, sequence> seqs_;
  std::deque<uint64_t> waiting_;
  std::vector<uint64_t> running_;        // admission order; the newest is preempted first
  std::vector<uint64_t> freed_seq_ids_;  // for the next plan
  bool is_busy(uint64_t seq_id) const { return busy_.count(seq_id) != 0; }

  std::map<uint64_t, in_flight_step> in_flight_;  // by step id
  std::set<uint64_t> busy_;                       // sequences of in-flight plans
  std::set<uint64_t> suspects_;                   // quarantined request ids, oldest first
  uint64_t next_seq_id_ = 1;
  uint64_t next_step_id_ = 1;
  scheduler_stats stats_;
  slo_planner slo_;  // after cfg_
};

}  // namespace troupe::actors
