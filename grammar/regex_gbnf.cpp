// The translator parses the pattern into a small tree (character sets over code points,
// sequences, alternations, repetitions), rewrites unbounded repetitions of nullable bodies
// (GBNF's `x*` is right recursion, which a body that reads nothing would make left-recursive),
// and prints GBNF.
#include "grammar/regex_gbnf.hpp"

#include <fmt/format.h>

#include <optional>
#include <vector>

#include "grammar/json_schema_gbnf.hpp"
#include "grammar/utf8_ranges.hpp"

namespace troupe {
namespace {

using grammar_detail::code_point_range;
using grammar_detail::complement_ranges;
using grammar_detail::max_code_point;
using grammar_detail::normalize_ranges;
using ranges = std::vector<code_point_range>;

constexpr size_t max_pattern_bytes = 16 * 1024;
constexpr size_t max_depth = 64;
constexpr size_t max_count = 1000;
constexpr size_t max_output_bytes = 512 * 1024;

struct node {
  enum class kind { chars, seq, alt, repeat } type = kind::seq;
  ranges set;               // chars
  std::vector<node> kids;   // seq, alt: the parts; repeat: the body
  size_t min = 0, max = 0;  // repeat
  bool unbounded = false;   // repeat
  size_t weight = 1;        // nodes in this subtree (bounds the nullable rewrite)
};

node& reweigh(node& n) {
  n.weight = 1;
  for (const auto& k : n.kids) n.weight += k.weight;
  return n;
}

struct regex_failure {
  std::string message;
};

// The nodes the nullable rewrite may copy in all (it can square a long run of optional parts).
constexpr size_t max_rewrite_weight = 1 << 18;

bool nullable(const node& n) {
  switch (n.type) {
    case node::kind::chars: return false;
    case node::kind::seq:
      for (const auto& k : n.kids) {
        if (!nullable(k)) return false;
      }
      return true;
    case node::kind::alt:
      for (const auto& k : n.kids) {
        if (nullable(k)) return true;
      }
      return false;
    case node::kind::repeat: return n.min == 0 || nullable(n.kids[0]);
  }
  return false;
}

node make_alt(std::vector<node> kids) {
  if (kids.size() == 1) return std::move(kids[0]);
  node n;
  n.type = node::kind::alt;
  n.kids = std::move(kids);
  return reweigh(n);
}

node make_repeat(node body, size_t min, size_t max, bool unbounded) {
  node n;
  n.type = node::kind::repeat;
  n.kids.push_back(std::move(body));
  n.min = min;
  n.max = max;
  n.unbounded = unbounded;
  return reweigh(n);
}

// The non-empty matches of n; nullopt when n matches only the empty string.
std::optional<node> non_empty(const node& n, size_t& budget) {
  switch (n.type) {
    case node::kind::chars:
      if (budget == 0) throw regex_failure{"regex: the pattern is too large once optional parts are expanded"};
      --budget;
      return n;
    case node::kind::alt: {
      std::vector<node> kids;
      for (const auto& k : n.kids) {
        if (auto ne = non_empty(k, budget)) kids.push_back(std::move(*ne));
      }
      if (kids.empty()) return std::nullopt;
      return make_alt(std::move(kids));
    }
    case node::kind::seq: {
      // ne(a b c) = ne(a) b c | [a nullable] ne(b c)
      std::vector<node> kids;
      for (size_t i = 0; i < n.kids.size(); ++i) {
        if (auto ne = non_empty(n.kids[i], budget)) {
          node branch;
          branch.kids.push_back(std::move(*ne));
          for (size_t j = i + 1; j < n.kids.size(); ++j) {
            if (n.kids[j].weight > budget) {
              throw regex_failure{"regex: the pattern is too large once optional parts are expanded"};
            }
            budget -= n.kids[j].weight;
            branch.kids.push_back(n.kids[j]);
          }
          kids.push_back(std::move(reweigh(branch)));
        }
        if (!nullable(n.kids[i])) break;
      }
      if (kids.empty()) return std::nullopt;
      return make_alt(std::move(kids));
    }
    case node::kind::repeat: {
      if (!n.unbounded && n.max == 0) return std::nullopt;
      auto body = non_empty(n.kids[0], budget);
      if (!body) return std::nullopt;
      // A nullable body can stand for "nothing" any number of times, so x{m,n} = ne(x){0,n};
      // the non-empty part then needs at least one.
      const size_t min = nullable(n.kids[0]) ? 1 : std::max<size_t>(n.min, 1);
      return make_repeat(std::move(*body), min, n.max, n.unbounded);
    }
  }
  return std::nullopt;
}

class regex_parser {
 public:
  explicit regex_parser(std::string_view p) : p_(p) {}

  node parse() {
    if (!p_.empty() && p_[0] == '^') pos_ = 1;
    if (p_.size() > pos_ && p_.back() == '$' && !escaped_at(p_.size() - 1)) end_ = p_.size() - 1;
    node n = parse_alternation(0);
    if (pos_ < end_) fail(pos_, p_[pos_] == ')' ? "unbalanced ')'" : "unexpected character");
    return n;
  }

 private:
  [[noreturn]] void fail(size_t at, const std::string& what) {
    throw regex_failure{fmt::format("regex: at offset {}: {}", at, what)};
  }

  // Whether the byte at i is the second of an escape pair (an odd run of backslashes before it).
  bool escaped_at(size_t i) const {
    size_t n = 0;
    while (i > n && p_[i - n - 1] == '\\') ++n;
    return n % 2 == 1;
  }

  bool at_end() const { return pos_ >= end_; }
  char peek() const { return at_end() ? '\0' : p_[pos_]; }

  uint32_t read_utf8() {
    const auto b0 = static_cast<unsigned char>(p_[pos_]);
    size_t len = b0 < 0x80 ? 1 : (b0 >> 5) == 6 ? 2 : (b0 >> 4) == 14 ? 3 : (b0 >> 3) == 30 ? 4 : 0;
    if (len == 0 || pos_ + len > end_) fail(pos_, "invalid UTF-8");
    uint32_t cp = len == 1 ? b0 : b0 & (0x7F >> len);
    for (size_t i = 1; i < len; ++i) {
      const auto b = static_cast<unsigned char>(p_[pos_ + i]);
      if ((b & 0xC0) != 0x80) fail(pos_, "invalid UTF-8");
      cp = (cp << 6) | (b & 0x3F);
    }
    static constexpr uint32_t smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (cp < smallest[len] || cp > max_code_point || (cp >= 0xD800 && cp <= 0xDFFF)) {
      fail(pos_, "invalid UTF-8");
    }
    pos_ += len;
    return cp;
  }

  static node chars(ranges r) {
    node n;
    n.type = node::kind::chars;
    n.set = normalize_ranges(std::move(r));
    return n;
  }

  node parse_alternation(size_t depth) {
    if (depth > max_depth) fail(pos_, "groups nested deeper than 64");
    std::vector<node> branches;
    branches.push_back(parse_sequence(depth));
    while (peek() == '|') {
      ++pos_;
      branches.push_back(parse_sequence(depth));
    }
    return make_alt(std::move(branches));
  }

  node parse_sequence(size_t depth) {
    node seq;
    while (!at_end() && peek() != '|' && peek() != ')') {
      node atom = parse_atom(depth);
      if (auto q = parse_quantifier()) {
        atom = make_repeat(std::move(atom), q->min, q->max, q->unbounded);
      }
      if (is_quantifier_start()) fail(pos_, "a quantifier follows another (nothing to repeat)");
      seq.kids.push_back(std::move(atom));
    }
    if (seq.kids.size() == 1) return std::move(seq.kids[0]);
    return reweigh(seq);
  }

  struct quantifier {
    size_t min = 0, max = 0;
    bool unbounded = false;
  };

  // {m}, {m,}, {m,n} at pos_; nullopt (and pos_ unchanged) when the brace is a literal.
  std::optional<quantifier> read_braces() {
    size_t i = pos_ + 1;
    auto number = [&](size_t& out) {
      const size_t from = i;
      out = 0;
      while (i < end_ && p_[i] >= '0' && p_[i] <= '9') {
        out = out * 10 + static_cast<size_t>(p_[i] - '0');
        if (out > max_count) fail(pos_, "repetition counts above 1000 are not supported");
        ++i;
      }
      return i > from;
    };
    quantifier q;
    if (i < end_ && p_[i] == ',') fail(pos_, "'{,n}' is read differently by regex engines; write {0,n}");
    if (!number(q.min)) return std::nullopt;
    q.max = q.min;
    if (i < end_ && p_[i] == ',') {
      ++i;
      if (!number(q.max)) q.unbounded = true;
    }
    if (i >= end_ || p_[i] != '}') return std::nullopt;
    if (!q.unbounded && q.max < q.min) fail(pos_, "repetition {m,n} with n < m");
    pos_ = i + 1;
    return q;
  }

  bool is_quantifier_start() {
    const char c = peek();
    if (c == '*' || c == '+' || c == '?') return true;
    if (c != '{') return false;
    const size_t save = pos_;
    const bool q = read_braces().has_value();
    pos_ = save;
    return q;
  }

  std::optional<quantifier> parse_quantifier() {
    quantifier q;
    const char c = peek();
    if (c == '*') {
      q.unbounded = true;
      ++pos_;
    } else if (c == '+') {
      q.min = 1;
      q.unbounded = true;
      ++pos_;
    } else if (c == '?') {
      q.max = 1;
      ++pos_;
    } else if (c == '{') {
      auto b = read_braces();
      if (!b) return std::nullopt;
      q = *b;
    } else {
      return std::nullopt;
    }
    if (peek() == '?') {
      ++pos_;  // lazy: the same whole matches
    } else if (peek() == '+') {
      fail(pos_, "possessive quantifiers are not supported");
    }
    return q;
  }

  node parse_atom(size_t depth) {
    const size_t start = pos_;
    const char c = peek();
    switch (c) {
      case '*': case '+': case '?': fail(start, "nothing to repeat");
      case '{':
        if (is_quantifier_start()) fail(start, "nothing to repeat");
        ++pos_;
        return chars({{'{', '{'}});
      case '^': fail(start, "'^' is supported only as the first character");
      case '$': fail(start, "'$' is supported only as the last character");
      case '.':
        ++pos_;
        return chars(complement_ranges({{'\n', '\n'}}));
      case '[': return parse_class();
      case '(': return parse_group(depth);
      case '\\': {
        ranges r;
        if (!read_escape(false, r)) fail(start, "unsupported escape");
        return chars(std::move(r));
      }
      default: {
        const uint32_t cp = read_utf8();
        return chars({{cp, cp}});
      }
    }
  }

  node parse_group(size_t depth) {
    const size_t start = pos_;
    ++pos_;
    if (peek() == '?') {
      const std::string_view rest = p_.substr(pos_ + 1, end_ - std::min(end_, pos_ + 1));
      if (rest.rfind(":", 0) == 0) {
        pos_ += 2;
      } else if (rest.rfind("P<", 0) == 0 || (rest.rfind("<", 0) == 0 && rest.size() > 1 &&
                                              rest[1] != '=' && rest[1] != '!')) {
        const size_t close = p_.find('>', pos_);
        if (close == std::string_view::npos || close >= end_) fail(start, "unterminated group name");
        pos_ = close + 1;
      } else if (rest.rfind("=", 0) == 0 || rest.rfind("!", 0) == 0 || rest.rfind("<=", 0) == 0 ||
                 rest.rfind("<!", 0) == 0) {
        fail(start, "lookaround is not supported");
      } else if (rest.rfind(">", 0) == 0) {
        fail(start, "atomic groups are not supported");
      } else if (rest.rfind("P=", 0) == 0) {
        fail(start, "backreferences are not supported");
      } else {
        fail(start, "inline flags and other (?...) groups are not supported");
      }
    }
    node inner = parse_alternation(depth + 1);
    if (peek() != ')') fail(start, "unclosed '('");
    ++pos_;
    return inner;
  }

  // One escape at pos_ (a backslash) into r; false for an unknown letter escape.
  bool read_escape(bool in_class, ranges& r) {
    const size_t start = pos_;
    ++pos_;
    if (at_end()) fail(start, "a pattern cannot end with '\\'");
    const char c = p_[pos_++];
    auto one = [&](uint32_t cp) {
      r.push_back({cp, cp});
      return true;
    };
    const ranges digit = {{'0', '9'}};
    const ranges word = {{'0', '9'}, {'A', 'Z'}, {'_', '_'}, {'a', 'z'}};
    const ranges space = {{'\t', '\r'}, {' ', ' '}};
    auto add = [&](const ranges& set) {
      r.insert(r.end(), set.begin(), set.end());
      return true;
    };
    switch (c) {
      case 'd': return add(digit);
      case 'D': return add(complement_ranges(digit));
      case 'w': return add(word);
      case 'W': return add(complement_ranges(word));
      case 's': return add(space);
      case 'S': return add(complement_ranges(space));
      case 'n': return one('\n');
      case 'r': return one('\r');
      case 't': return one('\t');
      case 'f': return one('\f');
      case 'a': return one(0x07);
      case 'e': return one(0x1B);
      case 'b':
        if (in_class) return one(0x08);
        fail(start, "word boundaries (\\b) are not supported");
      case 'x': return one(read_hex_escape(start, true));
      case 'u': return one(read_hex_escape(start, false));
      case 'k': fail(start, "backreferences are not supported");
      default: break;
    }
    if (c >= '1' && c <= '9') fail(start, "backreferences are not supported");
    if (c == '0') fail(start, "octal escapes are not supported (use \\xHH)");
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) {
      fail(start, fmt::format("the escape '\\{}' is not supported", c));
    }
    --pos_;
    return one(read_utf8());  // escaped punctuation or any other character: itself
  }

  uint32_t read_hex_escape(size_t start, bool is_x) {
    auto hex = [&](size_t count, bool braced) {
      uint32_t v = 0;
      size_t n = 0;
      while (!at_end() && (braced || n < count)) {
        const char h = p_[pos_];
        int d = h >= '0' && h <= '9' ? h - '0' : h >= 'a' && h <= 'f' ? h - 'a' + 10
              : h >= 'A' && h <= 'F' ? h - 'A' + 10 : -1;
        if (d < 0) break;
        v = v * 16 + static_cast<uint32_t>(d);
        if (v > max_code_point) fail(start, "code point beyond U+10FFFF");
        ++pos_;
        ++n;
      }
      if (n == 0 || (!braced && n != count)) fail(start, "malformed hexadecimal escape");
      return v;
    };
    uint32_t v;
    if (is_x && peek() == '{') {
      ++pos_;
      v = hex(8, true);
      if (peek() != '}') fail(start, "unterminated \\x{...}");
      ++pos_;
    } else {
      v = hex(is_x ? 2 : 4, false);
    }
    if (v >= 0xD800 && v <= 0xDFFF) fail(start, "surrogate code points are not characters");
    return v;
  }

  node parse_class() {
    const size_t start = pos_;
    ++pos_;
    const bool negated = peek() == '^';
    if (negated) ++pos_;
    if (peek() == ']') fail(start, "an empty class is read differently by regex engines; write \\]");
    ranges r;
    while (peek() != ']') {
      if (at_end()) fail(start, "unclosed '['");
      if (peek() == '[' && pos_ + 1 < end_ && (p_[pos_ + 1] == ':' || p_[pos_ + 1] == '=' ||
                                              p_[pos_ + 1] == '.')) {
        fail(pos_, "POSIX classes ([:alpha:]) are not supported");
      }
      // One member: a character (maybe the start of a range) or a shorthand set.
      auto member = [&](ranges& out) -> bool {  // true: a single character
        if (peek() == '\\') {
          const size_t at = pos_;
          ranges m;
          if (!read_escape(true, m)) fail(at, "unsupported escape");
          const bool single = m.size() == 1 && m[0].first == m[0].last;
          out.insert(out.end(), m.begin(), m.end());
          return single;
        }
        const uint32_t cp = read_utf8();
        out.push_back({cp, cp});
        return true;
      };
      const size_t member_start = pos_;
      ranges m;
      const bool single = member(m);
      if (peek() == '-' && pos_ + 1 < end_ && p_[pos_ + 1] != ']') {
        if (!single) fail(member_start, "a range cannot start at a class such as \\d");
        ++pos_;
        const size_t hi_start = pos_;
        ranges hi;
        if (!member(hi)) fail(hi_start, "a range cannot end at a class such as \\d");
        if (hi[0].first < m[0].first) fail(member_start, "character range is reversed");
        r.push_back({m[0].first, hi[0].first});
      } else {
        r.insert(r.end(), m.begin(), m.end());
      }
    }
    ++pos_;
    r = normalize_ranges(std::move(r));
    return chars(negated ? complement_ranges(r) : r);
  }

  std::string_view p_;
  size_t pos_ = 0;
  size_t end_ = p_.size();
};

// ---- printing ----

class gbnf_printer {
 public:
  explicit gbnf_printer(bool json_string) : json_(json_string) {}

  std::string print(const node& n) {
    std::string out;
    emit(n, out);
    return out;
  }

 private:
  void grow(std::string& out, std::string_view s) {
    total_ += s.size();
    if (total_ > max_output_bytes) {
      throw regex_failure{"regex: the pattern's grammar is larger than 512 KiB"};
    }
    out += s;
  }

  static std::string utf8(uint32_t cp) {
    std::vector<uint8_t> bytes;
    grammar_detail::append_utf8(cp, bytes);
    return std::string(bytes.begin(), bytes.end());
  }

  static std::string class_of(const ranges& r) {
    std::string out = "[";
    for (const auto& cr : r) {
      out += fmt::format("\\U{:08X}", cr.first);
      if (cr.last != cr.first) out += fmt::format("-\\U{:08X}", cr.last);
    }
    return out + "]";
  }

  // The text a JSON string holds for cp when cp must be escaped, else empty.
  static std::string json_escape(uint32_t cp) {
    switch (cp) {
      case '"': return "\\\"";
      case '\\': return "\\\\";
      case '\n': return "\\n";
      case '\r': return "\\r";
      case '\t': return "\\t";
      case '\b': return "\\b";
      case '\f': return "\\f";
      default: return cp < 0x20 ? fmt::format("\\u{:04x}", cp) : std::string();
    }
  }

  std::string chars_text(const ranges& set) {
    if (!json_) {
      if (set.size() == 1 && set[0].first == set[0].last) return gbnf_literal(utf8(set[0].first));
      return class_of(set);
    }
    // Split off what a JSON string escapes; the rest appears as itself.
    ranges plain;
    std::vector<std::string> alts;
    for (const auto& cr : set) {
      uint32_t from = cr.first;
      for (uint32_t cp = cr.first; cp <= cr.last && cp <= '\\'; ++cp) {
        if (json_escape(cp).empty()) continue;
        if (cp > from) plain.push_back({from, cp - 1});
        alts.push_back(gbnf_literal(json_escape(cp)));
        from = cp + 1;
      }
      if (from <= cr.last) plain.push_back({from, cr.last});
    }
    if (plain.size() == 1 && plain[0].first == plain[0].last) {
      alts.insert(alts.begin(), gbnf_literal(utf8(plain[0].first)));
    } else if (!plain.empty() || alts.empty()) {
      alts.insert(alts.begin(), class_of(plain));
    }
    if (alts.size() == 1) return alts[0];
    std::string out = "(";
    for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : " ") + alts[i];
    return out + " )";
  }

  void emit(const node& n, std::string& out) {
    switch (n.type) {
      case node::kind::chars: grow(out, chars_text(n.set)); return;
      case node::kind::seq:
        if (n.kids.empty()) {
          grow(out, "\"\"");
          return;
        }
        for (size_t i = 0; i < n.kids.size(); ++i) {
          if (i) grow(out, " ");
          emit(n.kids[i], out);
        }
        return;
      case node::kind::alt:
        grow(out, "(");
        for (size_t i = 0; i < n.kids.size(); ++i) {
          grow(out, i ? " | " : " ");
          emit(n.kids[i], out);
        }
        grow(out, " )");
        return;
      case node::kind::repeat: {
        const node* body = &n.kids[0];
        std::optional<node> rewritten;
        size_t min = n.min;
        if (n.unbounded && nullable(*body)) {
          // x* with a nullable x: the same strings as ne(x)*, which GBNF can recurse on.
          rewritten = non_empty(*body, rewrite_budget_);
          if (!rewritten) {
            grow(out, "\"\"");
            return;
          }
          body = &*rewritten;
          min = 0;
        }
        grow(out, "(");
        emit(*body, out);
        grow(out, ")");
        if (n.unbounded) {
          grow(out, min == 0 ? "*" : min == 1 ? "+" : fmt::format("{{{},}}", min));
        } else if (min == 0 && n.max == 1) {
          grow(out, "?");
        } else if (min == n.max) {
          grow(out, fmt::format("{{{}}}", min));
        } else {
          grow(out, fmt::format("{{{},{}}}", min, n.max));
        }
        return;
      }
    }
  }

  bool json_;
  size_t total_ = 0;
  size_t rewrite_budget_ = max_rewrite_weight;
};

}  // namespace

result<std::string> regex_gbnf_expression(std::string_view pattern, bool json_string) {
  if (pattern.size() > max_pattern_bytes) return error{"regex: the pattern is longer than 16 KiB"};
  try {
    const node tree = regex_parser(pattern).parse();
    return gbnf_printer(json_string).print(tree);
  } catch (const regex_failure& f) {
    return error{f.message};
  }
}

result<std::string> regex_gbnf(std::string_view pattern) {
  auto expr = regex_gbnf_expression(pattern);
  if (!expr) return expr;
  return "root ::= " + *expr + "\n";
}

}  // namespace troupe
