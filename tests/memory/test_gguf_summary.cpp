// summarize_gguf (what troupe inspect prints) and lenient parsing of types troupe cannot run.
#include <catch2/catch.hpp>

#include "memory/gguf_summary.hpp"
#include "tests/memory/gguf_builder.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

gguf_builder tokenizer_file() {
  gguf_builder g;
  g.kv_str("general.architecture", "gpt2")
      .kv_str("general.name", "tiny")
      .kv_str("tokenizer.ggml.model", "gpt2")
      .kv_str("tokenizer.ggml.pre", "smollm")
      .kv_str_array("tokenizer.ggml.tokens", {"<s>", "</s>", "a", "b"})
      .kv_str_array("tokenizer.ggml.merges", {"a b"})
      .kv_u32("tokenizer.ggml.bos_token_id", 0)
      .kv_u32("tokenizer.ggml.eos_token_id", 7)  // out of range: id kept, no text
      .kv("tokenizer.ggml.add_bos_token", 7, encode<uint8_t>(1))
      .kv_str("tokenizer.chat_template", "{{ messages }}");
  g.tensor("x.weight", 11, {256, 2});  // Q3_K: known to ggml, not runnable by troupe
  return g;
}

}  // namespace

TEST_CASE("unsupported tensor types parse only when allowed", "[gguf][summary]") {
  const auto b = tokenizer_file().build();
  const std::span<const uint8_t> span(b.data(), b.size());
  auto strict = gguf_file::parse("t.gguf", span);
  REQUIRE_FALSE(strict.ok());
  CHECK_THAT(strict.message(), Catch::Contains("has type Q3_K (id 11), which troupe does not"));

  auto lenient = gguf_file::parse("t.gguf", span, {.allow_unsupported_types = true});
  REQUIRE(lenient.ok());
  const auto* t = lenient->find_tensor("x.weight");
  REQUIRE(t != nullptr);
  CHECK(static_cast<uint32_t>(t->type) == 11);
  CHECK(t->n_bytes == 2 * 110);

  auto g = tokenizer_file();
  g.tensor("y.weight", 99, {32});
  const auto b2 = g.build();
  auto unknown = gguf_file::parse("t.gguf", std::span<const uint8_t>(b2.data(), b2.size()),
                                  {.allow_unsupported_types = true});
  REQUIRE_FALSE(unknown.ok());
  CHECK_THAT(unknown.message(), Catch::Contains("unknown type id 99"));
}

TEST_CASE("summary of a non-llama file: tokenizer facts and why it is not runnable",
          "[gguf][summary]") {
  const auto b = tokenizer_file().build();
  auto f = gguf_file::parse("t.gguf", std::span<const uint8_t>(b.data(), b.size()),
                            {.allow_unsupported_types = true});
  REQUIRE(f.ok());
  const auto s = summarize_gguf(*f);
  CHECK(s.architecture == "gpt2");
  CHECK(s.name == "tiny");
  CHECK_FALSE(s.llama.has_value());
  CHECK_THAT(s.llama_error, Catch::Contains("architecture is 'gpt2'"));
  CHECK(s.tokenizer.model == "gpt2");
  CHECK(s.tokenizer.pre == "smollm");
  CHECK(s.tokenizer.n_tokens == 4u);
  CHECK(s.tokenizer.n_merges == 1u);
  CHECK(s.tokenizer.bos_id == 0u);
  CHECK(s.tokenizer.bos_text == "<s>");
  CHECK(s.tokenizer.eos_id == 7u);
  CHECK_FALSE(s.tokenizer.eos_text.has_value());
  CHECK(s.tokenizer.add_bos == true);
  CHECK_FALSE(s.tokenizer.add_eos.has_value());
  CHECK(s.tokenizer.chat_template_bytes == 14u);
  CHECK(s.tensor_bytes == 220);  // the Q3_K tensor: 2 rows of one 110-byte block
}

TEST_CASE("summary of an empty GGUF file has nothing but does not fail", "[gguf][summary]") {
  const auto b = gguf_builder{}.build();
  auto f = gguf_file::parse("e.gguf", std::span<const uint8_t>(b.data(), b.size()));
  REQUIRE(f.ok());
  const auto s = summarize_gguf(*f);
  CHECK_FALSE(s.architecture.has_value());
  CHECK_THAT(s.llama_error, Catch::Contains("missing required key 'general.architecture'"));
  CHECK_FALSE(s.tokenizer.n_tokens.has_value());
  CHECK_FALSE(s.tokenizer.chat_template_bytes.has_value());
  CHECK(s.tensor_bytes == 0);
}
