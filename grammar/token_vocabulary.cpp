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
  // Number the nodes in depth-first preorder, children in byte order.
  struct pending {
    uint32_t old_id;
    uint16_t depth;
    uint8_t byte;
  };
  nodes_.reserve(children.size());
  first_token_.reserve(children.size() + 1);
  std::vector<pending> todo{{0, 0, 0}};
  while (!todo.empty()) {
    const pending p = todo.back();
    todo.pop_back();
    nodes_.push_back({0, p.depth, p.byte});
    max_depth_ = std::max<size_t>(max_depth_, p.depth);
    first_token_.push_back(static_cast<uint32_t>(token_ids_.size()));
    token_ids_.insert(token_ids_.end(), ends[p.old_id].begin(), ends[p.old_id].end());
    TROUPE_ASSERT(p.depth < UINT16_MAX);
    const auto& kids = children[p.old_id];
    for (auto it = kids.rbegin(); it != kids.rend(); ++it)
      todo.push_back({it->second, static_cast<uint16_t>(p.depth + 1), it->first});
  }
  first_token_.push_back(static_cast<uint32_t>(token_ids_.size()));
  // A subtree ends at the next node no deeper than its root.
  std::vector<uint32_t> open;
  for (uint32_t i = 0; i < nodes_.size(); ++i) {
    while (!open.empty() && nodes_[open.back()].depth >= nodes_[i].depth) {
      nodes_[open.back()].subtree_end = i;
      open.pop_back();
    }
    open.push_back(i);
  }
  for (uint32_t i : open) nodes_[i].subtree_end = static_cast<uint32_t>(nodes_.size());
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
