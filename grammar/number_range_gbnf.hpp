// number_range_gbnf: GBNF expressions for JSON numbers within inclusive integer bounds, exact
// (every string the expression matches is in range, and every canonical number in range -- no
// leading zeros, no exponent -- is matched).
//
// Integers: digit-by-digit ranges ("between 17 and 342" becomes 1[7-9] | [2-9][0-9] | [1-2][0-9]{2}
// | 3[0-3][0-9] | 34[0-2]). Numbers: the integer part in [lo, hi - 1] with any fraction, or hi
// itself with a zero fraction; negative values mirror that with a leading "-". Unbounded sides
// allow at most max_integer_digits digits, so a model cannot loop on digits.
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "troupe/result.hpp"

namespace troupe::grammar_detail {

constexpr int max_integer_digits = 16;
constexpr int max_fraction_digits = 15;
// Bounds must lie within +-max_abs_bound (so that every step stays inside int64).
constexpr int64_t max_abs_bound = 1'000'000'000'000'000;  // 1e15

// The integers in [lo, hi]; a missing side is unbounded. Errors: lo > hi, a bound too large.
result<std::string> integer_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);
// The decimal numbers (optional fraction, no exponent) in [lo, hi].
result<std::string> number_range_gbnf(std::optional<int64_t> lo, std::optional<int64_t> hi);

}  // namespace troupe::grammar_detail
