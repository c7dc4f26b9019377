// unicode_props: the Unicode facts the pre-tokenizers need -- general category (as llama.cpp
// groups it) and the White_Space property -- for any code point.
//
// Categories come from PCRE2 (\p{..} with PCRE2_UCP), plus the code points assigned in Unicode
// 15.0/15.1 that Debian's PCRE2 10.42 (Unicode 14) does not know yet; llama.cpp's tables are
// Unicode 15.1, and agreeing with them is what makes our token ids equal llama.cpp's.
// Lookups are cached per code point, so only the first sight of a character costs a regex match.
//
// Thread-safety: every function may be called from any thread concurrently.
#pragma once

#include <cstdint>

namespace troupe::unicode {

// One bit per category, the same grouping llama.cpp uses (so \p{N} is number, \p{L} letter ...).
enum category : uint8_t {
  cat_undefined = 0x01,    // unassigned (Cn) or not a code point (> U+10FFFF)
  cat_number = 0x02,       // \p{N}
  cat_letter = 0x04,       // \p{L}
  cat_separator = 0x08,    // \p{Z}
  cat_mark = 0x10,         // \p{M}
  cat_punctuation = 0x20,  // \p{P}
  cat_symbol = 0x40,       // \p{S}
  cat_control = 0x80,      // \p{C} other than Cn (controls, format, private use, surrogates)
};

constexpr uint32_t max_code_point = 0x10FFFF;
constexpr uint32_t replacement_character = 0xFFFD;

// The category of `cpt`; values above U+10FFFF are cat_undefined.
category category_of(uint32_t cpt);

// The Unicode White_Space property (what Python's and Rust's regex \s match).
bool is_whitespace(uint32_t cpt);

inline bool is_letter(uint32_t cpt) { return category_of(cpt) == cat_letter; }
inline bool is_number(uint32_t cpt) { return category_of(cpt) == cat_number; }

}  // namespace troupe::unicode
