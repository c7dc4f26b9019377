// draft_model: a small model with the target's vocabulary that proposes draft tokens for
// speculative decoding (the other source of drafts is prompt lookup, actors/draft_proposer.hpp).
// The target verifies them in one batched forward pass (engine/speculative_sampler.hpp).
//
// It keeps its own K/V per sequence, in its own pages and blocks (not the scheduler's pool: the
// draft runs ahead of what the target has computed, and a shared prefix block of the target may
// never have been computed by the draft). Keeping in step is one rule: before proposing, the
// pages keep the longest common prefix of the tokens they hold and the sequence's true tokens;
// the rest is (re)computed in one chunk. That covers rejected drafts (rolled back), a sequence
// the draft has not seen yet or lost (prefill, a restarted executor: recompute) and tokens
// computed without a proposal. drop() frees a sequence's blocks (finished, preempted).
//
// Draws: a greedy request's drafts are the draft model's argmax (after the request's logit
// bias and penalties); otherwise each draft is drawn from q, the draft's distribution after
// every sampling transform of the request (sampler::distribution), with the uniform
// draw_uniform_draft(seed, index), and q is returned so the target can apply the general
// rejection rule (accept min(1, p/q), resample from the residual).
//
// Ownership: shares the draft file and the thread pool (the calling stage's: the draft runs
// between the target's steps, never at the same time); owns its scratch, sampler and pages.
// Failure: propose() returns an error (out of blocks, a forward error) and drops the sequence's
// state; the caller then sends no drafts -- a draft failure never costs a request.
// Threading: one caller at a time (the last executor stage's thread); it drives the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/llama_model.hpp"
#include "engine/sampler.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"
#include "troupe/result.hpp"

namespace troupe::engine {

// OK when `draft` has the same vocabulary as `target`: the same n_vocab (logit rows) and the
// same token texts in the same order. Otherwise an error naming draft_path and the first
// difference ("vocabulary of 32000 tokens, the target's has 49152", "token 17 is 'x' here and
// 'y' in the target").
status check_same_vocabulary(const llama_model_file& target, const llama_model_file& draft,
                             const std::string& draft_path);

class draft_model {
 public:
  // num_blocks x block_size positions of K/V for all sequences together; opts: the draft's
  // arithmetic (fast mode needs its packed weights). Errors: allocation failure, bad sizes.
  static result<std::unique_ptr<draft_model>> create(std::shared_ptr<const llama_model_file> file,
                                                     std::shared_ptr<kernels::thread_pool> pool,
                                                     model_options opts, int32_t num_blocks,
                                                     int32_t block_size,
                                                     std::vector<int32_t> end_of_generation);

  // Up to k drafts to follow `tokens` (the sequence's true tokens, the last one sampled but not
  // yet computed by the target). drafts: cleared, then k tokens. probs: cleared; for a request
  // that samples (not greedy), [k, n_vocab] floats, row j the distribution drafts[j] was drawn
  // from. p: the request's sampling parameters (its logprob settings are ignored).
  // REQUIRES: tokens.size() >= 1; 0 <= num_prompt_tokens <= tokens.size(); k >= 1; validate(p).
  status propose(uint64_t seq_id, std::span<const int32_t> tokens, int32_t num_prompt_tokens,
                 const sampling_params& p, int32_t k, std::vector<int32_t>& drafts,
                 std::vector<float>& probs);

  // Frees the sequence's blocks; unknown ids are ignored.
  void drop(uint64_t seq_id);

  int64_t num_free_blocks() const { return static_cast<int64_t>(free_blocks_.size()); }
  int32_t num_layers() const { return static_cast<int32_t>(file_->hparams.n_layer); }

 private:
  struct seq_state {
    std::vector<int32_t> tokens;  // whose K/V the pages hold, positions 0..
    std::vector<int32_t> blocks;  // block table
  };

  draft_model(std::shared_ptr<const llama_model_file> file,
              std::shared_ptr<kernels::thread_pool> pool, model_options opts, paged_kv_storage kv,
              std::vector<int32_t> end_of_generation);

  // Grows st's block table to cover num_positions; false when the pages are full.
  bool reserve(seq_state& st, int64_t num_positions);
  // Computes `tokens` at first_position; the last token's logits into logits_.
  status compute(seq_state& st, std::span<const int32_t> tokens, int32_t first_position,
                 int32_t num_prompt_tokens);

  std::shared_ptr<const llama_model_file> file_;
  std::shared_ptr<kernels::thread_pool> pool_;
  llama_model model_;
  sampler sampler_;
  paged_kv_storage kv_;
  std::vector<int32_t> free_blocks_;
  std::unordered_map<uint64_t, seq_state> seqs_;
  std::vector<float> logits_;       // [n_vocab]
  std::vector<int32_t> history_;    // tokens + drafts so far (penalties, draw index)
  sample_result sample_;
};

}  // namespace troupe::engine
