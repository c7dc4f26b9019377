// pcre2_full_match: a PCRE2 pattern compiled for whole-string matches of UTF-8 text, the oracle
// the grammar tests hold constrained outputs to (regexes, JSON Schema formats). PCRE2 rather
// than <regex>: it is the project's regex library (the tokenizer uses it), it is what users'
// patterns are written for, and g++ 12's <regex> trips -Werror=maybe-uninitialized under ASan.
#pragma once

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <stdexcept>
#include <string>
#include <string_view>

namespace troupe::test {

class pcre2_full_match {
 public:
  // Throws std::invalid_argument naming the pattern when PCRE2 cannot compile it.
  explicit pcre2_full_match(std::string_view pattern) {
    int err = 0;
    PCRE2_SIZE offset = 0;
    code_ = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern.data()), pattern.size(),
                          PCRE2_UTF | PCRE2_ANCHORED | PCRE2_ENDANCHORED, &err, &offset, nullptr);
    if (code_ == nullptr)
      throw std::invalid_argument("PCRE2 cannot compile the pattern: " + std::string(pattern));
    data_ = pcre2_match_data_create_from_pattern(code_, nullptr);
  }
  ~pcre2_full_match() {
    pcre2_match_data_free(data_);
    pcre2_code_free(code_);
  }
  pcre2_full_match(const pcre2_full_match&) = delete;
  pcre2_full_match& operator=(const pcre2_full_match&) = delete;

  // Not thread-safe: the match data is shared between calls.
  bool matches(std::string_view s) const {
    return pcre2_match(code_, reinterpret_cast<PCRE2_SPTR>(s.data()), s.size(), 0, 0, data_,
                       nullptr) >= 0;
  }

 private:
  pcre2_code* code_ = nullptr;
  pcre2_match_data* data_ = nullptr;
};

}  // namespace troupe::test
