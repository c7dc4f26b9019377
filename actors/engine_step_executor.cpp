#include "actors/engine_step_executor.hpp"

#include <string>

namespace troupe::actors {

result<std::unique_ptr<engine_step_executor>> engine_step_executor::create(
    std::shared_ptr<const llama_model_file> file, std::shared_ptr<kernels::thread_pool> pool,
    int32_t num_blocks, int32_t block_size, std::vector<int32_t> end_of_generation) {
  if (!file || !pool) return error{"engine executor: no model or no thread pool"};
  if (num_blocks < 1 || block_size < 1)
    return error{"engine executor: num_blocks and block_size must be >= 1"};
  // kv_shape only reads hyperparameters; a throwaway model gives it without duplicating them.
  engine::llama_model probe(*file, *pool);
  auto kv = paged_kv_storage::create(probe.kv_shape(num_blocks, block_size));
  if (!kv.ok()) return kv.err();
  return std::unique_ptr<engine_step_executor>(new engine_step_executor(
      std::move(file), std::move(pool), std::move(kv.value()), std::move(end_of_generation)));
}

engine_step_executor::engine_step_executor(std::shared_ptr<const llama_model_file> file,
                                           std::shared_ptr<kernels::thread_pool> pool,
                                           paged_kv_storage kv,
                                           std::vector<int32_t> end_of_generation)
    : file_(std::move(file)),
      pool_(std::move(pool)),
      model_(*file_, *pool_),
      sampler_(static_cast<int32_t>(file_->hparams.n_vocab), std::move(end_of_generation)),
      kv_(std::move(kv)) {}

result<step_result> engine_step_executor::run_step(const step_plan& plan) {
  for (uint64_t id : plan.freed_seq_ids) seqs_.erase(id);
  step_result out;
  out.step_id = plan.step_id;
  if (plan.seqs.empty()) return out;

  // Bring every sequence's token list up to date before the forward pass; the spans in batch_
  // point into the plan, which outlives this call.
  batch_.clear();
  for (const scheduled_seq& s : plan.seqs) {
    if (s.is_new) {
      seq_state st;
      st.sampling = s.sampling;
      st.num_prompt_tokens = s.num_prompt_tokens;
      st.tokens = s.history_token_ids;
      seqs_[s.seq_id] = std::move(st);
    }
    auto it = seqs_.find(s.seq_id);
    if (it == seqs_.end())
      return error{"step plan names sequence " + std::to_string(s.seq_id) +
                   " which this executor does not know (not marked new)"};
    seq_state& st = it->second;
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
    batch_.push_back(b);
  }

  const int64_t n_vocab = model_.n_vocab();
  logits_.resize(static_cast<size_t>(engine::llama_model::num_logit_rows(batch_) * n_vocab));
  if (status st = model_.forward(batch_, kv_, logits_); !st.ok()) {
    // Pages may be half written for some sequences: their state no longer matches.
    seqs_.clear();
    return st.err();
  }

  // One logits row per sequence, in plan order (no all_logits).
  for (size_t i = 0; i < plan.seqs.size(); ++i) {
    const scheduled_seq& s = plan.seqs[i];
    if (!s.do_sample) continue;
    const seq_state& st = seqs_.at(s.seq_id);
    std::span<const int32_t> all(st.tokens);
    engine::token_history h{all.first(static_cast<size_t>(st.num_prompt_tokens)),
                            all.subspan(static_cast<size_t>(st.num_prompt_tokens))};
    std::span<const float> row(logits_.data() + static_cast<int64_t>(i) * n_vocab,
                               static_cast<size_t>(n_vocab));
    sampler_.sample(row, st.sampling, h, sample_);
    out.samples.push_back(sampled_token{s.seq_id, sample_});
  }
  return out;
}

}  // namespace troupe::actors
