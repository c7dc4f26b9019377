#include "engine/generator.hpp"

#include <algorithm>
#include <chrono>
#include <numeric>

#include "tokenizer/streaming_detokenizer.hpp"

namespace troupe::engine {
namespace {

std::vector<int32_t> end_of_generation_ids(const tokenizer& tok) {
  std::vector<int32_t> ids;
  for (int32_t id = 0; id < tok.n_vocab(); ++id)
    if (tok.is_end_of_generation(id)) ids.push_back(id);
  return ids;
}

double seconds_since(std::chrono::steady_clock::time_point t0) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

generator::generator(const llama_model_file& file, const tokenizer& tok,
                     kernels::thread_pool& pool, model_options opts)
    : file_(&file),
      tok_(tok),
      model_(file, pool, std::move(opts)),
      sampler_(static_cast<int32_t>(file.hparams.n_vocab), end_of_generation_ids(tok)) {}

result<generation_result> generator::generate(
    const generation_request& req, const std::function<void(std::string_view)>& on_text) {
  const int64_t n_ctx = file_->hparams.n_ctx_train;
  const int64_t n_prompt = static_cast<int64_t>(req.prompt.size());
  if (status st = validate(req.sampling, static_cast<int32_t>(model_.n_vocab())); !st.ok())
    return st.err();
  if (n_prompt == 0) return error{"the prompt is empty (no tokens)"};
  if (n_prompt >= n_ctx)
    return error{"the prompt has " + std::to_string(n_prompt) +
                 " tokens; the model's context holds " + std::to_string(n_ctx)};
  if (req.max_tokens < 0 || req.prefill_chunk <= 0 || req.block_size <= 0)
    return error{"max_tokens must be >= 0; prefill_chunk and block_size > 0"};
  const int64_t max_new = std::min<int64_t>(req.max_tokens, n_ctx - n_prompt);

  // The positions this call can reach, in pages of block_size; block ids 0..n-1 in order.
  const int64_t n_positions = n_prompt + std::max<int64_t>(max_new, 1);
  const int64_t n_blocks = (n_positions + req.block_size - 1) / req.block_size;
  auto kv = paged_kv_storage::create(model_.kv_shape(n_blocks, req.block_size));
  if (!kv.ok()) return kv.err();
  std::vector<int32_t> block_table(n_blocks);
  std::iota(block_table.begin(), block_table.end(), 0);

  generation_result res;
  res.prompt_tokens = n_prompt;
  res.finish_reason = "length";
  res.tokens.reserve(max_new);
  std::vector<float> logits(model_.n_vocab());
  if (max_new == 0) return res;

  batch_sequence seq;
  seq.block_table = block_table;
  seq.sampled_from = static_cast<int32_t>(n_prompt);
  auto t0 = std::chrono::steady_clock::now();
  for (int64_t i = 0; i < n_prompt; i += req.prefill_chunk) {
    const int64_t n = std::min<int64_t>(req.prefill_chunk, n_prompt - i);
    seq.tokens = std::span<const int32_t>(req.prompt).subspan(i, n);
    seq.first_position = static_cast<int32_t>(i);
    if (status st = model_.forward({&seq, 1}, kv.value(), logits); !st.ok()) return st.err();
  }
  res.prompt_seconds = seconds_since(t0);

  streaming_detokenizer detok(tok_);
  sample_result sample;
  int32_t position = static_cast<int32_t>(n_prompt);
  t0 = std::chrono::steady_clock::now();
  for (int64_t step = 0; step < max_new; ++step) {
    sampler_.sample(logits, req.sampling, {req.prompt, res.tokens}, sample);
    const int32_t tok = sample.token;
    if (!req.sampling.ignore_eos && tok_.is_end_of_generation(tok)) {
      res.finish_reason = "stop";
      break;
    }
    res.tokens.push_back(tok);
    if (const std::string text = detok.push(tok); !text.empty() && on_text) on_text(text);
    if (step + 1 == max_new) break;  // no forward pass for a token nobody will sample after
    seq.tokens = std::span<const int32_t>(&res.tokens.back(), 1);
    seq.first_position = position++;
    if (status st = model_.forward({&seq, 1}, kv.value(), logits); !st.ok()) return st.err();
    ++res.decode_steps;
  }
  res.decode_seconds = seconds_since(t0);
  if (const std::string rest = detok.finish(); !rest.empty() && on_text) on_text(rest);
  return res;
}

}  // namespace troupe::engine
