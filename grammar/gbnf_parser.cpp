// GBNF text -> grammar_rules. A hand-written recursive-descent parser: rules are collected as
// lists of alternatives (sequences of elements without the closing `end`), then flattened.
#include <algorithm>
#include <map>
#include <optional>

#include "grammar/grammar_rules.hpp"
#include "grammar/utf8_ranges.hpp"

namespace troupe {
namespace {

using namespace grammar_detail;
using sequence = std::vector<grammar_element>;

struct parse_failure {
  std::string message;
};

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
         c == '_';
}

class gbnf_parser {
 public:
  gbnf_parser(std::string_view text, const grammar_limits& limits) : text_(text), limits_(limits) {}

  result<grammar_rules> run() {
    if (text_.size() > limits_.max_text_bytes) {
      return error{"grammar: the text has " + std::to_string(text_.size()) +
                   " bytes, more than the limit of " + std::to_string(limits_.max_text_bytes)};
    }
    if (!parse_all()) return error{"grammar: " + failure_};
    return finish();
  }

 private:
  // ---- low-level reading ----
  bool at_end() const { return pos_ >= text_.size(); }
  char peek(size_t ahead = 0) const {
    return pos_ + ahead < text_.size() ? text_[pos_ + ahead] : '\0';
  }

  std::string location(size_t offset) const {
    size_t line = 1, col = 1;
    for (size_t i = 0; i < offset && i < text_.size(); ++i) {
      if (text_[i] == '\n') {
        ++line;
        col = 1;
      } else {
        ++col;
      }
    }
    return std::to_string(line) + ":" + std::to_string(col);
  }

  bool fail(const std::string& what) { return fail_at(pos_, what); }
  bool fail_at(size_t offset, const std::string& what) {
    if (failure_.empty()) failure_ = location(offset) + ": " + what;
    return false;
  }

  // Skips blanks and comments; newlines only when `newlines`.
  void skip_space(bool newlines) {
    while (!at_end()) {
      const char c = peek();
      if (c == ' ' || c == '\t' || (newlines && (c == '\n' || c == '\r'))) {
        ++pos_;
      } else if (c == '#') {
        while (!at_end() && peek() != '\n') ++pos_;
      } else {
        break;
      }
    }
  }

  // One code point of the source text (UTF-8), or nullopt after failing.
  std::optional<uint32_t> read_source_char() {
    const auto b0 = static_cast<uint8_t>(peek());
    int n = b0 < 0x80 ? 1 : (b0 >> 5) == 0x6 ? 2 : (b0 >> 4) == 0xE ? 3 : (b0 >> 3) == 0x1E ? 4 : 0;
    if (n == 0 || pos_ + n > text_.size()) {
      fail("invalid UTF-8 in the grammar text");
      return std::nullopt;
    }
    uint32_t cp = n == 1 ? b0 : b0 & (0x7F >> n);
    for (int i = 1; i < n; ++i) {
      const auto b = static_cast<uint8_t>(text_[pos_ + i]);
      if ((b & 0xC0) != 0x80) {
        fail("invalid UTF-8 in the grammar text");
        return std::nullopt;
      }
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t min_for_length[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < min_for_length[n] || cp > max_code_point || (cp >= 0xD800 && cp <= 0xDFFF)) {
      fail("invalid UTF-8 in the grammar text");
      return std::nullopt;
    }
    pos_ += n;
    return cp;
  }

  std::optional<uint32_t> read_hex(int digits) {
    uint32_t v = 0;
    for (int i = 0; i < digits; ++i) {
      const char c = peek();
      int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10
              : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) {
        fail("expected " + std::to_string(digits) + " hex digits in an escape");
        return std::nullopt;
      }
      v = v * 16 + static_cast<uint32_t>(d);
      ++pos_;
    }
    if (v > max_code_point || (v >= 0xD800 && v <= 0xDFFF)) {
      fail("escape names no Unicode scalar value");
      return std::nullopt;
    }
    return v;
  }

  // A character of a literal or class, escapes decoded.
  std::optional<uint32_t> read_char() {
    if (at_end()) {
      fail("unexpected end of the grammar text");
      return std::nullopt;
    }
    if (peek() != '\\') return read_source_char();
    const size_t start = pos_++;
    const char c = peek();
    ++pos_;
    switch (c) {
      case 'n': return '\n';
      case 'r': return '\r';
      case 't': return '\t';
      case '\\': case '"': case '\'': case '[': case ']': case '-': case '^': case '/':
        return static_cast<uint32_t>(c);
      case 'x': return read_hex(2);
      case 'u': return read_hex(4);
      case 'U': return read_hex(8);
      default:
        pos_ = start;
        fail(std::string("unknown escape '\\") + c + "'");
        return std::nullopt;
    }
  }

  // ---- rules ----
  uint32_t rule_id(const std::string& name, size_t offset) {
    auto [it, inserted] = ids_.try_emplace(name, static_cast<uint32_t>(rules_.size()));
    if (inserted) {
      rules_.emplace_back();
      names_.push_back(name);
      defined_.push_back(false);
      first_use_.push_back(offset);
    }
    return it->second;
  }

  uint32_t new_rule(const std::string& base) {
    const std::string name = base + "/" + std::to_string(++generated_);
    const uint32_t id = rule_id(name, pos_);
    defined_[id] = true;
    return id;
  }

  bool count_elements(size_t n) {
    num_elements_ += n;
    if (num_elements_ > limits_.max_elements) {
      return fail("the grammar expands to more than " + std::to_string(limits_.max_elements) +
                  " elements (check large repetition counts)");
    }
    return true;
  }

  bool add_alternative(uint32_t rule, sequence seq) {
    if (!count_elements(seq.size() + 1)) return false;
    rules_[rule].push_back(std::move(seq));
    return true;
  }

  uint32_t byte_set_id(const std::bitset<256>& set) {
    const std::string key = set.to_string();
    auto [it, inserted] = byte_set_ids_.try_emplace(key, static_cast<uint32_t>(byte_sets_.size()));
    if (inserted) byte_sets_.push_back(set);
    return it->second;
  }

  grammar_element single_byte(uint8_t b) {
    std::bitset<256> s;
    s.set(b);
    return {grammar_element_kind::bytes, byte_set_id(s)};
  }

  // A set of code points as one element: a byte set when every member is one byte long,
  // otherwise a (shared) rule whose alternatives are the UTF-8 byte-range sequences.
  std::optional<grammar_element> class_element(const std::vector<code_point_range>& ranges) {
    const auto seqs = utf8_sequences(ranges);
    std::bitset<256> single;
    std::vector<sequence> multi;
    for (const auto& s : seqs) {
      if (s.size() == 1) {
        for (unsigned b = s[0].first; b <= s[0].last; ++b) single.set(b);
        continue;
      }
      sequence alt;
      for (const auto& r : s) {
        std::bitset<256> set;
        for (unsigned b = r.first; b <= r.last; ++b) set.set(b);
        alt.push_back({grammar_element_kind::bytes, byte_set_id(set)});
      }
      multi.push_back(std::move(alt));
    }
    if (multi.empty()) return grammar_element{grammar_element_kind::bytes, byte_set_id(single)};
    std::string key = single.to_string();
    for (const auto& alt : multi) {
      key += '|';
      for (const auto& e : alt) key += std::to_string(e.value) + ",";
    }
    if (auto it = class_rules_.find(key); it != class_rules_.end()) {
      return grammar_element{grammar_element_kind::rule, it->second};
    }
    const uint32_t id = new_rule("char");
    if (single.any() && !add_alternative(id, {{grammar_element_kind::bytes, byte_set_id(single)}})) {
      return std::nullopt;
    }
    for (auto& alt : multi) {
      if (!add_alternative(id, std::move(alt))) return std::nullopt;
    }
    class_rules_.emplace(key, id);
    return grammar_element{grammar_element_kind::rule, id};
  }

  bool parse_all() {
    skip_space(true);
    while (!at_end()) {
      if (!parse_rule()) return false;
      skip_space(true);
    }
    return true;
  }

  bool parse_rule() {
    const size_t start = pos_;
    std::string name;
    while (is_name_char(peek())) name += text_[pos_++];
    if (name.empty()) return fail("expected a rule name");
    skip_space(false);
    if (text_.substr(pos_, 3) != "::=") return fail("expected '::=' after rule name '" + name + "'");
    pos_ += 3;
    skip_space(true);
    const uint32_t id = rule_id(name, start);
    if (defined_[id]) return fail_at(start, "rule '" + name + "' is defined twice");
    defined_[id] = true;
    current_rule_ = name;
    if (!parse_alternatives(id, false)) return false;
    skip_space(false);
    if (!at_end() && peek() != '\n' && peek() != '\r') {
      return fail("unexpected '" + std::string(1, peek()) + "' in rule '" + name + "'");
    }
    return true;
  }

  bool parse_alternatives(uint32_t rule, bool nested) {
    for (;;) {
      sequence seq;
      if (!parse_sequence(seq, nested)) return false;
      if (!add_alternative(rule, std::move(seq))) return false;
      // At the top level a new line ends the rule unless it starts with '|'.
      const size_t before = pos_;
      skip_space(true);
      if (peek() == '|') {
        ++pos_;
        skip_space(true);
        continue;
      }
      if (!nested) pos_ = before;
      return true;
    }
  }

  bool parse_sequence(sequence& seq, bool nested) {
    size_t last_item = seq.size();
    bool has_item = false;
    for (;;) {
      skip_space(nested);
      if (at_end()) return true;
      const char c = peek();
      const size_t item_start = seq.size();
      if (c == '"' || c == '\'') {
        const char quote = c;
        ++pos_;
        while (peek() != quote) {
          if (at_end() || peek() == '\n') return fail("unterminated string literal");
          const auto cp = read_char();
          if (!cp) return false;
          std::vector<uint8_t> bytes;
          append_utf8(*cp, bytes);
          for (uint8_t b : bytes) seq.push_back(single_byte(b));
        }
        ++pos_;
      } else if (c == '[') {
        ++pos_;
        const bool negated = peek() == '^';
        if (negated) ++pos_;
        std::vector<code_point_range> ranges;
        while (peek() != ']') {
          if (at_end() || peek() == '\n') return fail("unterminated character class");
          const auto first = read_char();
          if (!first) return false;
          uint32_t last = *first;
          if (peek() == '-' && peek(1) != ']' && pos_ + 1 < text_.size()) {
            ++pos_;
            const auto l = read_char();
            if (!l) return false;
            if (*l < *first) return fail("character range is reversed");
            last = *l;
          }
          ranges.push_back({*first, last});
        }
        ++pos_;
        const auto e = class_element(negated ? complement_ranges(ranges) : ranges);
        if (!e) return false;
        seq.push_back(*e);
      } else if (c == '.') {
        ++pos_;
        const auto e = class_element({{0, max_code_point}});
        if (!e) return false;
        seq.push_back(*e);
      } else if (is_name_char(c)) {
        const size_t start = pos_;
        std::string name;
        while (is_name_char(peek())) name += text_[pos_++];
        // A name followed by ::= starts the next rule: the sequence ended at a line break that
        // nested mode skipped. That only happens inside an unclosed group.
        const size_t after = pos_;
        skip_space(false);
        if (text_.substr(pos_, 3) == "::=") return fail_at(start, "expected ')' before a new rule");
        pos_ = after;
        seq.push_back({grammar_element_kind::rule, rule_id(name, start)});
      } else if (c == '(') {
        ++pos_;
        skip_space(true);
        const uint32_t group = new_rule(current_rule_);
        if (!parse_alternatives(group, true)) return false;
        if (peek() != ')') return fail("expected ')'");
        ++pos_;
        seq.push_back({grammar_element_kind::rule, group});
      } else if (c == '*' || c == '+' || c == '?' || c == '{') {
        if (!has_item) return fail(std::string("'") + c + "' has nothing to repeat");
        if (!apply_repetition(seq, last_item)) return false;
        continue;
      } else {
        return true;  // ')' '|' a line break, or an error the caller names
      }
      last_item = item_start;
      has_item = true;
    }
  }

  // Replaces seq[from..] by a rule that repeats it as the operator at pos_ says.
  bool apply_repetition(sequence& seq, size_t from) {
    size_t min = 0, max = 0;
    bool unbounded = false;
    const char op = peek();
    ++pos_;
    if (op == '*') {
      unbounded = true;
    } else if (op == '+') {
      min = 1;
      unbounded = true;
    } else if (op == '?') {
      max = 1;
    } else {
      auto read_count = [&](size_t& out) {
        skip_space(false);
        if (!(peek() >= '0' && peek() <= '9')) return fail("expected a number in {m,n}");
        out = 0;
        while (peek() >= '0' && peek() <= '9') {
          out = out * 10 + static_cast<size_t>(peek() - '0');
          if (out > limits_.max_elements) return fail("repetition count too large");
          ++pos_;
        }
        skip_space(false);
        return true;
      };
      if (!read_count(min)) return false;
      max = min;
      if (peek() == ',') {
        ++pos_;
        skip_space(false);
        if (peek() == '}') {
          unbounded = true;
        } else if (!read_count(max)) {
          return false;
        }
      }
      if (peek() != '}') return fail("expected '}'");
      ++pos_;
      if (!unbounded && max < min) return fail("repetition {m,n} with n < m");
    }

    // The repeated item as one element.
    grammar_element item;
    if (seq.size() - from == 1 && seq[from].kind == grammar_element_kind::rule) {
      item = seq[from];
    } else {
      const uint32_t r = new_rule(current_rule_);
      if (!add_alternative(r, sequence(seq.begin() + static_cast<long>(from), seq.end()))) {
        return false;
      }
      item = {grammar_element_kind::rule, r};
    }
    seq.resize(from);
    if (!count_elements(min)) return false;
    for (size_t i = 0; i < min; ++i) seq.push_back(item);
    if (unbounded) {
      // star ::= item star | ε  (right recursion: the automaton's stack stays flat)
      const uint32_t star = new_rule(current_rule_);
      const grammar_element star_ref{grammar_element_kind::rule, star};
      if (!add_alternative(star, {item, star_ref}) || !add_alternative(star, {})) return false;
      seq.push_back(star_ref);
    } else if (max > min) {
      // opt_k ::= item opt_{k-1} | ε, nested so that the size grows linearly with n - m.
      std::optional<grammar_element> inner;
      for (size_t k = 0; k < max - min; ++k) {
        const uint32_t opt = new_rule(current_rule_);
        sequence alt{item};
        if (inner) alt.push_back(*inner);
        if (!add_alternative(opt, std::move(alt)) || !add_alternative(opt, {})) return false;
        inner = grammar_element{grammar_element_kind::rule, opt};
      }
      seq.push_back(*inner);
    }
    return true;
  }

  // ---- checks and flattening ----
  result<grammar_rules> finish() {
    for (size_t r = 0; r < rules_.size(); ++r) {
      if (!defined_[r]) {
        return error{"grammar: " + location(first_use_[r]) + ": undefined rule '" + names_[r] +
                     "'"};
      }
    }
    auto root = ids_.find("root");
    if (root == ids_.end()) return error{"grammar: no rule named 'root'"};
    if (auto bad = find_left_recursion()) {
      return error{"grammar: rule '" + names_[*bad] +
                   "' is left-recursive (it can reach itself without reading a character)"};
    }
    grammar_rules out;
    out.root_rule = root->second;
    out.rule_names = names_;
    out.byte_sets = std::move(byte_sets_);
    out.rule_alternatives.resize(rules_.size());
    for (size_t r = 0; r < rules_.size(); ++r) {
      for (const auto& alt : rules_[r]) {
        out.rule_alternatives[r].push_back(static_cast<uint32_t>(out.elements.size()));
        out.elements.insert(out.elements.end(), alt.begin(), alt.end());
        out.elements.push_back({grammar_element_kind::end, 0});
      }
    }
    return out;
  }

  // A rule reachable from itself through rule references each preceded only by nullable
  // elements. Returns one such rule, if any.
  std::optional<uint32_t> find_left_recursion() const {
    const size_t n = rules_.size();
    std::vector<bool> nullable(n, false);
    for (bool changed = true; changed;) {
      changed = false;
      for (size_t r = 0; r < n; ++r) {
        if (nullable[r]) continue;
        for (const auto& alt : rules_[r]) {
          const bool all = std::all_of(alt.begin(), alt.end(), [&](const grammar_element& e) {
            return e.kind == grammar_element_kind::rule && nullable[e.value];
          });
          if (all) {
            nullable[r] = true;
            changed = true;
            break;
          }
        }
      }
    }
    std::vector<std::vector<uint32_t>> starts(n);
    for (size_t r = 0; r < n; ++r) {
      for (const auto& alt : rules_[r]) {
        for (const auto& e : alt) {
          if (e.kind != grammar_element_kind::rule) break;
          starts[r].push_back(e.value);
          if (!nullable[e.value]) break;
        }
      }
    }
    // Iterative DFS with colours: a back edge is a cycle.
    std::vector<uint8_t> colour(n, 0);  // 0 new, 1 on the path, 2 done
    for (size_t s = 0; s < n; ++s) {
      if (colour[s]) continue;
      std::vector<std::pair<uint32_t, size_t>> path{{static_cast<uint32_t>(s), 0}};
      colour[s] = 1;
      while (!path.empty()) {
        auto& [r, next] = path.back();
        if (next == starts[r].size()) {
          colour[r] = 2;
          path.pop_back();
          continue;
        }
        const uint32_t to = starts[r][next++];
        if (colour[to] == 1) return to;
        if (colour[to] == 0) {
          colour[to] = 1;
          path.push_back({to, 0});
        }
      }
    }
    return std::nullopt;
  }

  std::string_view text_;
  const grammar_limits& limits_;
  size_t pos_ = 0;
  std::string failure_;
  std::string current_rule_;
  size_t generated_ = 0;
  size_t num_elements_ = 0;

  std::vector<std::vector<sequence>> rules_;
  std::vector<std::string> names_;
  std::vector<bool> defined_;
  std::vector<size_t> first_use_;
  std::map<std::string, uint32_t> ids_;
  std::vector<std::bitset<256>> byte_sets_;
  std::map<std::string, uint32_t> byte_set_ids_;
  std::map<std::string, uint32_t> class_rules_;
};

}  // namespace

result<grammar_rules> parse_gbnf(std::string_view text, const grammar_limits& limits) {
  return gbnf_parser(text, limits).run();
}

}  // namespace troupe
