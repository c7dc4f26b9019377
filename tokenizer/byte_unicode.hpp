// byte_unicode: GPT-2's reversible map between the 256 byte values and 256 printable code points,
// in which byte-level BPE vocabularies are written (' ' is U+0120 'Ġ', '\n' is U+010A 'Ċ').
//
// Thread-safety: the tables are built once (function-local statics) and are read-only.
#pragma once

#include <cstdint>
#include <string_view>

namespace troupe::byte_unicode {

// The code point that stands for byte `b`.
uint32_t code_point_of_byte(uint8_t b);

// The UTF-8 text of that code point (1 or 2 bytes), as it appears in vocabulary entries.
std::string_view text_of_byte(uint8_t b);

// The byte that code point `cpt` stands for, or -1 when `cpt` stands for none.
int byte_of_code_point(uint32_t cpt);

}  // namespace troupe::byte_unicode
