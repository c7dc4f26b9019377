#include "actors/draft_proposer.hpp"

#include <algorithm>

#include "troupe/result.hpp"

namespace troupe::actors {

std::vector<int32_t> propose_prompt_lookup_drafts(std::span<const int32_t> tokens,
                                                  int32_t min_ngram, int32_t max_ngram,
                                                  int32_t max_num_drafts) {
  TROUPE_ASSERT(min_ngram >= 1 && min_ngram <= max_ngram);
  std::vector<int32_t> drafts;
  const auto len = static_cast<int64_t>(tokens.size());
  if (max_num_drafts <= 0) return drafts;
  for (int64_t n = std::min<int64_t>(max_ngram, len - 1); n >= min_ngram; --n) {
    const auto suffix = tokens.subspan(static_cast<size_t>(len - n));
    // Most recent first: a copy in progress continues where it was last seen. `start` is where
    // an earlier occurrence begins; it must end before the suffix does (start + n < len).
    for (int64_t start = len - n - 1; start >= 0; --start) {
      if (!std::equal(suffix.begin(), suffix.end(), tokens.begin() + start)) continue;
      const int64_t from = start + n;
      const int64_t count = std::min<int64_t>(max_num_drafts, len - from);
      drafts.assign(tokens.begin() + from, tokens.begin() + from + count);
      return drafts;
    }
  }
  return drafts;
}

}  // namespace troupe::actors
