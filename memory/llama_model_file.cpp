// Binding llama tensors to views and checking each against the shape the hyperparameters imply.
#include "memory/llama_model_file.hpp"

#include <fmt/format.h>

namespace troupe {
namespace {

std::string shape_string(const std::array<uint64_t, 4>& ne, uint32_t n_dims) {
  std::string out = "[";
  for (uint32_t i = 0; i < n_dims; ++i) out += fmt::format("{}{}", i ? ", " : "", ne[i]);
  return out + "]";
}

struct tensor_binder {
  const gguf_file& file;

  // Finds `name`, checks its shape is exactly {ne0} (ne1 == 0) or {ne0, ne1}, and that norms
  // (vectors) are F32, which is what llama.cpp writes and what the kernels expect.
  result<tensor_view> bind(const std::string& name, int64_t ne0, int64_t ne1 = 0) const {
    const gguf_tensor_info* t = file.find_tensor(name);
    if (t == nullptr)
      return error{fmt::format("{}: missing llama tensor '{}'", file.path(), name)};
    const bool is_vector = ne1 == 0;
    const std::array<uint64_t, 4> want = {static_cast<uint64_t>(ne0),
                                          static_cast<uint64_t>(is_vector ? 1 : ne1), 1, 1};
    if (t->ne != want || t->n_dims > (is_vector ? 1u : 2u))
      return error{fmt::format("{}: llama tensor '{}' has the wrong shape: expected {}, got {}",
                               file.path(), name, shape_string(want, is_vector ? 1 : 2),
                               shape_string(t->ne, t->n_dims))};
    if (!ggml_type_is_supported(static_cast<uint32_t>(t->type)))  // a leniently parsed file
      return error{fmt::format("{}: llama tensor '{}' has type {} (id {}), which troupe does not "
                               "support", file.path(), name, ggml_type_name(t->type),
                               static_cast<uint32_t>(t->type))};
    if (is_vector && t->type != ggml_type::f32)
      return error{fmt::format("{}: llama tensor '{}' is {}, but norm weights must be F32",
                               file.path(), name, ggml_type_name(t->type))};
    tensor_view v;
    v.name = t->name;
    v.type = t->type;
    v.ne0 = static_cast<int64_t>(t->ne[0]);
    v.ne1 = static_cast<int64_t>(t->ne[1]);
    v.row_bytes = ggml_row_bytes(t->type, t->ne[0]);
    v.data = t->data;
    return v;
  }
};

// Tensors that change the computation but that the runner does not apply: refusing them is
// better than generating wrong text.
status refuse_unsupported_tensors(const gguf_file& file) {
  for (const auto& t : file.tensors()) {
    const bool bias = t.name.ends_with(".bias");
    if (bias || t.name == "rope_freqs.weight")
      return error{fmt::format("{}: tensor '{}' ({}) is not supported by troupe's llama runner",
                               file.path(), t.name, bias ? "a bias" : "RoPE frequency factors")};
  }
  return {};
}

}  // namespace

result<llama_model_file> load_llama_model(const std::string& path) {
  auto file = gguf_file::open(path);
  if (!file) return file.err();
  return load_llama_model(std::move(*file));
}

result<llama_model_file> load_llama_model(gguf_file file) {
  auto hp = read_llama_hparams(file);
  if (!hp) return hp.err();
  if (auto st = refuse_unsupported_tensors(file); !st) return st.err();
  if (hp->n_vocab == 0) {
    const auto* embd = file.find_tensor("token_embd.weight");
    if (embd == nullptr)
      return error{fmt::format("{}: missing llama tensor 'token_embd.weight'", file.path())};
    hp->n_vocab = static_cast<int64_t>(embd->ne[1]);
  }

  const tensor_binder b{file};
  llama_weights w;
  const auto bind = [&](tensor_view& out, const std::string& name, int64_t ne0,
                        int64_t ne1 = 0) -> status {
    auto v = b.bind(name, ne0, ne1);
    if (!v) return v.err();
    out = *v;
    return {};
  };
  const int64_t n_q = hp->n_head * hp->head_dim;
  const int64_t n_kv = hp->n_head_kv * hp->head_dim;
  if (auto st = bind(w.token_embd, "token_embd.weight", hp->n_embd, hp->n_vocab); !st)
    return st.err();
  if (auto st = bind(w.output_norm, "output_norm.weight", hp->n_embd); !st) return st.err();
  if (file.find_tensor("output.weight") != nullptr) {
    if (auto st = bind(w.output, "output.weight", hp->n_embd, hp->n_vocab); !st) return st.err();
  } else {
    w.output = w.token_embd;
    w.output_tied = true;
  }
  // Grown one layer at a time, never sized to n_layer up front: block_count comes from the file,
  // and a hostile one (up to 2^31 - 1) must fail at its first missing tensor, not allocate
  // hundreds of GB (found by fuzz_gguf_file).
  for (int64_t i = 0; i < hp->n_layer; ++i) {
    auto& l = w.layers.emplace_back();
    const auto name = [i](const char* what) { return fmt::format("blk.{}.{}.weight", i, what); };
    for (auto st : {bind(l.attn_norm, name("attn_norm"), hp->n_embd),
                    bind(l.wq, name("attn_q"), hp->n_embd, n_q),
                    bind(l.wk, name("attn_k"), hp->n_embd, n_kv),
                    bind(l.wv, name("attn_v"), hp->n_embd, n_kv),
                    bind(l.wo, name("attn_output"), n_q, hp->n_embd),
                    bind(l.ffn_norm, name("ffn_norm"), hp->n_embd),
                    bind(l.w_gate, name("ffn_gate"), hp->n_embd, hp->n_ff),
                    bind(l.w_up, name("ffn_up"), hp->n_embd, hp->n_ff),
                    bind(l.w_down, name("ffn_down"), hp->n_ff, hp->n_embd)})
      if (!st) return st.err();
  }
  return llama_model_file{std::move(file), *hp, std::move(w)};
}

}  // namespace troupe
