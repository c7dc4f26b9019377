#include "tokenizer/tokenizer_spec.hpp"

#include <string_view>

namespace troupe {
namespace {

class spec_reader {
 public:
  explicit spec_reader(const gguf_file& file) : file_(file) {}

  error fault(std::string_view key, std::string_view what) const {
    return error{file_.path() + ": " + std::string(key) + " " + std::string(what)};
  }

  // nullopt + no error: absent. Errors are collected in `err_`.
  std::optional<std::string> string_key(std::string_view key) {
    const gguf_value* v = file_.find(key);
    if (!v) return std::nullopt;
    auto s = v->as_string();
    if (!s) return fail(key, "is not a string"), std::nullopt;
    return std::string(*s);
  }
  std::optional<int64_t> int_key(std::string_view key) {
    const gguf_value* v = file_.find(key);
    if (!v) return std::nullopt;
    auto i = v->as_int();
    if (!i) return fail(key, "is not an integer"), std::nullopt;
    return *i;
  }
  std::optional<bool> bool_key(std::string_view key) {
    const gguf_value* v = file_.find(key);
    if (!v) return std::nullopt;
    auto b = v->as_bool();
    if (!b) return fail(key, "is not a bool"), std::nullopt;
    return *b;
  }
  const gguf_array* array_key(std::string_view key, gguf_value_type elem) {
    const gguf_value* v = file_.find(key);
    if (!v) return nullptr;
    const gguf_array* a = v->as_array();
    if (!a || a->elem_type != elem) {
      fail(key, std::string("is not an array of ") + gguf_value_type_name(elem));
      return nullptr;
    }
    return a;
  }
  std::vector<std::string> string_array(std::string_view key) {
    std::vector<std::string> out;
    if (const gguf_array* a = array_key(key, gguf_value_type::string)) {
      out.reserve(a->elements.size());
      for (const auto& e : a->elements) out.emplace_back(e.as_string().value_or(""));
    }
    return out;
  }

  void fail(std::string_view key, std::string_view what) {
    if (!err_) err_ = fault(key, what);
  }
  const std::optional<error>& first_error() const { return err_; }

 private:
  const gguf_file& file_;
  std::optional<error> err_;
};

}  // namespace

result<tokenizer_spec> read_tokenizer_spec(const gguf_file& file) {
  spec_reader r(file);
  tokenizer_spec spec;
  spec.source = file.path();

  auto model = r.string_key("tokenizer.ggml.model");
  if (!model && !r.first_error()) return r.fault("tokenizer.ggml.model", "is missing");
  spec.model = model.value_or("");
  spec.pre = r.string_key("tokenizer.ggml.pre").value_or("");

  if (!file.find("tokenizer.ggml.tokens") && !r.first_error())
    return r.fault("tokenizer.ggml.tokens", "is missing");
  spec.tokens = r.string_array("tokenizer.ggml.tokens");
  spec.merges = r.string_array("tokenizer.ggml.merges");

  if (const gguf_array* types = r.array_key("tokenizer.ggml.token_type", gguf_value_type::int32)) {
    spec.token_kinds.reserve(types->elements.size());
    for (const auto& e : types->elements) {
      const int64_t t = e.as_int().value_or(0);
      // Unknown type values read as `undefined`, as llama.cpp does.
      spec.token_kinds.push_back(t >= 0 && t <= 6 ? static_cast<token_kind>(t) : token_kind::undefined);
    }
  }

  spec.bos_id = r.int_key("tokenizer.ggml.bos_token_id");
  spec.eos_id = r.int_key("tokenizer.ggml.eos_token_id");
  spec.unk_id = r.int_key("tokenizer.ggml.unknown_token_id");
  spec.pad_id = r.int_key("tokenizer.ggml.padding_token_id");
  spec.eot_id = r.int_key("tokenizer.ggml.eot_token_id");
  spec.eom_id = r.int_key("tokenizer.ggml.eom_token_id");
  spec.fim_pad_id = r.int_key("tokenizer.ggml.fim_pad_token_id");
  spec.fim_rep_id = r.int_key("tokenizer.ggml.fim_rep_token_id");
  spec.fim_sep_id = r.int_key("tokenizer.ggml.fim_sep_token_id");
  spec.add_bos = r.bool_key("tokenizer.ggml.add_bos_token");
  spec.add_eos = r.bool_key("tokenizer.ggml.add_eos_token");

  if (r.first_error()) return *r.first_error();
  return spec;
}

}  // namespace troupe
