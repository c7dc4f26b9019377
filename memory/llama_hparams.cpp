// Reading llama hyperparameters from GGUF metadata. Writers disagree on integer widths
// (convert_hf_to_gguf writes u32, others u64 or i32), so any integer type is accepted and
// range-checked; floats may be stored as f32, f64 or an integer.
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "memory/llama_model_file.hpp"

namespace troupe {
namespace {

// Upper bound for every count: keeps products such as n_head * head_dim * n_embd far from
// int64 overflow, and no real model comes close.
constexpr uint64_t k_max_hparam = std::numeric_limits<int32_t>::max();

struct hparam_reader {
  const gguf_file& file;

  error fail(std::string_view what) const { return error{fmt::format("{}: {}", file.path(), what)}; }

  // Required positive integer; `fallback` < 0 means the key is required.
  result<int64_t> count(std::string_view key, int64_t fallback = -1) const {
    const gguf_value* v = file.find(key);
    if (v == nullptr) {
      if (fallback >= 0) return fallback;
      return fail(fmt::format("missing required llama key '{}'", key));
    }
    const auto u = v->as_uint();
    if (!u)
      return fail(fmt::format("llama key '{}' must be a non-negative integer, but is stored as {}",
                              key, gguf_value_type_name(v->type)));
    if (*u == 0 || *u > k_max_hparam)
      return fail(fmt::format("llama key '{}' is {}, outside 1..{}", key, *u, k_max_hparam));
    return static_cast<int64_t>(*u);
  }

  result<float> positive_float(std::string_view key, std::optional<float> fallback) const {
    const gguf_value* v = file.find(key);
    if (v == nullptr) {
      if (fallback) return *fallback;
      return fail(fmt::format("missing required llama key '{}'", key));
    }
    std::optional<double> d = v->as_float();
    if (!d) {
      if (const auto i = v->as_int()) d = static_cast<double>(*i);
    }
    if (!d)
      return fail(fmt::format("llama key '{}' must be a number, but is stored as {}", key,
                              gguf_value_type_name(v->type)));
    if (!std::isfinite(*d) || *d <= 0.0 || *d > std::numeric_limits<float>::max())
      return fail(fmt::format("llama key '{}' is {}, not a positive finite number", key, *d));
    return static_cast<float>(*d);
  }
};

}  // namespace

result<llama_hparams> read_llama_hparams(const gguf_file& file) {
  const hparam_reader r{file};
  const gguf_value* arch = file.find("general.architecture");
  if (arch == nullptr) return r.fail("missing required key 'general.architecture'");
  const auto arch_name = arch->as_string();
  if (!arch_name)
    return r.fail(fmt::format("'general.architecture' must be a string, but is stored as {}",
                              gguf_value_type_name(arch->type)));
  if (*arch_name != "llama")
    return r.fail(fmt::format("architecture is '{}', but troupe runs only 'llama' models",
                              *arch_name));

  // Features of other llama variants that the runner does not implement: refuse rather than
  // produce wrong text.
  if (const auto* v = file.find("llama.expert_count"); v && v->as_uint().value_or(0) > 0)
    return r.fail("llama.expert_count is set: mixture-of-experts models are not supported");
  if (const auto* v = file.find("llama.rope.scaling.type")) {
    const auto s = v->as_string();
    if (!s || (*s != "none" && !s->empty()))
      return r.fail(fmt::format("llama.rope.scaling.type is '{}': RoPE scaling is not supported",
                                s.value_or("?")));
  }

  if (const auto* v = file.find("llama.rope.scale_linear");
      v && v->as_float().value_or(1.0) != 1.0)
    return r.fail("llama.rope.scale_linear is set: RoPE scaling is not supported");

  llama_hparams hp;
  const auto get = [&](int64_t& out, std::string_view key, int64_t fallback = -1) -> status {
    auto v = r.count(key, fallback);
    if (!v) return v.err();
    out = *v;
    return {};
  };
  for (auto st : {get(hp.n_ctx_train, "llama.context_length"),
                  get(hp.n_embd, "llama.embedding_length"), get(hp.n_layer, "llama.block_count"),
                  get(hp.n_ff, "llama.feed_forward_length"),
                  get(hp.n_head, "llama.attention.head_count")})
    if (!st) return st.err();
  if (auto st = get(hp.n_head_kv, "llama.attention.head_count_kv", hp.n_head); !st) return st.err();
  if (hp.n_head % hp.n_head_kv != 0)
    return r.fail(fmt::format("inconsistent heads: head_count {} is not a multiple of "
                              "head_count_kv {}", hp.n_head, hp.n_head_kv));
  if (hp.n_embd % hp.n_head != 0 && file.find("llama.attention.key_length") == nullptr)
    return r.fail(fmt::format("inconsistent heads: embedding_length {} is not a multiple of "
                              "head_count {} (and no attention.key_length is given)", hp.n_embd,
                              hp.n_head));
  if (auto st = get(hp.head_dim, "llama.attention.key_length", hp.n_embd / hp.n_head); !st)
    return st.err();
  int64_t value_length = 0;
  if (auto st = get(value_length, "llama.attention.value_length", hp.head_dim); !st)
    return st.err();
  if (value_length != hp.head_dim)
    return r.fail(fmt::format("attention.value_length {} differs from key_length {}: not "
                              "supported", value_length, hp.head_dim));
  if (auto st = get(hp.n_rot, "llama.rope.dimension_count", hp.head_dim); !st) return st.err();
  if (hp.n_rot > hp.head_dim || hp.n_rot % 2 != 0)
    return r.fail(fmt::format("llama.rope.dimension_count {} must be even and at most the head "
                              "size {}", hp.n_rot, hp.head_dim));

  auto eps = r.positive_float("llama.attention.layer_norm_rms_epsilon", std::nullopt);
  if (!eps) return eps.err();
  hp.rms_eps = *eps;
  auto base = r.positive_float("llama.rope.freq_base", 10000.0f);
  if (!base) return base.err();
  hp.rope_freq_base = *base;

  // The vocabulary size: the explicit key, else the tokenizer's token list; load_llama_model
  // falls back to token_embd's row count when both are absent (n_vocab stays 0 here).
  if (file.find("llama.vocab_size") != nullptr) {
    if (auto st = get(hp.n_vocab, "llama.vocab_size"); !st) return st.err();
  } else if (const auto* tokens = file.find("tokenizer.ggml.tokens");
             tokens && tokens->as_array() && !tokens->as_array()->elements.empty()) {
    hp.n_vocab = static_cast<int64_t>(tokens->as_array()->elements.size());
  }
  return hp;
}

}  // namespace troupe
