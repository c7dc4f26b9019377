#include "grammar/number_range_gbnf.hpp"

#include <vector>

namespace troupe::grammar_detail {
namespace {

const std::string any_digit = "[0-9]";

std::string join_alternatives(const std::vector<std::string>& alts) {
  if (alts.size() == 1) return alts[0];
  std::string out = "(";
  for (size_t i = 0; i < alts.size(); ++i) out += (i ? " | " : "") + alts[i];
  return out + ")";
}

std::string repeat_digits(size_t n) {
  if (n == 0) return "";
  return n == 1 ? any_digit : any_digit + "{" + std::to_string(n) + "}";
}

std::string digit_class(char first, char last) {
  if (first == last) return std::string("\"") + first + "\"";
  return std::string("[") + first + "-" + last + "]";
}

// Digit strings of x.size() characters between x and y (same length, x <= y, leading zeros
// allowed: callers pass only lengths where that cannot happen).
std::string same_length_range(const std::string& x, const std::string& y) {
  if (x.empty()) return "";
  if (x == y) return "\"" + x + "\"";
  const size_t n = x.size();
  const std::string rx = x.substr(1), ry = y.substr(1);
  auto sep = [](const std::string& a, const std::string& b) {
    return b.empty() ? a : a + " " + b;
  };
  if (x[0] == y[0]) return sep(digit_class(x[0], x[0]), same_length_range(rx, ry));
  if (rx == std::string(n - 1, '0') && ry == std::string(n - 1, '9')) {
    return sep(digit_class(x[0], y[0]), repeat_digits(n - 1));
  }
  std::vector<std::string> alts;
  alts.push_back(sep(digit_class(x[0], x[0]), same_length_range(rx, std::string(n - 1, '9'))));
  if (y[0] - x[0] > 1) {
    alts.push_back(sep(digit_class(static_cast<char>(x[0] + 1), static_cast<char>(y[0] - 1)),
                       repeat_digits(n - 1)));
  }
  alts.push_back(sep(digit_class(y[0], y[0]), same_length_range(std::string(n - 1, '0'), ry)));
  return join_alternatives(alts);
}

int64_t power_of_ten(size_t n) {
  int64_t p = 1;
  for (size_t i = 0; i < n; ++i) p *= 10;
  return p;
}

// Canonical non-negative integers in [a, b] (b = nullopt: unbounded, up to max_integer_digits).
std::string non_negative_range(int64_t a, std::optional<int64_t> b) {
  std::vector<std::string> alts;
  const size_t len_a = std::to_string(a).size();
  const size_t len_b = b ? std::to_string(*b).size() : len_a;
  for (size_t len = len_a; len <= len_b; ++len) {
    const int64_t lo = std::max(a, len == 1 ? 0 : power_of_ten(len - 1));
    const int64_t hi = b ? std::min(*b, power_of_ten(len) - 1) : power_of_ten(len) - 1;
    if (lo <= hi) alts.push_back(same_length_range(std::to_string(lo), std::to_string(hi)));
  }
  if (!b && static_cast<int>(len_a) < max_integer_digits) {
    alts.push_back("[1-9] [0-9]{" + std::to_string(len_a) + "," +
                   std::to_string(max_integer_digits - 1) + "}");
  }
  return join_alternatives(alts);
}

status check_bounds(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  for (auto v : {lo, hi}) {
    if (v && (*v > max_abs_bound || *v < -max_abs_bound)) {
      return error{"bounds beyond +-1e15 are not supported"};
    }
  }
  if (lo && hi && *lo > *hi) return error{"minimum is greater than maximum"};
  return {};
}

// Magnitudes m with an integer part in [a, b - 1] and any fraction, or b with a zero fraction.
std::string magnitude_range(int64_t a, std::optional<int64_t> b) {
  const std::string frac = "(\".\" [0-9]{1," + std::to_string(max_fraction_digits) + "})?";
  const std::string zero_frac = "(\".\" \"0\"{1," + std::to_string(max_fraction_digits) + "})?";
  std::vector<std::string> alts;
  if (!b) {
    alts.push_back(non_negative_range(a, std::nullopt) + " " + frac);
  } else {
    if (a <= *b - 1) alts.push_back(non_negative_range(a, *b - 1) + " " + frac);
    std::string exact = "\"";  // built step by step: g++ 12 warns (-Wrestrict) on a + chain here
    exact += std::to_string(*b);
    exact += "\" ";
    exact += zero_frac;
    alts.push_back(std::move(exact));
  }
  return join_alternatives(alts);
}

}  // namespace

result<std::string> integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  if (auto s = check_bounds(lo, hi); !s) return s.err();
  std::vector<std::string> alts;
  if (!lo || *lo < 0) {  // negative part: -m for m in [max(1, -hi), -lo]
    const int64_t m_lo = hi && *hi < 0 ? -*hi : 1;
    std::optional<int64_t> m_hi;
    if (lo) m_hi = -*lo;
    if (!m_hi || m_lo <= *m_hi) alts.push_back("\"-\" " + non_negative_range(m_lo, m_hi));
  }
  if (!hi || *hi >= 0) alts.push_back(non_negative_range(lo ? std::max<int64_t>(*lo, 0) : 0, hi));
  return join_alternatives(alts);
}

result<std::string> number_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi) {
  if (auto s = check_bounds(lo, hi); !s) return s.err();
  std::vector<std::string> alts;
  if (!lo || *lo < 0) {  // -m for m in [max(0, -hi), -lo]
    const int64_t m_lo = hi && *hi < 0 ? -*hi : 0;
    std::optional<int64_t> m_hi;
    if (lo) m_hi = -*lo;
    alts.push_back("\"-\" " + magnitude_range(m_lo, m_hi));
  }
  if (!hi || *hi >= 0) alts.push_back(magnitude_range(lo ? std::max<int64_t>(*lo, 0) : 0, hi));
  return join_alternatives(alts);
}

}  // namespace troupe::grammar_detail
