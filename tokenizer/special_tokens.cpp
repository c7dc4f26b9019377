#include "tokenizer/special_tokens.hpp"

#include <algorithm>

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
  std::vector<text_fragment> fragments;
  if (text.empty()) return fragments;
  fragments.push_back({-1, 0, text.size()});
  std::vector<text_fragment> next;
  for (const candidate& c : candidates_) {
    if (!parse_special && !c.always) continue;
    if (c.text.empty() || text.find(c.text) == std::string_view::npos) continue;
    next.clear();
    for (const text_fragment& f : fragments) {
      if (f.token >= 0) {
        next.push_back(f);
        continue;
      }
      size_t pos = f.offset;
      const size_t end = f.offset + f.length;
      while (pos < end) {
        const size_t match = text.substr(0, end).find(c.text, pos);
        if (match == std::string_view::npos) break;
        if (match > pos) next.push_back({-1, pos, match - pos});
        next.push_back({c.id, match, c.text.size()});
        pos = match + c.text.size();
      }
      if (pos < end) next.push_back({-1, pos, end - pos});
    }
    fragments.swap(next);
  }
  return fragments;
}

}  // namespace troupe
