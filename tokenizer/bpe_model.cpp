#include "tokenizer/bpe_model.hpp"

#include <queue>

namespace troupe {
namespace {

// Length of the UTF-8 character starting with `lead`, judged from its top bits only (the mapped
// text is always well formed).
size_t char_length(unsigned char lead) {
  static constexpr uint8_t lengths[16] = {1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 3, 4};
  return lengths[lead >> 4];
}

struct symbol {
  uint32_t start = 0;
  uint32_t length = 0;  // 0 once merged into its left neighbour
  int32_t prev = -1;
  int32_t next = -1;
};

struct candidate {
  int32_t rank;
  int32_t left;
  int32_t right;
  uint32_t left_length;   // the lengths when queued: if either changed, the entry is stale
  uint32_t right_length;
};

struct lower_priority {
  bool operator()(const candidate& a, const candidate& b) const {
    return a.rank > b.rank || (a.rank == b.rank && a.left > b.left);
  }
};

}  // namespace

size_t bpe_model::pair_hash::operator()(const pair_key& k) const {
  const size_t h1 = std::hash<std::string_view>{}(k.left);
  const size_t h2 = std::hash<std::string_view>{}(k.right);
  return h1 ^ (h2 + 0x9e3779b97f4a7c15ULL + (h1 << 6) + (h1 >> 2));
}

bpe_model::bpe_model(const std::vector<std::string>& tokens, const std::vector<std::string>& merges,
                     bool ignore_merges)
    : ignore_merges_(ignore_merges) {
  token_ids_.reserve(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) token_ids_[tokens[i]] = static_cast<int32_t>(i);
  ranks_.reserve(merges.size());
  for (size_t r = 0; r < merges.size(); ++r) {
    const std::string_view m = merges[r];
    const size_t space = m.find(' ', 1);
    if (space == std::string_view::npos) continue;
    ranks_.emplace(pair_key{m.substr(0, space), m.substr(space + 1)}, static_cast<int32_t>(r));
  }
}

int32_t bpe_model::find_token(std::string_view text) const {
  auto it = token_ids_.find(text);
  return it == token_ids_.end() ? -1 : it->second;
}

int32_t bpe_model::find_rank(std::string_view left, std::string_view right) const {
  auto it = ranks_.find(pair_key{left, right});
  return it == ranks_.end() ? -1 : it->second;
}

void bpe_model::encode_piece(std::string_view piece, std::vector<int32_t>& out) const {
  if (piece.empty()) return;
  if (ignore_merges_) {
    if (const int32_t id = find_token(piece); id >= 0) {
      out.push_back(id);
      return;
    }
  }

  std::vector<symbol> symbols;
  symbols.reserve(piece.size());
  for (size_t pos = 0; pos < piece.size();) {
    const size_t len = std::min(piece.size() - pos, char_length(static_cast<unsigned char>(piece[pos])));
    const auto index = static_cast<int32_t>(symbols.size());
    symbols.push_back({static_cast<uint32_t>(pos), static_cast<uint32_t>(len), index - 1,
                       pos + len == piece.size() ? -1 : index + 1});
    pos += len;
  }
  auto text_of = [&](const symbol& s) { return piece.substr(s.start, s.length); };

  std::priority_queue<candidate, std::vector<candidate>, lower_priority> queue;
  auto consider = [&](int32_t left, int32_t right) {
    if (left < 0 || right < 0) return;
    const symbol& l = symbols[left];
    const symbol& r = symbols[right];
    const int32_t rank = find_rank(text_of(l), text_of(r));
    if (rank >= 0) queue.push({rank, left, right, l.length, r.length});
  };
  for (int32_t i = 1; i < static_cast<int32_t>(symbols.size()); ++i) consider(i - 1, i);

  while (!queue.empty()) {
    const candidate c = queue.top();
    queue.pop();
    symbol& l = symbols[c.left];
    symbol& r = symbols[c.right];
    // A symbol only grows by absorbing its right neighbour, so equal lengths mean the pair
    // still spells the text it was queued with.
    if (l.length == 0 || r.length == 0 || l.length != c.left_length || r.length != c.right_length)
      continue;
    l.length += r.length;
    r.length = 0;
    l.next = r.next;
    if (r.next >= 0) symbols[r.next].prev = c.left;
    consider(l.prev, c.left);
    consider(c.left, l.next);
  }

  for (int32_t i = 0; i >= 0; i = symbols[i].next) {
    const std::string_view text = text_of(symbols[i]);
    if (const int32_t id = find_token(text); id >= 0) {
      out.push_back(id);
      continue;
    }
    for (char byte : text)
      if (const int32_t id = find_token(std::string_view(&byte, 1)); id >= 0) out.push_back(id);
  }
}

}  // namespace troupe
