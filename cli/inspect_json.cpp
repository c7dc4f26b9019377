// troupe inspect --json. Written by hand (a few dozen lines) rather than pulling in a JSON
// library: the output is flat and only needs correct string escaping.
#include "cli/inspect_json.hpp"

#include <cmath>

#include <fmt/format.h>

namespace troupe::cli {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0 if it is not one (overlongs, surrogates and
// code points past U+10FFFF are invalid).
size_t utf8_sequence_length(std::string_view s, size_t i) {
  const auto b = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  const unsigned char c = b(i);
  if (c < 0x80) return 1;
  size_t n;
  uint32_t cp;
  if (c >= 0xC2 && c <= 0xDF) { n = 2; cp = c & 0x1F; }
  else if (c >= 0xE0 && c <= 0xEF) { n = 3; cp = c & 0x0F; }
  else if (c >= 0xF0 && c <= 0xF4) { n = 4; cp = c & 0x07; }
  else return 0;
  if (i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((b(i + k) & 0xC0) != 0x80) return 0;
    cp = (cp << 6) | (b(i + k) & 0x3F);
  }
  if ((n == 3 && cp < 0x800) || (n == 4 && (cp < 0x10000 || cp > 0x10FFFF)) ||
      (cp >= 0xD800 && cp <= 0xDFFF))
    return 0;
  return n;
}

// Floats print as their shortest round-trip form in their own precision (1e-05, not
// 9.999999747378752e-06).
template <class F>
std::string json_number(F d) {
  if (!std::isfinite(d)) return "null";
  return fmt::format("{}", d);
}

template <class T>
std::string json_opt(const std::optional<T>& v) {
  if (!v) return "null";
  if constexpr (std::is_same_v<T, std::string>) return json_quote(*v);
  else if constexpr (std::is_same_v<T, bool>) return *v ? "true" : "false";
  else return fmt::format("{}", *v);
}

std::string json_value(const gguf_value& v) {
  if (const auto* a = v.as_array())
    return fmt::format("{{\"elem_type\":\"{}\",\"count\":{}}}", gguf_value_type_name(a->elem_type),
                       a->elements.size());
  if (auto s = v.as_string()) return json_quote(*s);
  if (auto b = v.as_bool()) return *b ? "true" : "false";
  if (auto f = v.as_float())
    return v.type == gguf_value_type::float32 ? json_number(static_cast<float>(*f))
                                              : json_number(*f);
  if (auto u = v.as_uint()) return fmt::format("{}", *u);
  if (auto i = v.as_int()) return fmt::format("{}", *i);
  return "null";
}

}  // namespace

std::string json_quote(std::string_view s) {
  std::string out = "\"";
  out.reserve(s.size() + 2);
  for (size_t i = 0; i < s.size();) {
    const auto c = static_cast<unsigned char>(s[i]);
    switch (c) {
      case '"': out += "\\\""; ++i; continue;
      case '\\': out += "\\\\"; ++i; continue;
      case '\n': out += "\\n"; ++i; continue;
      case '\r': out += "\\r"; ++i; continue;
      case '\t': out += "\\t"; ++i; continue;
      case '\b': out += "\\b"; ++i; continue;
      case '\f': out += "\\f"; ++i; continue;
      default: break;
    }
    if (c < 0x20 || c == 0x7F) {
      out += fmt::format("\\u{:04x}", c);
      ++i;
      continue;
    }
    const size_t n = utf8_sequence_length(s, i);
    if (n == 0) {
      out += "\\ufffd";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out + "\"";
}

std::string inspect_json(const gguf_file& file, const gguf_summary& s) {
  std::string o = "{";
  o += fmt::format("\"file\":{},\"file_bytes\":{},\"gguf_version\":{},\"alignment\":{}",
                   json_quote(file.path()), file.file_size(), file.version(), file.alignment());
  o += fmt::format(",\"architecture\":{},\"name\":{}", json_opt(s.architecture), json_opt(s.name));
  o += fmt::format(",\"runnable\":{},\"not_runnable_reason\":{}",
                   s.llama ? "true" : "false", s.llama ? "null" : json_quote(s.llama_error));
  if (const auto& h = s.llama) {
    o += fmt::format(",\"hparams\":{{\"n_vocab\":{},\"n_ctx_train\":{},\"n_embd\":{},"
                     "\"n_layer\":{},\"n_ff\":{},\"n_head\":{},\"n_head_kv\":{},\"head_dim\":{},"
                     "\"n_rot\":{},\"rms_eps\":{},\"rope_freq_base\":{}}}",
                     h->n_vocab, h->n_ctx_train, h->n_embd, h->n_layer, h->n_ff, h->n_head,
                     h->n_head_kv, h->head_dim, h->n_rot, json_number(h->rms_eps),
                     json_number(h->rope_freq_base));
  } else {
    o += ",\"hparams\":null";
  }
  const auto& t = s.tokenizer;
  o += fmt::format(",\"tokenizer\":{{\"model\":{},\"pre\":{},\"vocab_size\":{},\"merges\":{},"
                   "\"bos_token_id\":{},\"bos_token\":{},\"eos_token_id\":{},\"eos_token\":{},"
                   "\"add_bos_token\":{},\"add_eos_token\":{},\"chat_template\":{},"
                   "\"chat_template_bytes\":{}}}",
                   json_opt(t.model), json_opt(t.pre), json_opt(t.n_tokens), json_opt(t.n_merges),
                   json_opt(t.bos_id), json_opt(t.bos_text), json_opt(t.eos_id),
                   json_opt(t.eos_text), json_opt(t.add_bos), json_opt(t.add_eos),
                   t.chat_template_bytes ? "true" : "false", json_opt(t.chat_template_bytes));
  o += ",\"metadata\":[";
  bool first = true;
  for (const auto& kv : file.metadata()) {
    o += fmt::format("{}{{\"key\":{},\"type\":\"{}\",\"value\":{}}}", first ? "" : ",",
                     json_quote(kv.key), gguf_value_type_name(kv.value.type),
                     json_value(kv.value));
    first = false;
  }
  o += fmt::format("],\"tensor_bytes\":{},\"tensors\":[", s.tensor_bytes);
  first = true;
  for (const auto& ti : file.tensors()) {
    std::string shape;
    for (uint32_t i = 0; i < ti.n_dims; ++i) shape += fmt::format("{}{}", i ? "," : "", ti.ne[i]);
    o += fmt::format("{}{{\"name\":{},\"type\":\"{}\",\"shape\":[{}],\"bytes\":{},\"offset\":{}}}",
                     first ? "" : ",", json_quote(ti.name), ggml_type_name(ti.type), shape,
                     ti.n_bytes, ti.offset);
    first = false;
  }
  return o + "]}";
}

}  // namespace troupe::cli
