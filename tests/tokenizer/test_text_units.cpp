// The text-level parts under the tokenizer: UTF-8 reading (strict and llama.cpp's lenient way),
// Unicode categories, the GPT-2 byte map and pre-tokenizer piece boundaries.
#include <catch2/catch.hpp>

#include "tokenizer/byte_unicode.hpp"
#include "tokenizer/pre_tokenizer.hpp"
#include "tokenizer/unicode_props.hpp"
#include "tokenizer/utf8.hpp"

using namespace troupe;

namespace {
std::vector<std::string> pieces(pre_tokenizer_kind kind, std::string_view text) {
  const auto cpts = utf8::decode_code_points_lenient(text);
  std::vector<std::string> out;
  size_t start = 0;
  for (size_t len : split_into_pieces(kind, cpts)) {
    std::string s;
    for (size_t i = start; i < start + len; ++i) utf8::append_code_point(s, cpts[i]);
    out.push_back(s);
    start += len;
  }
  return out;
}
using strings = std::vector<std::string>;
}  // namespace

TEST_CASE("strict UTF-8: complete, incomplete and maximal invalid subparts", "[tokenizer][utf8]") {
  using utf8::char_status;
  CHECK(utf8::next_utf8_char("\xE4\xB8\xAD", 0).status == char_status::complete);
  CHECK(utf8::next_utf8_char("\xF0\x9F\x98", 0).status == char_status::incomplete);
  CHECK(utf8::next_utf8_char("\xC0\x80", 0).status == char_status::invalid);      // overlong
  CHECK(utf8::next_utf8_char("\xED\xA0\x80", 0).status == char_status::invalid);  // surrogate
  CHECK(utf8::next_utf8_char("\xF4\x90\x80\x80", 0).status == char_status::invalid);  // > U+10FFFF
  CHECK(utf8::to_valid_utf8("a\xE4\xB8" "b") == "a\xEF\xBF\xBD" "b");  // one U+FFFD per subpart
  CHECK(utf8::to_valid_utf8("\xFF\xFE") == "\xEF\xBF\xBD\xEF\xBF\xBD");
  CHECK(utf8::is_valid_utf8("héllo 😀"));
  CHECK_FALSE(utf8::is_valid_utf8("\x80"));
}

TEST_CASE("lenient reading follows llama.cpp: values unchecked, bad bytes become U+FFFD", "[tokenizer][utf8]") {
  using v = std::vector<uint32_t>;
  CHECK(utf8::decode_code_points_lenient("\xC0\x80") == v{0});          // overlong kept
  CHECK(utf8::decode_code_points_lenient("\xED\xA0\x80") == v{0xD800});  // surrogate kept
  CHECK(utf8::decode_code_points_lenient("\xE4\xB8") == v{0xFFFD, 0xFFFD});
  CHECK(utf8::decode_code_points_lenient("\xF4\x90\x80\x80") == v{0xFFFD, 0xFFFD, 0xFFFD, 0xFFFD});
}

TEST_CASE("Unicode categories come from PCRE2 plus the Unicode 15 additions", "[tokenizer][unicode]") {
  using namespace troupe::unicode;
  CHECK(category_of('a') == cat_letter);
  CHECK(category_of('7') == cat_number);
  CHECK(category_of(0x0663) == cat_number);    // Arabic-Indic three
  CHECK(category_of(0x00BD) == cat_number);    // ½ (No)
  CHECK(category_of(0x4E2D) == cat_letter);    // 中
  CHECK(category_of(0x0301) == cat_mark);
  CHECK(category_of('!') == cat_punctuation);
  CHECK(category_of('$') == cat_symbol);
  CHECK(category_of(0x31350) == cat_letter);   // CJK extension H (Unicode 15.0)
  CHECK(category_of(0x2EBF0) == cat_letter);   // CJK extension I (Unicode 15.1)
  CHECK(category_of(0x0378) == cat_undefined); // unassigned
  CHECK(category_of(0xD800) == cat_control);   // surrogate
  CHECK(category_of(0x110000) == cat_undefined);
  CHECK(is_whitespace(0x3000));
  CHECK(is_whitespace(0x85));
  CHECK_FALSE(is_whitespace(0x200B));  // zero width space is not White_Space
  CHECK_FALSE(is_whitespace(0x180E));
}

TEST_CASE("the GPT-2 byte map", "[tokenizer][unicode]") {
  CHECK(byte_unicode::text_of_byte(' ') == "\xC4\xA0");   // Ġ
  CHECK(byte_unicode::text_of_byte('\n') == "\xC4\x8A");  // Ċ
  CHECK(byte_unicode::text_of_byte('a') == "a");
  for (int b = 0; b < 256; ++b)
    CHECK(byte_unicode::byte_of_code_point(byte_unicode::code_point_of_byte(static_cast<uint8_t>(b))) == b);
  CHECK(byte_unicode::byte_of_code_point(0x144) == -1);
}

TEST_CASE("pre-tokenizer pieces", "[tokenizer][pre]") {
  CHECK(pieces(pre_tokenizer_kind::smollm, " 123") == strings{" ", "1", "2", "3"});
  CHECK(pieces(pre_tokenizer_kind::gpt2, " 123") == strings{" 123"});
  CHECK(pieces(pre_tokenizer_kind::llama3, "12345") == strings{"123", "45"});
  CHECK(pieces(pre_tokenizer_kind::gpt2, "Hello  world") == strings{"Hello", " ", " world"});
  CHECK(pieces(pre_tokenizer_kind::gpt2, "it's") == strings{"it", "'s"});
  CHECK(pieces(pre_tokenizer_kind::gpt2, "IT'S") == strings{"IT", "'", "S"});
  CHECK(pieces(pre_tokenizer_kind::llama3, "IT'S") == strings{"IT", "'S"});
  CHECK(pieces(pre_tokenizer_kind::gpt2, "a  ") == strings{"a", "  "});
  CHECK(pieces(pre_tokenizer_kind::gpt2, "x!?y") == strings{"x", "!?", "y"});
  CHECK(pieces(pre_tokenizer_kind::fallback, "a+=1000") == strings{"a", "+=", "100", "0"});
  CHECK(pieces(pre_tokenizer_kind::smollm, "").empty());
  CHECK_FALSE(find_pre_tokenizer("gpt2").ok());  // llama.cpp's name is "gpt-2"
  CHECK(find_pre_tokenizer("").value().kind == pre_tokenizer_kind::fallback);
}
