// engine_step_executor: the step_executor on the real model -- one CPU stage holding a layer
// range [first, last) of the model (all layers by default). Each step is one
// llama_model::forward_layers over the plan's ragged batch (every sequence with its own block
// table into this stage's paged K/V, which holds only the stage's layers): the first stage
// starts from the token embeddings, later ones from the previous stage's hidden states; a stage
// that is not the last hands its hidden states on, the last one computes the logits and calls
// the sampler once per sequence that samples.
//
// Timers: each stage appends its forward-pass time to stage_forward_ns (hidden_states, then
// step_result); the last stage also reports its sampling time (step_result::sample_ns).
//
// Per-sequence state (step_plan.hpp protocol): created from an is_new entry (sampling params,
// prompt length, history), extended with every computed chunk (cut back to the next plan's
// first_position when that drops rejected drafts), dropped on freed_seq_ids. The
// sampler needs it for penalties and for the draw index (= output tokens so far), which makes
// sampling a pure function of (seed, index): a replayed sequence draws the same tokens.
//
// Draft model (draft_options, last stage): after sampling a sequence whose entry asks for
// num_draft_proposals, the stage proposes drafts for its next step -- prompt lookup over its
// tokens first (free, and 76 % right on input-grounded text), the draft model
// (engine/draft_model.hpp) only when lookup finds nothing -- and returns them with the sample.
// A draft-model failure is logged once and means no drafts; it never fails the step.
//
// Ownership: shares the model file (weights are views into its mapping) and the thread pool;
// owns the model's scratch, the sampler and the K/V pages (num_blocks x block_size positions,
// zero-filled at creation, so a restarted executor starts with empty pages).
// Failure: a forward error (bad plan) or a protocol breach is returned as an error; the
// executor actor then dies and the supervisor restarts it.
// Threading: run_step on one thread at a time (the executor actor's); it drives the pool.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <unordered_map>
#include <vector>

#include "actors/prompt_logprobs.hpp"
#include "actors/step_executor.hpp"
#include "engine/draft_model.hpp"
#include "engine/llama_model.hpp"
#include "engine/sampler.hpp"
#include "engine/speculative_sampler.hpp"
#include "grammar/grammar_constraint_cache.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"

namespace troupe::actors {

// Speculative decoding with a draft model: given to the last stage only.
struct draft_options {
  std::shared_ptr<const llama_model_file> file;  // null: no draft model
  engine::model_options model_opts;              // its arithmetic (fast: its packed weights)
  int32_t prompt_lookup_min = 2;                 // lookup is tried first (draft_proposer.hpp)
  int32_t prompt_lookup_max = 4;
  int32_t num_kv_blocks = 0;  // the draft's own K/V pages; 0: as many as the stage's
};

class engine_step_executor : public step_executor {
 public:
  // Allocates the K/V pages of `layers` (empty: all layers). model_opts: the arithmetic
  // (engine/arithmetic.hpp; the default is llama.cpp-exact, fast mode needs packed weights of
  // these layers, which every executor of the stage shares). Errors: allocation failure, bad
  // sizes, a layer range outside the model. end_of_generation: the ids ignore_eos bans
  // (tokenizer::is_end_of_generation).
  static result<std::unique_ptr<engine_step_executor>> create(
      std::shared_ptr<const llama_model_file> file, std::shared_ptr<kernels::thread_pool> pool,
      int32_t num_blocks, int32_t block_size, std::vector<int32_t> end_of_generation,
      engine::layer_range layers = {}, engine::model_options model_opts = {},
      draft_options draft = {});

  // Only for a stage holding every layer.
  result<step_result> run_step(const step_plan& plan) override;
  result<stage_output> run_stage(const step_plan& plan, const hidden_states& in) override;

  engine::layer_range layers() const { return layers_; }

 private:
  struct seq_state {
    engine::sampling_params sampling;
    int32_t num_prompt_tokens = 0;
    std::vector<int32_t> tokens;  // every token whose K/V is (or is being) computed
    int32_t num_unverified_tokens = 0;  // drafts at the end of `tokens` (the last step's)
    prompt_logprobs_gatherer prompt_logprobs;  // echo + logprobs (last stage)
    // Draft model: the last proposal (sampled_token::proposed_drafts) and, for a request that
    // samples, the distributions it was drawn from ([proposed.size(), n_vocab]).
    std::vector<int32_t> proposed;
    std::vector<float> proposed_probs;
    // Structured outputs (sampling.grammar set): the sequence's position in its grammar, fed
    // lazily with the output tokens in `tokens` (so a replayed or preempted sequence catches
    // up the same way), and whether the grammar failed (then only an end token is allowed).
    std::optional<grammar_matcher> grammar;
    size_t num_grammar_tokens = 0;
    bool grammar_failed = false;
  };

  engine_step_executor(std::shared_ptr<const llama_model_file> file,
                       std::shared_ptr<kernels::thread_pool> pool, paged_kv_storage kv,
                       std::vector<int32_t> end_of_generation, engine::layer_range layers,
                       engine::model_options model_opts, draft_options draft_opts,
                       std::unique_ptr<engine::draft_model> draft);
  // After a sampled step of st: up to k drafts to follow `tokens` (its true tokens, the last
  // one just emitted) into t.proposed_drafts, keeping their distributions in st.
  void propose_next(uint64_t seq_id, seq_state& st, std::span<const int32_t> tokens, int32_t k,
                    sampled_token& t);

  // The mask of the tokens st's grammar allows next, after feeding it st's new output tokens;
  // an end-only mask when the grammar cannot be compiled or fails (logged once per sequence).
  const token_mask& grammar_mask(uint64_t seq_id, seq_state& st);

  bool is_first() const { return layers_.first == 0; }
  bool is_last() const { return layers_.last == file_->hparams.n_layer; }

  std::shared_ptr<const llama_model_file> file_;
  std::shared_ptr<kernels::thread_pool> pool_;
  engine::llama_model model_;
  engine::sampler sampler_;
  paged_kv_storage kv_;
  engine::layer_range layers_;
  std::unordered_map<uint64_t, seq_state> seqs_;
  std::vector<engine::batch_sequence> batch_;  // reused between steps
  std::vector<float> logits_;                  // [sequences, n_vocab]
  engine::sample_result sample_;
  std::vector<engine::sample_result> verified_;  // speculative decoding: emitted per sequence
  draft_options draft_opts_;
  std::unique_ptr<engine::draft_model> draft_;   // last stage with a draft model; else null
  std::vector<int32_t> truth_;                   // a sequence's tokens after a step (proposals)
  bool has_logged_draft_failure_ = false;
  // Structured outputs (last stage only): the vocabulary trie, shared per model file and
  // built at creation; the constraint cache, made on the first sequence with a grammar.
  std::shared_ptr<const token_vocabulary> grammar_vocab_;
  std::unique_ptr<grammar_constraint_cache> grammars_;
  token_mask end_only_mask_;
};

}  // namespace troupe::actors
