#include "actors/engine_step_executor.hpp"

#include <algorithm>
#include <chrono>

#include <cstdio>
#include <exception>
#include <limits>
#include <mutex>
#include <string>

#include "actors/draft_proposer.hpp"
#include "logging/log.hpp"
#include "tokenizer/tokenizer.hpp"
#include "engine/fast_weights.hpp"

namespace troupe::actors {

namespace {

int64_t elapsed_ns(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() -
                                                              since)
      .count();
}

// The grammar vocabulary (a trie over the model's 49,152 pieces: ~150 ms of CPU with the
// tokenizer load) is built once per model file in the process, when its last stage is created,
// rather than inside the first constrained step, where it stalled every sequence of that step;
// a restarted executor reuses it. Null when the file has no usable tokenizer.
std::shared_ptr<const token_vocabulary> grammar_vocabulary_of(
    const std::shared_ptr<const llama_model_file>& file) {
  static std::mutex mutex;
  static std::vector<std::pair<std::weak_ptr<const llama_model_file>,
                               std::shared_ptr<const token_vocabulary>>> built;
  const std::lock_guard lock(mutex);
  std::erase_if(built, [](const auto& e) { return e.first.expired(); });
  for (const auto& [f, vocab] : built)
    if (!f.owner_before(file) && !file.owner_before(f)) return vocab;
  auto tok = tokenizer::from_gguf(file->file);
  if (!tok.ok()) return nullptr;
  auto vocab = std::make_shared<const token_vocabulary>(token_vocabulary::from_tokenizer(*tok));
  built.emplace_back(file, vocab);
  return vocab;
}

}  // namespace

result<std::unique_ptr<engine_step_executor>> engine_step_executor::create(
    std::shared_ptr<const llama_model_file> file, std::shared_ptr<kernels::thread_pool> pool,
    int32_t num_blocks, int32_t block_size, std::vector<int32_t> end_of_generation,
    engine::layer_range layers, engine::model_options model_opts, draft_options draft) {
  if (!file || !pool) return error{"engine executor: no model or no thread pool"};
  if (num_blocks < 1 || block_size < 1)
    return error{"engine executor: num_blocks and block_size must be >= 1"};
  const auto n_layer = static_cast<int32_t>(file->hparams.n_layer);
  if (layers.first == 0 && layers.last == 0) layers.last = n_layer;
  if (layers.first < 0 || layers.first >= layers.last || layers.last > n_layer)
    return error{"engine executor: layers [" + std::to_string(layers.first) + ", " +
                 std::to_string(layers.last) + ") are not a non-empty part of the model's " +
                 std::to_string(n_layer) + " layers"};
  if (model_opts.mode == engine::arithmetic::fast &&
      (!model_opts.packed || model_opts.packed->layers().first > layers.first ||
       model_opts.packed->layers().last < layers.last))
    return error{"engine executor: fast arithmetic without packed weights for its layers"};
  // kv_shape only reads hyperparameters; a throwaway model gives it without duplicating them.
  engine::llama_model probe(*file, *pool);
  auto kv = paged_kv_storage::create(probe.kv_shape(num_blocks, block_size, layers));
  if (!kv.ok()) return kv.err();
  std::unique_ptr<engine::draft_model> dm;
  if (draft.file && layers.last == n_layer) {
    if (draft.file->hparams.n_vocab != file->hparams.n_vocab)
      return error{"engine executor: the draft model's vocabulary differs from the model's"};
    // As many K/V positions as the target's pool: the draft holds the same sequences.
    auto d = engine::draft_model::create(
        draft.file, pool, draft.model_opts,
        draft.num_kv_blocks > 0 ? draft.num_kv_blocks : num_blocks, block_size,
        end_of_generation);
    if (!d) return error{"engine executor: draft model: " + d.message()};
    dm = std::move(*d);
  }
  std::shared_ptr<const token_vocabulary> vocab;
  if (layers.last == n_layer) vocab = grammar_vocabulary_of(file);
  auto e = std::unique_ptr<engine_step_executor>(new engine_step_executor(
      std::move(file), std::move(pool), std::move(kv.value()), std::move(end_of_generation),
      layers, std::move(model_opts), std::move(draft), std::move(dm)));
  e->grammar_vocab_ = std::move(vocab);
  return e;
}

engine_step_executor::engine_step_executor(std::shared_ptr<const llama_model_file> file,
                                           std::shared_ptr<kernels::thread_pool> pool,
                                           paged_kv_storage kv,
                                           std::vector<int32_t> end_of_generation,
                                           engine::layer_range layers,
                                           engine::model_options model_opts,
                                           draft_options draft_opts,
                                           std::unique_ptr<engine::draft_model> draft)
    : file_(std::move(file)),
      pool_(std::move(pool)),
      model_(*file_, *pool_, std::move(model_opts)),
      sampler_(static_cast<int32_t>(file_->hparams.n_vocab), std::move(end_of_generation)),
      kv_(std::move(kv)),
      layers_(layers),
      draft_opts_(std::move(draft_opts)),
      draft_(std::move(draft)) {}

void engine_step_executor::propose_next(uint64_t seq_id, seq_state& st,
                                        std::span<const int32_t> tokens, int32_t k,
                                        sampled_token& t) {
  st.proposed.clear();
  st.proposed_probs.clear();
  if (k <= 0) return;
  st.proposed = propose_prompt_lookup_drafts(tokens, draft_opts_.prompt_lookup_min,
                                             draft_opts_.prompt_lookup_max, k);
  if (st.proposed.empty() && draft_) {
    status s;
    try {
      s = draft_->propose(seq_id, tokens, st.num_prompt_tokens, st.sampling, k, st.proposed,
                          st.proposed_probs);
    } catch (const std::exception& e) {  // e.g. bad_alloc: the draft is optional, go without
      s = error{std::string("draft model: ") + e.what()};
    }
    if (!s.ok()) {
      st.proposed.clear();
      st.proposed_probs.clear();
      if (!has_logged_draft_failure_)
        std::fprintf(stderr, "troupe: speculative decoding: %s (no drafts for this sequence; "
                     "logged once)\n", s.message().c_str());
      has_logged_draft_failure_ = true;
    }
  }
  t.proposed_drafts = st.proposed;
}

const token_mask& engine_step_executor::grammar_mask(uint64_t seq_id, seq_state& st) {
  if (!grammars_) {
    // The vocabulary of the model file (the same ids the tokenizer of net/ produces), built at
    // creation; 16 grammars kept: each holds at most 1,024 masks of 6 KiB and its automaton.
    TROUPE_ASSERT(grammar_vocab_);  // the server loaded this tokenizer before any request came
    auto vocab = grammar_vocab_;
    end_only_mask_ = token_mask(vocab->n_vocab());
    for (int32_t id : vocab->end_ids()) end_only_mask_.allow(id);
    grammars_ = std::make_unique<grammar_constraint_cache>(std::move(vocab), 16);
  }
  auto fail = [&](const std::string& why) -> const token_mask& {
    if (!st.grammar_failed) {
      logging::warn("grammar.failed", {{"seq_id", seq_id}, {"error", why}});
    }
    st.grammar_failed = true;
    return end_only_mask_;
  };
  if (st.grammar_failed) return end_only_mask_;
  if (!st.grammar) {
    auto c = grammars_->get(st.sampling.grammar);
    if (!c) return fail(c.message());
    st.grammar.emplace(*c);
    st.num_grammar_tokens = 0;
  }
  const auto first_output = static_cast<size_t>(st.num_prompt_tokens);
  for (size_t i = first_output + st.num_grammar_tokens; i < st.tokens.size(); ++i) {
    if (auto a = st.grammar->accept(st.tokens[i]); !a) return fail(a.message());
    ++st.num_grammar_tokens;
  }
  auto mask = st.grammar->allowed_tokens();
  if (!mask) return fail(mask.message());
  return **mask;
}

result<step_result> engine_step_executor::run_step(const step_plan& plan) {
  if (!is_first() || !is_last())
    return error{"run_step on a stage that holds only layers [" + std::to_string(layers_.first) +
                 ", " + std::to_string(layers_.last) + ")"};
  auto r = run_stage(plan, hidden_states{});
  if (!r) return r.err();
  return std::move(r->result);
}

result<stage_output> engine_step_executor::run_stage(const step_plan& plan,
                                                     const hidden_states& in) {
  for (uint64_t id : plan.freed_seq_ids) {
    seqs_.erase(id);
    if (draft_) draft_->drop(id);
  }
  stage_output stage;
  stage.is_final = is_last();
  step_result& out = stage.result;
  out.step_id = plan.step_id;
  if (plan.seqs.empty()) return stage;

  // Bring every sequence's token list up to date before the forward pass; the spans in batch_
  // point into the plan, which outlives this call.
  batch_.clear();
  for (const scheduled_seq& s : plan.seqs) {
    if (s.is_new) {
      seq_state st;
      st.sampling = s.sampling;
      st.num_prompt_tokens = s.num_prompt_tokens;
      st.tokens = s.history_token_ids;
      st.prompt_logprobs = prompt_logprobs_gatherer(s.sampling.prompt_logprobs,
                                                    s.num_prompt_tokens, s.first_position);
      seqs_[s.seq_id] = std::move(st);
    }
    auto it = seqs_.find(s.seq_id);
    if (it == seqs_.end())
      return error{"step plan names sequence " + std::to_string(s.seq_id) +
                   " which this executor does not know (not marked new)"};
    seq_state& st = it->second;
    // Drafts of the previous step that were rejected: every stage computed them, only the last
    // one knows which held, and the scheduler continues after the accepted ones.
    const auto num_known = static_cast<int32_t>(st.tokens.size());
    if (num_known > s.first_position && num_known - s.first_position <= st.num_unverified_tokens)
      st.tokens.resize(static_cast<size_t>(s.first_position));
    if (s.num_draft_tokens < 0 || s.num_draft_tokens >= static_cast<int32_t>(s.token_ids.size()) ||
        (s.num_draft_tokens > 0 && !s.do_sample))
      return error{"step plan: sequence " + std::to_string(s.seq_id) + " has " +
                   std::to_string(s.num_draft_tokens) + " drafts in a chunk of " +
                   std::to_string(s.token_ids.size()) + " tokens"};
    st.num_unverified_tokens = s.num_draft_tokens;
    if (static_cast<int32_t>(st.tokens.size()) != s.first_position)
      return error{"step plan: sequence " + std::to_string(s.seq_id) + " continues at position " +
                   std::to_string(s.first_position) + " but has " +
                   std::to_string(st.tokens.size()) + " tokens"};
    st.tokens.insert(st.tokens.end(), s.token_ids.begin(), s.token_ids.end());
    engine::batch_sequence b;
    b.seq_id = s.seq_id;
    b.tokens = s.token_ids;
    b.first_position = s.first_position;
    b.block_table = s.block_table;
    b.sampled_from = st.num_prompt_tokens;  // llama.cpp's decode-step sums for output tokens
    b.all_logits = is_last() && (s.num_draft_tokens > 0 ||
                                 st.prompt_logprobs.wants_all_logits(s.first_position));
    batch_.push_back(b);
  }

  // Every stage keeps the token lists (the protocol checks above), the last one also samples.
  if (!is_last()) {
    hidden_states& h = stage.hidden;
    h.num_rows = engine::llama_model::num_hidden_rows(batch_);
    h.row_size = file_->hparams.n_embd;
    h.data.resize(static_cast<size_t>(h.num_rows * h.row_size));
    const auto t0 = std::chrono::steady_clock::now();
    if (status st = model_.forward_layers(batch_, layers_, kv_, in.data, h.data); !st.ok()) {
      seqs_.clear();  // pages may be half written: the sequences' state no longer matches
      return st.err();
    }
    h.stage_forward_ns = in.stage_forward_ns;
    h.stage_forward_ns.push_back(elapsed_ns(t0));
    return stage;
  }
  const int64_t n_vocab = model_.n_vocab();
  logits_.resize(static_cast<size_t>(engine::llama_model::num_logit_rows(batch_) * n_vocab));
  const auto t0 = std::chrono::steady_clock::now();
  if (status st = model_.forward_layers(batch_, layers_, kv_, in.data, logits_); !st.ok()) {
    // Pages may be half written for some sequences: their state no longer matches.
    seqs_.clear();
    return st.err();
  }
  out.stage_forward_ns = in.stage_forward_ns;
  out.stage_forward_ns.push_back(elapsed_ns(t0));
  const auto t_sample = std::chrono::steady_clock::now();

  // Logits rows in plan order: one per sequence, or one per token with all_logits (prompt
  // logprobs, drafts); a sequence samples from its last row, or verifies its drafts with its
  // last num_draft_tokens + 1 rows.
  int64_t row = 0;
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    const scheduled_seq& s = plan.seqs[i];
    seq_state& st = seqs_.at(s.seq_id);
    st.prompt_logprobs.add_chunk(s.first_position, static_cast<int32_t>(s.token_ids.size()),
                                 logits_.data() + row * n_vocab, n_vocab, st.tokens);
    row += batch_[i].all_logits ? static_cast<int64_t>(s.token_ids.size()) : 1;
    if (!s.do_sample) continue;
    if (s.num_draft_tokens > 0) {
      const int32_t k = s.num_draft_tokens;
      std::span<const int32_t> all(st.tokens);
      std::span<const float> rows(logits_.data() + (row - 1 - k) * n_vocab,
                                  static_cast<size_t>((k + 1) * n_vocab));
      const auto drafts = all.last(static_cast<size_t>(k));
      const auto first = static_cast<int32_t>(st.tokens.size()) - 1 - k;
      // The draft model's q for these drafts, if they are (a prefix of) its last proposal;
      // otherwise they are point masses (prompt lookup) and the coupled rule applies.
      const bool has_q = !st.proposed_probs.empty() && drafts.size() <= st.proposed.size() &&
                         std::equal(drafts.begin(), drafts.end(), st.proposed.begin());
      if (has_q)
        engine::verify_drafts_with_probs(
            sampler_, rows, drafts,
            std::span<const float>(st.proposed_probs).first(static_cast<size_t>(k * n_vocab)),
            st.sampling, all, st.num_prompt_tokens, first, verified_);
      else
        engine::verify_drafts(sampler_, rows, drafts, st.sampling, all, st.num_prompt_tokens,
                              first, verified_);
      sampled_token t{s.seq_id, verified_.front(), st.prompt_logprobs.take(st.tokens.size())};
      t.next_samples.assign(verified_.begin() + 1, verified_.end());
      if (s.num_draft_proposals > 0) {
        // True tokens: through t0 and the accepted drafts, then the last emitted token.
        const auto num_kept = st.tokens.size() - static_cast<size_t>(k) + verified_.size() - 1;
        truth_.assign(st.tokens.begin(), st.tokens.begin() + static_cast<ptrdiff_t>(num_kept));
        truth_.push_back(verified_.back().token);
        propose_next(s.seq_id, st, truth_, s.num_draft_proposals, t);
      } else {
        st.proposed.clear();
        st.proposed_probs.clear();
      }
      out.samples.push_back(std::move(t));
      continue;
    }
    std::span<const int32_t> all(st.tokens);
    engine::token_history h{all.first(static_cast<size_t>(st.num_prompt_tokens)),
                            all.subspan(static_cast<size_t>(st.num_prompt_tokens))};
    std::span<float> last(logits_.data() + (row - 1) * n_vocab, static_cast<size_t>(n_vocab));
    // Masked in place: nothing reads this row after the sample (prompt logprobs copied what
    // they need above).
    if (!st.sampling.grammar.empty()) apply_token_mask(last, grammar_mask(s.seq_id, st));
    sampler_.sample(last, st.sampling, h, sample_);
    sampled_token t{s.seq_id, sample_, st.prompt_logprobs.take(st.tokens.size())};
    if (s.num_draft_proposals > 0) {
      truth_.assign(st.tokens.begin(), st.tokens.end());
      truth_.push_back(sample_.token);
      propose_next(s.seq_id, st, truth_, s.num_draft_proposals, t);
    } else {
      st.proposed.clear();
      st.proposed_probs.clear();
    }
    out.samples.push_back(std::move(t));
  }
  // Sampling includes gathering prompt logprobs: both are the last stage's work after logits.
  out.sample_ns = elapsed_ns(t_sample);
  // all_logits for prompt logprobs may take n_vocab floats per prompt token: do not keep that
  // much memory around. Draft verification (a few rows per sequence, every step) stays below.
  constexpr int64_t max_kept_logit_rows = 256;
  if (row > std::max<int64_t>(max_kept_logit_rows, static_cast<int64_t>(plan.seqs.size())))
    std::vector<float>().swap(logits_);
  return stage;
}

}  // namespace troupe::actors
