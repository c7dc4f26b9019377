#include "grammar/utf8_ranges.hpp"

#include <algorithm>

#include "troupe/result.hpp"

namespace troupe::grammar_detail {
namespace {

constexpr uint32_t surrogate_first = 0xD800, surrogate_last = 0xDFFF;

int encoded_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

std::vector<uint8_t> encode(uint32_t cp) {
  std::vector<uint8_t> out;
  append_utf8(cp, out);
  return out;
}

// [first, last] share one encoded length. Splits the range until, at every byte position, the
// bytes of all its members form one contiguous range independent of the other positions; then
// that range of each position is one byte_range of a single sequence.
void split_same_length(uint32_t first, uint32_t last, std::vector<byte_range_sequence>& out) {
  const int n = encoded_length(first);
  for (int i = 1; i < n; ++i) {
    const uint32_t low_mask = (1u << (6 * i)) - 1;  // the bits of the last i continuation bytes
    if ((first & ~low_mask) != (last & ~low_mask)) {
      if ((first & low_mask) != 0) {
        split_same_length(first, first | low_mask, out);
        split_same_length((first | low_mask) + 1, last, out);
        return;
      }
      if ((last & low_mask) != low_mask) {
        split_same_length(first, (last & ~low_mask) - 1, out);
        split_same_length(last & ~low_mask, last, out);
        return;
      }
    }
  }
  const auto a = encode(first), b = encode(last);
  byte_range_sequence seq;
  for (int k = 0; k < n; ++k) seq.push_back({a[k], b[k]});
  out.push_back(std::move(seq));
}

}  // namespace

void append_utf8(uint32_t cp, std::vector<uint8_t>& out) {
  TROUPE_ASSERT(cp <= max_code_point && !(cp >= surrogate_first && cp <= surrogate_last));
  if (cp < 0x80) {
    out.push_back(static_cast<uint8_t>(cp));
  } else if (cp < 0x800) {
    out.push_back(static_cast<uint8_t>(0xC0 | (cp >> 6)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else if (cp < 0x10000) {
    out.push_back(static_cast<uint8_t>(0xE0 | (cp >> 12)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  } else {
    out.push_back(static_cast<uint8_t>(0xF0 | (cp >> 18)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 12) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | ((cp >> 6) & 0x3F)));
    out.push_back(static_cast<uint8_t>(0x80 | (cp & 0x3F)));
  }
}

std::vector<code_point_range> normalize_ranges(std::vector<code_point_range> ranges) {
  std::vector<code_point_range> cut;
  for (auto r : ranges) {
    if (r.first > r.last || r.first > max_code_point) continue;
    r.last = std::min(r.last, max_code_point);
    if (r.last < surrogate_first || r.first > surrogate_last) {
      cut.push_back(r);
      continue;
    }
    if (r.first < surrogate_first) cut.push_back({r.first, surrogate_first - 1});
    if (r.last > surrogate_last) cut.push_back({surrogate_last + 1, r.last});
  }
  std::sort(cut.begin(), cut.end(),
            [](const auto& x, const auto& y) { return x.first < y.first; });
  std::vector<code_point_range> merged;
  for (const auto& r : cut) {
    if (!merged.empty() && r.first <= merged.back().last + 1) {
      merged.back().last = std::max(merged.back().last, r.last);
    } else {
      merged.push_back(r);
    }
  }
  return merged;
}

std::vector<code_point_range> complement_ranges(const std::vector<code_point_range>& ranges) {
  const auto norm = normalize_ranges(ranges);
  std::vector<code_point_range> out;
  uint32_t next = 0;
  for (const auto& r : norm) {
    if (r.first > next) out.push_back({next, r.first - 1});
    next = r.last + 1;
  }
  if (next <= max_code_point) out.push_back({next, max_code_point});
  return normalize_ranges(std::move(out));
}

std::vector<byte_range_sequence> utf8_sequences(const std::vector<code_point_range>& ranges) {
  static constexpr uint32_t length_limits[] = {0x7F, 0x7FF, 0xFFFF, max_code_point};
  std::vector<byte_range_sequence> out;
  for (const auto& r : normalize_ranges(ranges)) {
    uint32_t first = r.first;
    for (uint32_t limit : length_limits) {
      if (first > r.last) break;
      if (first > limit) continue;
      const uint32_t last = std::min(r.last, limit);
      split_same_length(first, last, out);
      first = last + 1;
    }
  }
  return out;
}

}  // namespace troupe::grammar_detail
