// troupe inspect --json, on top of the project's JSON writer.
#include "cli/inspect_json.hpp"

#include <cmath>

#include <fmt/format.h>

#include "net/json_writer.hpp"

namespace troupe::cli {
namespace {

using net::json_writer;

// float32 values print as their shortest form in float precision (1e-05), which json_writer's
// double path would turn into 9.999999747378752e-06.
void write_float(json_writer& w, float f) {
  if (std::isfinite(f))
    w.raw(fmt::format("{}", f));
  else
    w.null();
}

template <class T>
void write_opt(json_writer& w, const std::optional<T>& v) {
  if (v)
    w.value(*v);
  else
    w.null();
}

void write_value(json_writer& w, const gguf_value& v) {
  if (const auto* a = v.as_array()) {
    w.begin_object()
        .field("elem_type", gguf_value_type_name(a->elem_type))
        .field("count", static_cast<uint64_t>(a->elements.size()))
        .end_object();
  } else if (auto s = v.as_string()) {
    w.value(*s);
  } else if (auto b = v.as_bool()) {
    w.value(*b);
  } else if (auto f = v.as_float()) {
    if (v.type == gguf_value_type::float32)
      write_float(w, static_cast<float>(*f));
    else
      w.value(*f);
  } else if (auto u = v.as_uint()) {
    w.value(*u);
  } else if (auto i = v.as_int()) {
    w.value(*i);
  } else {
    w.null();
  }
}

void write_hparams(json_writer& w, const llama_hparams& h) {
  w.begin_object()
      .field("n_vocab", h.n_vocab)
      .field("n_ctx_train", h.n_ctx_train)
      .field("n_embd", h.n_embd)
      .field("n_layer", h.n_layer)
      .field("n_ff", h.n_ff)
      .field("n_head", h.n_head)
      .field("n_head_kv", h.n_head_kv)
      .field("head_dim", h.head_dim)
      .field("n_rot", h.n_rot);
  w.key("rms_eps");
  write_float(w, h.rms_eps);
  w.key("rope_freq_base");
  write_float(w, h.rope_freq_base);
  w.end_object();
}

void write_tokenizer(json_writer& w, const gguf_tokenizer_summary& t) {
  w.begin_object();
  const auto opt = [&](std::string_view k, const auto& v) {
    w.key(k);
    write_opt(w, v);
  };
  opt("model", t.model);
  opt("pre", t.pre);
  opt("vocab_size", t.n_tokens);
  opt("merges", t.n_merges);
  opt("bos_token_id", t.bos_id);
  opt("bos_token", t.bos_text);
  opt("eos_token_id", t.eos_id);
  opt("eos_token", t.eos_text);
  opt("add_bos_token", t.add_bos);
  opt("add_eos_token", t.add_eos);
  w.field("chat_template", t.chat_template_bytes.has_value());
  opt("chat_template_bytes", t.chat_template_bytes);
  w.end_object();
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out;
  net::append_json_string(out, s);
  return out;
}

std::string inspect_json(const gguf_file& file, const gguf_summary& s) {
  json_writer w;
  w.begin_object()
      .field("file", file.path())
      .field("file_bytes", file.file_size())
      .field("gguf_version", static_cast<uint64_t>(file.version()))
      .field("alignment", file.alignment());
  w.key("architecture");
  write_opt(w, s.architecture);
  w.key("name");
  write_opt(w, s.name);
  w.field("runnable", s.llama.has_value());
  w.key("not_runnable_reason");
  if (s.llama)
    w.null();
  else
    w.value(s.llama_error);
  w.key("hparams");
  if (s.llama)
    write_hparams(w, *s.llama);
  else
    w.null();
  w.key("tokenizer");
  write_tokenizer(w, s.tokenizer);

  w.key("metadata").begin_array();
  for (const auto& kv : file.metadata()) {
    w.begin_object().field("key", kv.key).field("type", gguf_value_type_name(kv.value.type));
    w.key("value");
    write_value(w, kv.value);
    w.end_object();
  }
  w.end_array();

  w.field("tensor_bytes", s.tensor_bytes);
  w.key("tensors").begin_array();
  for (const auto& ti : file.tensors()) {
    w.begin_object().field("name", ti.name).field("type", ggml_type_name(ti.type));
    w.key("shape").begin_array();
    for (uint32_t i = 0; i < ti.n_dims; ++i) w.value(ti.ne[i]);
    w.end_array();
    w.field("bytes", ti.n_bytes).field("offset", ti.offset).end_object();
  }
  w.end_array().end_object();
  return w.take();
}

}  // namespace troupe::cli
