// token_mask: one bit per vocabulary id, set where a grammar allows the token next.
#pragma once

#include <algorithm>
#include <cstdint>
#include <limits>
#include <span>
#include <vector>

#include "troupe/result.hpp"

namespace troupe {

struct token_mask {
  std::vector<uint64_t> words;  // bit (id % 64) of words[id / 64]

  explicit token_mask(int32_t n_vocab = 0) : words((static_cast<size_t>(n_vocab) + 63) / 64, 0) {}
  bool allows(int32_t id) const { return (words[static_cast<size_t>(id) >> 6] >> (id & 63)) & 1; }
  void allow(int32_t id) { words[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63); }
  bool any() const {
    for (uint64_t w : words)
      if (w) return true;
    return false;
  }
  size_t count() const {
    size_t n = 0;
    for (uint64_t w : words) n += static_cast<size_t>(__builtin_popcountll(w));
    return n;
  }
};

// Sets the logits of the ids the mask refuses to -inf, in place (REQUIRES: row.size() <=
// 64 * mask.words.size()). Word by word: a grammar's mask is mostly whole words allowed (inside
// a string: nothing to write) or whole words refused (outside one: a fill of 64 floats), so this
// costs far less than testing 49,152 bits or copying the row.
inline void apply_token_mask(std::span<float> row, const token_mask& mask) {
  TROUPE_ASSERT(row.size() <= mask.words.size() * 64);
  constexpr float refused = -std::numeric_limits<float>::infinity();
  const size_t n = row.size();
  for (size_t w = 0, base = 0; base < n; ++w, base += 64) {
    const uint64_t bits = mask.words[w];
    if (bits == ~uint64_t{0}) continue;
    const size_t len = std::min<size_t>(64, n - base);
    if (bits == 0) {
      std::fill_n(row.data() + base, len, refused);
      continue;
    }
    for (uint64_t r = ~bits; r; r &= r - 1) {
      const auto i = static_cast<size_t>(__builtin_ctzll(r));
      if (i < len) row[base + i] = refused;
    }
  }
}

}  // namespace troupe
