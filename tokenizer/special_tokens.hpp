// special_tokens: finds special-token text inside raw text before BPE sees it, as llama.cpp's
// tokenizer_st_partition does.
//
// Candidates are the CONTROL, USER_DEFINED and UNKNOWN tokens, tried longest first. Each one
// splits every remaining raw fragment at each of its exact byte occurrences (left to right,
// non-overlapping). USER_DEFINED tokens are always recognised; CONTROL and UNKNOWN tokens only
// when parse_special is true -- otherwise "<|im_start|>" in untrusted text is plain text.
//
// Thread-safety: immutable after construction.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "tokenizer/tokenizer_spec.hpp"

namespace troupe {

struct text_span;

struct text_fragment {
  int32_t token = -1;  // >= 0: this special token; -1: raw text [offset, offset + length)
  size_t offset = 0;
  size_t length = 0;
  bool parse_special = true;  // raw text: may CONTROL/UNKNOWN tokens still be found in it
};

class special_token_matcher {
 public:
  // `texts` and `kinds` describe the whole vocabulary (same size); the strings must outlive the
  // matcher.
  special_token_matcher(const std::vector<std::string>& texts, const std::vector<token_kind>& kinds);

  std::vector<text_fragment> partition(std::string_view text, bool parse_special) const;
  // The same with parse_special decided per span (tokenizer.hpp's text_span; REQUIRES: they
  // cover text in order). A token is found only inside one span. Neighbouring raw fragments
  // may be adjacent where a span ends; callers join them.
  std::vector<text_fragment> partition(std::string_view text,
                                       std::span<const struct text_span> spans) const;

 private:
  struct candidate {
    int32_t id;
    std::string_view text;
    bool always;  // USER_DEFINED: matched even when parse_special is false
  };
  std::vector<candidate> candidates_;  // longest first
};

}  // namespace troupe
