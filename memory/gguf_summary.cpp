// Collecting the inspect summary. Reads metadata leniently (a key of an unexpected type is
// treated as absent) because inspect must describe files troupe cannot run.
#include "memory/gguf_summary.hpp"

namespace troupe {
namespace {

std::optional<std::string> string_key(const gguf_file& f, std::string_view key) {
  if (const auto* v = f.find(key))
    if (auto s = v->as_string()) return std::string(*s);
  return std::nullopt;
}

std::optional<uint64_t> uint_key(const gguf_file& f, std::string_view key) {
  if (const auto* v = f.find(key)) return v->as_uint();
  return std::nullopt;
}

std::optional<bool> bool_key(const gguf_file& f, std::string_view key) {
  if (const auto* v = f.find(key)) return v->as_bool();
  return std::nullopt;
}

const gguf_array* array_key(const gguf_file& f, std::string_view key) {
  const auto* v = f.find(key);
  return v ? v->as_array() : nullptr;
}

std::optional<std::string> token_text(const gguf_array* tokens, std::optional<uint64_t> id) {
  if (tokens == nullptr || !id || *id >= tokens->elements.size()) return std::nullopt;
  if (auto s = tokens->elements[*id].as_string()) return std::string(*s);
  return std::nullopt;
}

}  // namespace

gguf_summary summarize_gguf(const gguf_file& file) {
  gguf_summary s;
  s.architecture = string_key(file, "general.architecture");
  s.name = string_key(file, "general.name");
  if (auto m = load_llama_model(file))
    s.llama = m->hparams;
  else
    s.llama_error = m.message();

  auto& t = s.tokenizer;
  t.model = string_key(file, "tokenizer.ggml.model");
  t.pre = string_key(file, "tokenizer.ggml.pre");
  const gguf_array* tokens = array_key(file, "tokenizer.ggml.tokens");
  if (tokens) t.n_tokens = tokens->elements.size();
  if (const auto* merges = array_key(file, "tokenizer.ggml.merges"))
    t.n_merges = merges->elements.size();
  t.bos_id = uint_key(file, "tokenizer.ggml.bos_token_id");
  t.eos_id = uint_key(file, "tokenizer.ggml.eos_token_id");
  t.bos_text = token_text(tokens, t.bos_id);
  t.eos_text = token_text(tokens, t.eos_id);
  t.add_bos = bool_key(file, "tokenizer.ggml.add_bos_token");
  t.add_eos = bool_key(file, "tokenizer.ggml.add_eos_token");
  if (auto tmpl = string_key(file, "tokenizer.chat_template")) t.chat_template_bytes = tmpl->size();

  for (const auto& ti : file.tensors()) s.tensor_bytes += ti.n_bytes;  // each fits the file
  return s;
}

}  // namespace troupe
