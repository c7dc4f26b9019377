// token_mask: one bit per vocabulary id, set where a grammar allows the token next.
#pragma once

#include <cstdint>
#include <vector>

namespace troupe {

struct token_mask {
  std::vector<uint64_t> words;  // bit (id % 64) of words[id / 64]

  explicit token_mask(int32_t n_vocab = 0) : words((static_cast<size_t>(n_vocab) + 63) / 64, 0) {}
  bool allows(int32_t id) const { return (words[static_cast<size_t>(id) >> 6] >> (id & 63)) & 1; }
  void allow(int32_t id) { words[static_cast<size_t>(id) >> 6] |= uint64_t{1} << (id & 63); }
  size_t count() const {
    size_t n = 0;
    for (uint64_t w : words) n += static_cast<size_t>(__builtin_popcountll(w));
    return n;
  }
};

}  // namespace troupe
