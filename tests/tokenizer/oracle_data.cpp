#include "oracle_data.hpp"

#include <catch2/catch.hpp>
#include <simdjson.h>

#include <filesystem>
#include <optional>

namespace troupe::test {
namespace {

std::string from_hex(std::string_view hex) {
  std::string out;
  auto nibble = [](char c) { return c <= '9' ? c - '0' : c - 'a' + 10; };
  for (size_t i = 0; i + 1 < hex.size(); i += 2)
    out += static_cast<char>(nibble(hex[i]) * 16 + nibble(hex[i + 1]));
  return out;
}

std::vector<int32_t> read_ids(simdjson::dom::element e) {
  std::vector<int32_t> ids;
  for (simdjson::dom::element x : e.get_array()) ids.push_back(static_cast<int32_t>(int64_t(x)));
  return ids;
}

oracle_data load() {
  const std::string path = std::string(TROUPE_SOURCE_DIR) + "/tests/data/tokenizer/oracle.json";
  simdjson::dom::parser parser;
  simdjson::dom::element doc;
  if (parser.load(path).get(doc) != simdjson::SUCCESS) FAIL("cannot read " << path);
  oracle_data o;
  o.llama_cpp_python = std::string(std::string_view(doc["llama_cpp_python"]));
  o.model_sha256 = std::string(std::string_view(doc["model_sha256"]));
  o.n_vocab = static_cast<int32_t>(int64_t(doc["n_vocab"]));
  o.bos = static_cast<int32_t>(int64_t(doc["bos"]));
  o.eos = static_cast<int32_t>(int64_t(doc["eos"]));
  o.eot = static_cast<int32_t>(int64_t(doc["eot"]));
  o.eog_ids = read_ids(doc["eog_ids"]);
  for (simdjson::dom::element c : doc["cases"].get_array()) {
    oracle_case k;
    k.name = std::string(std::string_view(c["name"]));
    k.text = from_hex(std::string_view(c["hex"]));
    k.valid_utf8 = bool(c["valid_utf8"]);
    k.ids_special = read_ids(c["ids_special"]);
    k.ids_plain = read_ids(c["ids_plain"]);
    k.decoded_special = from_hex(std::string_view(c["decoded_special_hex"]));
    k.decoded_plain = from_hex(std::string_view(c["decoded_plain_hex"]));
    o.cases.push_back(std::move(k));
  }
  for (auto [pre, list] : doc["pre_variants"].get_object()) {
    auto& out = o.pre_variants[std::string(pre)];
    for (simdjson::dom::element c : list.get_array())
      out.push_back({std::string(std::string_view(c["name"])), read_ids(c["ids_special"]),
                     read_ids(c["ids_plain"]), {}});
  }
  for (simdjson::dom::element c : doc["bos_eos_variant"].get_array())
    o.bos_eos_variant.push_back({std::string(std::string_view(c["name"])), {}, {}, read_ids(c["ids_add_special"])});
  return o;
}

}  // namespace

const oracle_data& oracle() {
  static const oracle_data o = load();
  return o;
}

tokenizer_spec default_spec() {
  const std::string path = TROUPE_DEFAULT_MODEL;
  if (!std::filesystem::exists(path)) FAIL("default model missing at " << path << " (run `make model`)");
  auto file = gguf_file::open(path);
  if (!file) FAIL(file.message());
  auto spec = read_tokenizer_spec(file.value());
  if (!spec) FAIL(spec.message());
  return std::move(spec).value();
}

const tokenizer& default_tokenizer() {
  static const std::optional<tokenizer> tok = [] {
    auto t = tokenizer::from_spec(default_spec());
    if (!t) FAIL(t.message());
    return std::optional<tokenizer>(std::move(t).value());
  }();
  return *tok;
}

std::string ids_to_string(const std::vector<int32_t>& ids) {
  std::string s = "[";
  for (size_t i = 0; i < ids.size(); ++i) s += (i ? ", " : "") + std::to_string(ids[i]);
  return s + "]";
}

}  // namespace troupe::test
