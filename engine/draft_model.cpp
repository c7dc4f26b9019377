#include "engine/draft_model.hpp"

#include <fmt/format.h>

#include <algorithm>

#include "engine/speculative_sampler.hpp"
#include "tokenizer/tokenizer_spec.hpp"

namespace troupe::engine {

namespace {

// The catch-up chunk: a draft seeing a long prompt for the first time computes it in pieces of
// this many tokens, so its scratch stays small (the draft's prefill is not on the hot path).
constexpr int64_t max_chunk_tokens = 512;

}  // namespace

status check_same_vocabulary(const llama_model_file& target, const llama_model_file& draft,
                             const std::string& draft_path) {
  auto bad = [&](const std::string& what) {
    return status(error{fmt::format("speculative model {}: {}; a draft model must have the "
                                    "target model's vocabulary",
                                    draft_path, what)});
  };
  if (draft.hparams.n_vocab != target.hparams.n_vocab)
    return bad(fmt::format("vocabulary of {} tokens, the target's has {}", draft.hparams.n_vocab,
                           target.hparams.n_vocab));
  auto t = read_tokenizer_spec(target.file);
  if (!t) return bad("cannot read the target's tokenizer: " + t.message());
  auto d = read_tokenizer_spec(draft.file);
  if (!d) return bad("cannot read its tokenizer: " + d.message());
  if (d->tokens.size() != t->tokens.size())
    return bad(fmt::format("tokenizer of {} tokens, the target's has {}", d->tokens.size(),
                           t->tokens.size()));
  for (size_t i = 0; i < t->tokens.size(); ++i)
    if (d->tokens[i] != t->tokens[i])
      return bad(fmt::format("token {} is '{}' here and '{}' in the target", i, d->tokens[i],
                             t->tokens[i]));
  return {};
}

result<std::unique_ptr<draft_model>> draft_model::create(
    std::shared_ptr<const llama_model_file> file, std::shared_ptr<kernels::thread_pool> pool,
    model_options opts, int32_t num_blocks, int32_t block_size,
    std::vector<int32_t> end_of_generation) {
  if (!file || !pool) return error{"draft model: no model or no thread pool"};
  if (num_blocks < 1 || block_size < 1)
    return error{"draft model: num_blocks and block_size must be >= 1"};
  if (opts.mode == arithmetic::fast && !opts.packed)
    return error{"draft model: fast arithmetic without packed weights"};
  llama_model probe(*file, *pool);
  auto kv = paged_kv_storage::create(probe.kv_shape(num_blocks, block_size));
  if (!kv.ok()) return kv.err();
  return std::unique_ptr<draft_model>(new draft_model(std::move(file), std::move(pool),
                                                      std::move(opts), std::move(kv.value()),
                                                      std::move(end_of_generation)));
}

draft_model::draft_model(std::shared_ptr<const llama_model_file> file,
                         std::shared_ptr<kernels::thread_pool> pool, model_options opts,
                         paged_kv_storage kv, std::vector<int32_t> end_of_generation)
    : file_(std::move(file)),
      pool_(std::move(pool)),
      model_(*file_, *pool_, std::move(opts)),
      sampler_(static_cast<int32_t>(file_->hparams.n_vocab), std::move(end_of_generation)),
      kv_(std::move(kv)) {
  // Highest id last popped first: blocks are handed out 0, 1, 2, ... (easier to read in a debugger).
  for (auto b = static_cast<int32_t>(kv_.num_blocks()); b-- > 0;) free_blocks_.push_back(b);
  logits_.resize(static_cast<size_t>(file_->hparams.n_vocab));
}

void draft_model::drop(uint64_t seq_id) {
  auto it = seqs_.find(seq_id);
  if (it == seqs_.end()) return;
  free_blocks_.insert(free_blocks_.end(), it->second.blocks.rbegin(), it->second.blocks.rend());
  seqs_.erase(it);
}

bool draft_model::reserve(seq_state& st, int64_t num_positions) {
  const int64_t bs = kv_.block_size();
  const auto need = static_cast<size_t>((num_positions + bs - 1) / bs);
  if (need <= st.blocks.size()) return true;
  if (need - st.blocks.size() > free_blocks_.size()) return false;
  while (st.blocks.size() < need) {
    st.blocks.push_back(free_blocks_.back());
    free_blocks_.pop_back();
  }
  return true;
}

status draft_model::compute(seq_state& st, std::span<const int32_t> tokens,
                            int32_t first_position, int32_t num_prompt_tokens) {
  for (size_t at = 0; at < tokens.size(); at += max_chunk_tokens) {
    batch_sequence b;
    b.tokens = tokens.subspan(at, std::min<size_t>(max_chunk_tokens, tokens.size() - at));
    b.first_position = first_position + static_cast<int32_t>(at);
    b.block_table = st.blocks;
    b.sampled_from = num_prompt_tokens;
    if (status s = model_.forward({&b, 1}, kv_, logits_); !s.ok()) return s;
    st.tokens.insert(st.tokens.end(), b.tokens.begin(), b.tokens.end());
  }
  return {};
}

status draft_model::propose(uint64_t seq_id, std::span<const int32_t> tokens,
                            int32_t num_prompt_tokens, const sampling_params& p, int32_t k,
                            std::vector<int32_t>& drafts, std::vector<float>& probs) {
  TROUPE_ASSERT(!tokens.empty() && k >= 1);
  TROUPE_ASSERT(num_prompt_tokens >= 0 && static_cast<size_t>(num_prompt_tokens) <= tokens.size());
  drafts.clear();
  probs.clear();
  seq_state& st = seqs_[seq_id];
  // Keep what still matches; the last true token is always computed here (its logits are the
  // first draft's distribution).
  const size_t limit = std::min(st.tokens.size(), tokens.size() - 1);
  size_t keep = 0;
  while (keep < limit && st.tokens[keep] == tokens[keep]) ++keep;
  st.tokens.resize(keep);
  // Positions written: the true tokens, then every draft but the last.
  if (!reserve(st, static_cast<int64_t>(tokens.size()) + k - 1)) {
    drop(seq_id);
    return error{fmt::format("draft model: no free K/V block for sequence {}", seq_id)};
  }
  if (status s = compute(st, tokens.subspan(keep), static_cast<int32_t>(keep), num_prompt_tokens);
      !s.ok()) {
    drop(seq_id);
    return s;
  }
  sampling_params q = p;
  q.top_logprobs = -1;
  q.prompt_logprobs = -1;
  const auto n_vocab = static_cast<size_t>(file_->hparams.n_vocab);
  if (!q.is_greedy()) probs.resize(static_cast<size_t>(k) * n_vocab);
  history_.assign(tokens.begin(), tokens.end());
  for (int32_t j = 0; j < k; ++j) {
    std::span<const int32_t> all(history_);
    token_history h{all.first(static_cast<size_t>(num_prompt_tokens)),
                    all.subspan(static_cast<size_t>(num_prompt_tokens))};
    int32_t d = -1;
    if (q.is_greedy()) {
      sampler_.sample(logits_, q, h, sample_);
      d = sample_.token;
    } else {
      std::span<float> row(probs.data() + static_cast<size_t>(j) * n_vocab, n_vocab);
      sampler_.distribution(logits_, q, h, row, sample_);
      d = draw_from(row, draw_uniform_draft(q.seed, h.output.size()));
    }
    drafts.push_back(d);
    history_.push_back(d);
    if (j + 1 == k) break;
    const std::span<const int32_t> one(&drafts.back(), 1);
    if (status s = compute(st, one, static_cast<int32_t>(st.tokens.size()),
                           num_prompt_tokens);
        !s.ok()) {
      drop(seq_id);
      drafts.clear();
      probs.clear();
      return s;
    }
  }
  return {};
}

}  // namespace troupe::engine
