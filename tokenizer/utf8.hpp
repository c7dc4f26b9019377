// utf8: the two ways the tokenizer reads UTF-8.
//
// - decode_code_points_lenient: llama.cpp's reading, which the pre-tokenizer must reproduce to
//   give llama.cpp's ids: well-formed sequences, and also overlong forms and surrogates, decode to
//   their value; a byte that starts no decodable sequence becomes U+FFFD and reading resumes at
//   the next byte. (llama.cpp aborts on 4-byte forms above U+10FFFF; we read their lead byte as
//   U+FFFD instead.)
// - next_utf8_char: strict UTF-8 (RFC 3629), for output that must be valid: the streaming
//   detokenizer and to_valid_utf8.
//
// Thread-safety: pure functions.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace troupe::utf8 {

std::vector<uint32_t> decode_code_points_lenient(std::string_view text);

// Appends the UTF-8 form of `cpt` (REQUIRES: cpt <= 0x10FFFF; surrogates are written as their
// 3-byte form, as llama.cpp does).
void append_code_point(std::string& out, uint32_t cpt);

enum class char_status { complete, incomplete, invalid };
struct char_scan {
  char_status status;
  size_t length;  // complete: bytes in the character; incomplete: bytes present (all of the
                  // rest); invalid: bytes of the maximal ill-formed subpart (>= 1) to replace
};
// Strictly reads the character at bytes[pos] (REQUIRES: pos < bytes.size()).
char_scan next_utf8_char(std::string_view bytes, size_t pos);

bool is_valid_utf8(std::string_view bytes);

// `bytes` with every maximal ill-formed subpart (including a truncated sequence at the end)
// replaced by U+FFFD -- the Unicode-recommended practice, as in Python's errors="replace".
std::string to_valid_utf8(std::string_view bytes);

}  // namespace troupe::utf8
