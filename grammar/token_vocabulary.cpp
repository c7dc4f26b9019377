#include "grammar/token_vocabulary.hpp"

#include <algorithm>
#include <map>

#include "tokenizer/tokenizer.hpp"
#include "troupe/result.hpp"

namespace troupe {

token_vocabulary::token_vocabulary(std::vector<std::string> pieces, std::vector<int32_t> end_ids)
    : pieces_(std::move(pieces)), end_ids_(std::move(end_ids)), is_end_(pieces_.size(), false) {
  for (int32_t id : end_ids_) {
    TROUPE_ASSERT(id >= 0 && static_cast<size_t>(id) < pieces_.size());
    is_end_[static_cast<size_t>(id)] = true;
  }
  // Build with child maps, then flatten into CSR arrays so that a walk touches contiguous memory.
  std::vector<std::map<uint8_t, uint32_t>> children(1);
  std::vector<std::vector<int32_t>> ends(1);
  for (size_t id = 0; id < pieces_.size(); ++id) {
    if (is_end_[id] || pieces_[id].empty()) continue;
    uint32_t node = 0;
    for (char c : pieces_[id]) {
      const auto b = static_cast<uint8_t>(c);
      auto it = children[node].find(b);
      if (it == children[node].end()) {
        const auto child = static_cast<uint32_t>(children.size());
        children[node].emplace(b, child);
        children.emplace_back();
        ends.emplace_back();
        node = child;
      } else {
        node = it->second;
      }
    }
    ends[node].push_back(static_cast<int32_t>(id));
  }
  first_edge_.reserve(children.size() + 1);
  first_token_.reserve(children.size() + 1);
  for (size_t n = 0; n < children.size(); ++n) {
    first_edge_.push_back(static_cast<uint32_t>(edges_.size()));
    for (const auto& [b, child] : children[n]) edges_.push_back({b, child});
    first_token_.push_back(static_cast<uint32_t>(token_ids_.size()));
    token_ids_.insert(token_ids_.end(), ends[n].begin(), ends[n].end());
  }
  first_edge_.push_back(static_cast<uint32_t>(edges_.size()));
  first_token_.push_back(static_cast<uint32_t>(token_ids_.size()));
}

token_vocabulary token_vocabulary::from_tokenizer(const tokenizer& tok) {
  std::vector<std::string> pieces(static_cast<size_t>(tok.n_vocab()));
  std::vector<int32_t> end_ids;
  for (int32_t id = 0; id < tok.n_vocab(); ++id) {
    if (tok.is_end_of_generation(id)) {
      end_ids.push_back(id);
      continue;
    }
    const token_kind kind = tok.kind_of(id);
    if (kind == token_kind::normal || kind == token_kind::user_defined) {
      pieces[static_cast<size_t>(id)] = std::string(tok.token_piece(id, false));
    }
  }
  return token_vocabulary(std::move(pieces), std::move(end_ids));
}

}  // namespace troupe
