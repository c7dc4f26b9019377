#include "tokenizer/special_tokens.hpp"

#include <algorithm>

#include "tokenizer/tokenizer.hpp"

namespace troupe {

special_token_matcher::special_token_matcher(const std::vector<std::string>& texts,
                                             const std::vector<token_kind>& kinds) {
  for (size_t id = 0; id < texts.size(); ++id) {
    const token_kind k = kinds[id];
    if (k == token_kind::control || k == token_kind::unknown || k == token_kind::user_defined)
      candidates_.push_back({static_cast<int32_t>(id), texts[id], k == token_kind::user_defined});
  }
  // llama.cpp sorts by length only (std::sort); among equal lengths we keep id order so the
  // result is at least deterministic.
  std::stable_sort(candidates_.begin(), candidates_.end(),
                   [](const candidate& a, const candidate& b) { return a.text.size() > b.text.size(); });
}

std::vector<text_fragment> special_token_matcher::partition(std::string_view text,
                                                            bool parse_special) const {
  const text_span whole{0, text.size(), parse_special};
  return partition(text, std::span<const text_span>(&whole, 1));
}

std::vector<text_fragment> special_token_matcher::partition(std::string_view text,
                                                            std::span<const text_span> spans) const {
  std::vector<text_fragment> fragments;
  bool any_special = false;
  for (const text_span& s : spans) {
    if (s.length == 0) continue;
    fragments.push_back({-1, s.offset, s.length, s.parse_special});
    any_special = any_special || s.parse_special;
  }
  if (fragments.empty()) return fragments;
  std::vector<text_fragment> next;
  for (const candidate& c : candidates_) {
    if (!any_special && !c.always) continue;
    if (c.text.empty() || text.find(c.text) == std::string_view::npos) continue;
    next.clear();
    for (const text_fragment& f : fragments) {
      if (f.token >= 0 || (!f.parse_special && !c.always)) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      while (pos < end) {
        const size_t match = text.substr(0, end).find(c.text, pos);
        if (match == std::string_view::npos) break;
        if (match > pos) next.push_back({-1, pos, match - pos, f.parse_special});
        next.push_back({c.id, match, c.text.size()});
        pos = match + c.text.size();
      }
      if (pos < end) next.push_back({-1, pos, end - pos, f.parse_special});
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace troupe
