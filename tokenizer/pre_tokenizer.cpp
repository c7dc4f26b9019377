#include "tokenizer/pre_tokenizer.hpp"

#include <array>
#include <string>

#include "tokenizer/unicode_props.hpp"

namespace troupe {
namespace {

using offsets = std::vector<size_t>;  // consecutive piece lengths, in code points

// What the scanners need to know about the code point at a position. Positions outside the
// piece being scanned read as `present == false` with every property false, which is how
// llama.cpp's scanners see the edges.
struct props {
  bool present = false;
  bool letter = false;
  bool number = false;
  bool whitespace = false;
};

class piece_view {
 public:
  static constexpr uint32_t out_of_range = 0xFFFFFFFF;
  piece_view(std::span<const uint32_t> cpts, size_t begin, size_t end)
      : cpts_(cpts), begin_(begin), end_(end) {}
  uint32_t cpt(size_t pos) const { return pos >= begin_ && pos < end_ ? cpts_[pos] : out_of_range; }
  props at(size_t pos) const {
    if (pos < begin_ || pos >= end_) return {};
    const uint32_t c = cpts_[pos];
    const auto cat = unicode::category_of(c);
    return {true, cat == unicode::cat_letter, cat == unicode::cat_number, unicode::is_whitespace(c)};
  }
  size_t begin() const { return begin_; }
  size_t end() const { return end_; }

 private:
  std::span<const uint32_t> cpts_;
  size_t begin_, end_;
};

// Emits piece lengths as a scanner advances; empty pieces are never emitted.
class piece_sink {
 public:
  piece_sink(offsets& out, size_t start) : out_(out), prev_end_(start) {}
  void cut(size_t end) {
    if (end > prev_end_) out_.push_back(end - prev_end_);
    prev_end_ = end;
  }

 private:
  offsets& out_;
  size_t prev_end_;
};

bool is_contraction_tail(uint32_t a, uint32_t b, size_t& len) {
  if (a == 's' || a == 't' || a == 'm' || a == 'd') {
    len = 2;
    return true;
  }
  if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) {
    len = 3;
    return true;
  }
  return false;
}

uint32_t ascii_lower(uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; }

// The gpt2 regex, scanned by hand within one piece (llama.cpp does the same; this reproduces
// its behaviour, e.g. a lone trailing space is its own piece).
void split_gpt2(const piece_view& v, offsets& out) {
  piece_sink sink(out, v.begin());
  const size_t end = v.end();
  for (size_t pos = v.begin(); pos < end;) {
    const uint32_t c = v.cpt(pos);
    const props p = v.at(pos);
    // 's|'t|'re|'ve|'m|'ll|'d  (case-sensitive)
    if (c == '\'' && pos + 1 < end) {
      size_t len = 0;
      const uint32_t next2 = pos + 2 < end ? v.cpt(pos + 2) : piece_view::out_of_range;
      if (is_contraction_tail(v.cpt(pos + 1), next2, len)) {
        pos += len;
        sink.cut(pos);
        continue;
      }
    }
    props q = c == ' ' ? v.at(pos + 1) : p;
    // ' ?\p{L}+', ' ?\p{N}+'
    if (q.letter || q.number) {
      const bool letter = q.letter;
      pos += c == ' ';
      while (letter ? q.letter : q.number) q = v.at(++pos);
      sink.cut(pos);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+'
    if (q.present && !(q.whitespace || q.letter || q.number)) {
      pos += c == ' ';
      while (q.present && !(q.whitespace || q.letter || q.number)) q = v.at(++pos);
      sink.cut(pos);
      continue;
    }
    size_t num_ws = 0;
    while (v.at(pos + num_ws).whitespace) ++num_ws;
    // '\s+(?!\S)': a run followed by more text leaves its last space to the next piece
    if (num_ws > 1 && v.cpt(pos + num_ws) != piece_view::out_of_range) {
      pos += num_ws - 1;
    } else if (num_ws > 0) {
      pos += num_ws;
    } else {
      pos += 1;
    }
    sink.cut(pos);
  }
}

void split_llama3(const piece_view& v, offsets& out) {
  piece_sink sink(out, v.begin());
  const size_t end = v.end();
  for (size_t pos = v.begin(); pos < end;) {
    const uint32_t c = v.cpt(pos);
    const props p = v.at(pos);
    // (?i:'s|'t|'re|'ve|'m|'ll|'d)
    if (c == '\'' && pos + 1 < end) {
      size_t len = 0;
      const uint32_t next2 = pos + 2 < end ? ascii_lower(v.cpt(pos + 2)) : piece_view::out_of_range;
      if (is_contraction_tail(ascii_lower(v.cpt(pos + 1)), next2, len)) {
        pos += len;
        sink.cut(pos);
        continue;
      }
    }
    // [^\r\n\p{L}\p{N}]?\p{L}+
    if (!(c == '\r' || c == '\n' || p.number) && (p.letter || v.at(pos + 1).letter)) {
      ++pos;
      while (v.at(pos).letter) ++pos;
      sink.cut(pos);
      continue;
    }
    // \p{N}{1,3}
    if (p.number) {
      size_t run_start = pos;
      while (v.at(pos).number) {
        if (++pos - run_start >= 3) {
          sink.cut(pos);
          run_start = pos;
        }
      }
      sink.cut(pos);
      continue;
    }
    // ' ?[^\s\p{L}\p{N}]+[\r\n]*'  (llama.cpp tests `present` on the first code point)
    props q = c == ' ' ? v.at(pos + 1) : p;
    if (p.present && !(q.whitespace || q.letter || q.number)) {
      pos += c == ' ';
      while (q.present && !(q.whitespace || q.letter || q.number)) q = v.at(++pos);
      while (v.cpt(pos) == '\r' || v.cpt(pos) == '\n') ++pos;
      sink.cut(pos);
      continue;
    }
    size_t num_ws = 0;
    size_t last_newline_end = 0;
    while (v.at(pos + num_ws).whitespace) {
      const uint32_t w = v.cpt(pos + num_ws);
      if (w == '\r' || w == '\n') last_newline_end = pos + num_ws + 1;
      ++num_ws;
    }
    if (last_newline_end > 0) {  // \s*[\r\n]+
      pos = last_newline_end;
    } else if (num_ws > 1 && v.cpt(pos + num_ws) != piece_view::out_of_range) {  // \s+(?!\S)
      pos += num_ws - 1;
    } else if (num_ws > 0) {  // \s+
      pos += num_ws;
    } else {
      pos += 1;
    }
    sink.cut(pos);
  }
}

// A regex that is one character class, either repeated ('+') or matched alone: matches and the
// gaps between them become pieces.
template <class Pred>
void split_class(const piece_view& v, offsets& out, Pred in_class, bool repeated) {
  piece_sink sink(out, v.begin());
  for (size_t pos = v.begin(); pos < v.end();) {
    if (!in_class(v.cpt(pos))) {
      ++pos;
      continue;
    }
    sink.cut(pos);
    ++pos;
    if (repeated)
      while (pos < v.end() && in_class(v.cpt(pos))) ++pos;
    sink.cut(pos);
  }
  sink.cut(v.end());
}

// [0-9][0-9][0-9]: non-overlapping runs of three ASCII digits, leftmost first.
void split_digit_triples(const piece_view& v, offsets& out) {
  piece_sink sink(out, v.begin());
  auto digit = [&](size_t pos) { return pos < v.end() && v.cpt(pos) >= '0' && v.cpt(pos) <= '9'; };
  for (size_t pos = v.begin(); pos < v.end();) {
    if (digit(pos) && digit(pos + 1) && digit(pos + 2)) {
      sink.cut(pos);
      pos += 3;
      sink.cut(pos);
    } else {
      ++pos;
    }
  }
  sink.cut(v.end());
}

// llama.cpp evaluates \p{..} classes on a "collapsed" copy of the text in which whitespace
// outside ASCII can never be in a category class; the category tests below respect that.
bool is_number_class(uint32_t c) {
  return unicode::category_of(c) == unicode::cat_number && !unicode::is_whitespace(c);
}
bool is_punctuation_class(uint32_t c) {
  if (c == '$' || c == '+' || c == '<' || c == '=' || c == '>' || c == '^' || c == '~' || c == '|')
    return true;
  return unicode::category_of(c) == unicode::cat_punctuation && !unicode::is_whitespace(c);
}

enum class step { each_number, gpt2, llama3, punctuation_runs, number_runs, digit_triples };

void apply_step(step s, std::span<const uint32_t> cpts, offsets& pieces) {
  offsets next;
  next.reserve(pieces.size() * 2);
  size_t start = 0;
  for (size_t len : pieces) {
    const piece_view v(cpts, start, start + len);
    switch (s) {
      case step::each_number: split_class(v, next, is_number_class, false); break;
      case step::gpt2: split_gpt2(v, next); break;
      case step::llama3: split_llama3(v, next); break;
      case step::punctuation_runs: split_class(v, next, is_punctuation_class, true); break;
      case step::number_runs: split_class(v, next, is_number_class, true); break;
      case step::digit_triples: split_digit_triples(v, next); break;
    }
    start += len;
  }
  pieces = std::move(next);
}

struct named_pre {
  std::string_view name;
  pre_tokenizer_info info;
};

// The names llama.cpp maps to each of the regex sets we implement.
constexpr std::array known_pre_tokenizers = {
    named_pre{"smollm", {pre_tokenizer_kind::smollm}},
    named_pre{"starcoder", {pre_tokenizer_kind::smollm}},
    named_pre{"refact", {pre_tokenizer_kind::smollm}},
    named_pre{"command-r", {pre_tokenizer_kind::smollm}},
    named_pre{"codeshell", {pre_tokenizer_kind::smollm}},
    named_pre{"exaone", {pre_tokenizer_kind::smollm}},
    named_pre{"gpt-2", {pre_tokenizer_kind::gpt2}},
    named_pre{"phi-2", {pre_tokenizer_kind::gpt2}},
    named_pre{"jina-es", {pre_tokenizer_kind::gpt2}},
    named_pre{"jina-de", {pre_tokenizer_kind::gpt2}},
    named_pre{"jina-v2-es", {pre_tokenizer_kind::gpt2}},
    named_pre{"jina-v2-de", {pre_tokenizer_kind::gpt2}},
    named_pre{"gigachat", {pre_tokenizer_kind::gpt2}},
    named_pre{"llama3", {pre_tokenizer_kind::llama3, true, true}},
    named_pre{"llama-v3", {pre_tokenizer_kind::llama3, true, true}},
    named_pre{"llama-bpe", {pre_tokenizer_kind::llama3, true, true}},
    named_pre{"falcon3", {pre_tokenizer_kind::llama3, true, true}},
    named_pre{"pixtral", {pre_tokenizer_kind::llama3, true, true}},
    named_pre{"default", {pre_tokenizer_kind::fallback}},
};

}  // namespace

result<pre_tokenizer_info> find_pre_tokenizer(std::string_view name) {
  if (name.empty()) return pre_tokenizer_info{pre_tokenizer_kind::fallback};
  for (const auto& k : known_pre_tokenizers)
    if (k.name == name) return k.info;
  std::string known;
  for (const auto& k : known_pre_tokenizers) known += (known.empty() ? "" : ", ") + std::string(k.name);
  return error{"unknown pre-tokenizer '" + std::string(name) + "' (tokenizer.ggml.pre); supported: " +
               known};
}

std::vector<size_t> split_into_pieces(pre_tokenizer_kind kind, std::span<const uint32_t> cpts) {
  offsets pieces;
  if (cpts.empty()) return pieces;
  pieces.push_back(cpts.size());
  switch (kind) {
    case pre_tokenizer_kind::gpt2:
      apply_step(step::gpt2, cpts, pieces);
      break;
    case pre_tokenizer_kind::smollm:
      apply_step(step::each_number, cpts, pieces);
      apply_step(step::gpt2, cpts, pieces);
      break;
    case pre_tokenizer_kind::llama3:
      apply_step(step::llama3, cpts, pieces);
      break;
    case pre_tokenizer_kind::fallback:
      apply_step(step::punctuation_runs, cpts, pieces);
      apply_step(step::gpt2, cpts, pieces);
      apply_step(step::number_runs, cpts, pieces);
      apply_step(step::digit_triples, cpts, pieces);
      break;
  }
  return pieces;
}

}  // namespace troupe
