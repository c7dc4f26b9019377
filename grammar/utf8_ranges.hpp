// utf8_ranges: a set of Unicode code point ranges as the UTF-8 byte sequences that encode it.
//
// The grammar automaton reads bytes, not code points, so a character class such as [^"\\] or
// [a-zé] becomes an alternation of byte-range sequences: [0x00-0x21] | [0xC2-0xDF][0x80-0xBF] |
// ... Each sequence has 1 to 4 byte ranges; together they match exactly the UTF-8 encodings of
// the code points in the set (surrogates D800-DFFF and code points past 10FFFF are never encoded).
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe::grammar_detail {

struct code_point_range {
  uint32_t first = 0, last = 0;  // inclusive
};

struct byte_range {
  uint8_t first = 0, last = 0;  // inclusive
};

using byte_range_sequence = std::vector<byte_range>;

constexpr uint32_t max_code_point = 0x10FFFF;

// Sorted, merged ranges; surrogates and values past max_code_point removed.
std::vector<code_point_range> normalize_ranges(std::vector<code_point_range> ranges);

// The complement of `ranges` within [0, max_code_point] minus the surrogates.
std::vector<code_point_range> complement_ranges(const std::vector<code_point_range>& ranges);

// The byte-range sequences matching exactly the UTF-8 encodings of the code points in `ranges`.
std::vector<byte_range_sequence> utf8_sequences(const std::vector<code_point_range>& ranges);

// Appends the UTF-8 encoding of `cp` (REQUIRES: cp <= max_code_point, not a surrogate).
void append_utf8(uint32_t cp, std::vector<uint8_t>& out);

}  // namespace troupe::grammar_detail
