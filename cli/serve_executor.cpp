#include "cli/serve_executor.hpp"

#include <fmt/format.h>

#include <unordered_map>

#include "engine/llama_model.hpp"
#include "engine/sampler.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/paged_kv_storage.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::cli {

namespace {

class engine_step_executor : public actors::step_executor {
 public:
  engine_step_executor(const llama_model_file& file, int threads, paged_kv_storage kv,
                       std::vector<int32_t> end_of_generation)
      : pool_(threads),
        model_(file, pool_),
        kv_(std::move(kv)),
        sampler_(static_cast<int32_t>(file.hparams.n_vocab), std::move(end_of_generation)) {}

  result<actors::step_result> run_step(const actors::step_plan& plan) override {
    for (auto id : plan.freed_seq_ids) seqs_.erase(id);
    actors::step_result out;
    out.step_id = plan.step_id;
    if (plan.seqs.empty()) return out;
    batch_.clear();
    for (const auto& s : plan.seqs) {
      if (s.is_new) {
        auto& st = seqs_[s.seq_id];
        st.sampling = s.sampling;
        st.num_prompt_tokens = s.num_prompt_tokens;
        st.tokens = s.history_token_ids;
      }
      auto it = seqs_.find(s.seq_id);
      if (it == seqs_.end())
        return error{fmt::format("step {}: sequence {} was never introduced (is_new)",
                                 plan.step_id, s.seq_id)};
      // The history is exactly the tokens at [0, first_position) before this step's tokens.
      auto& toks = it->second.tokens;
      toks.resize(static_cast<std::size_t>(s.first_position));
      toks.insert(toks.end(), s.token_ids.begin(), s.token_ids.end());
      batch_.push_back({s.seq_id, s.token_ids, s.first_position, s.block_table, false});
    }
    const auto n_vocab = static_cast<std::size_t>(model_.n_vocab());
    logits_.resize(static_cast<std::size_t>(engine::llama_model::num_logit_rows(batch_)) * n_vocab);
    if (auto st = model_.forward(batch_, kv_, logits_); !st) return error{st.message()};
    for (std::size_t i = 0; i < plan.seqs.size(); ++i) {
      const auto& s = plan.seqs[i];
      if (!s.do_sample) continue;
      auto& st = seqs_[s.seq_id];
      std::span<const int32_t> all = st.tokens;
      auto num_prompt = std::min<std::size_t>(static_cast<std::size_t>(st.num_prompt_tokens), all.size());
      engine::token_history h{all.first(num_prompt), all.subspan(num_prompt)};
      actors::sampled_token t;
      t.seq_id = s.seq_id;
      sampler_.sample(std::span<const float>(logits_).subspan(i * n_vocab, n_vocab), st.sampling,
                      h, t.sample);
      out.samples.push_back(std::move(t));
    }
    return out;
  }

 private:
  struct seq_state {
    engine::sampling_params sampling;
    int32_t num_prompt_tokens = 0;
    std::vector<int32_t> tokens;  // prompt + output so far
  };
  kernels::thread_pool pool_;
  engine::llama_model model_;
  paged_kv_storage kv_;
  engine::sampler sampler_;
  std::unordered_map<uint64_t, seq_state> seqs_;
  std::vector<engine::batch_sequence> batch_;
  std::vector<float> logits_;
};

}  // namespace

result<actors::executor_factory> make_executor_factory(const llama_model_file& model,
                                                       const serve_config& cfg) {
  auto tok = tokenizer::from_gguf(model.file);
  if (!tok) return tok.err();
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < tok->n_vocab(); ++id)
    if (tok->is_end_of_generation(id)) eog.push_back(id);
  const int threads = cfg.stages.front().threads;
  // The shape comes from a throwaway model object: llama_model knows its K/V layout.
  kernels::thread_pool probe_pool(1);
  engine::llama_model probe(model, probe_pool);
  auto shape = probe.kv_shape(cfg.scheduler.num_kv_blocks, cfg.scheduler.block_size);
  {
    auto kv = paged_kv_storage::create(shape);  // fail at start, not at the first restart
    if (!kv)
      return error{fmt::format("cannot allocate {} KV blocks ({} MiB): {}", shape.num_blocks,
                               shape.block_bytes() * shape.num_blocks >> 20, kv.message())};
  }
  const llama_model_file* file = &model;
  return actors::executor_factory{[file, threads, shape, eog]() -> std::shared_ptr<actors::step_executor> {
    auto kv = paged_kv_storage::create(shape);
    if (!kv) return nullptr;
    return std::make_shared<engine_step_executor>(*file, threads, std::move(*kv), eog);
  }};
}

}  // namespace troupe::cli
