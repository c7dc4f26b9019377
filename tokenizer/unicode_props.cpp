#include "tokenizer/unicode_props.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <memory>
#include <string>

#include "troupe/result.hpp"

namespace troupe::unicode {
namespace {

struct assigned_range {
  uint32_t first, last;
  category cat;
};

// Code points assigned in Unicode 15.0 and 15.1, which PCRE2 10.42 (Unicode 14) reports as
// unassigned. Listed by category so that PCRE2 + this table reproduces llama.cpp's categories
// for every code point (checked exhaustively against the oracle's table when this was written).
// A newer PCRE2 already knows them; the table then changes nothing.
constexpr assigned_range unicode_15_additions[] = {
    {0x00CF3, 0x00CF3, cat_mark},        {0x00ECE, 0x00ECE, cat_mark},
    {0x02FFC, 0x02FFF, cat_symbol},      {0x031EF, 0x031EF, cat_symbol},
    {0x10EFD, 0x10EFF, cat_mark},        {0x1123F, 0x11240, cat_letter},
    {0x11241, 0x11241, cat_mark},        {0x11B00, 0x11B09, cat_punctuation},
    {0x11F00, 0x11F01, cat_mark},        {0x11F02, 0x11F02, cat_letter},
    {0x11F03, 0x11F03, cat_mark},        {0x11F04, 0x11F10, cat_letter},
    {0x11F12, 0x11F33, cat_letter},      {0x11F34, 0x11F3A, cat_mark},
    {0x11F3E, 0x11F42, cat_mark},        {0x11F43, 0x11F4F, cat_punctuation},
    {0x11F50, 0x11F59, cat_number},      {0x1342F, 0x1342F, cat_letter},
    {0x13439, 0x1343F, cat_control},     {0x13440, 0x13440, cat_mark},
    {0x13441, 0x13446, cat_letter},      {0x13447, 0x13455, cat_mark},
    {0x1B132, 0x1B132, cat_letter},      {0x1B155, 0x1B155, cat_letter},
    {0x1D2C0, 0x1D2D3, cat_number},      {0x1DF25, 0x1DF2A, cat_letter},
    {0x1E030, 0x1E06D, cat_letter},      {0x1E08F, 0x1E08F, cat_mark},
    {0x1E4D0, 0x1E4EB, cat_letter},      {0x1E4EC, 0x1E4EF, cat_mark},
    {0x1E4F0, 0x1E4F9, cat_number},      {0x1F6DC, 0x1F6DC, cat_symbol},
    {0x1F774, 0x1F776, cat_symbol},      {0x1F77B, 0x1F77F, cat_symbol},
    {0x1F7D9, 0x1F7D9, cat_symbol},      {0x1FA75, 0x1FA77, cat_symbol},
    {0x1FA87, 0x1FA88, cat_symbol},      {0x1FAAD, 0x1FAAF, cat_symbol},
    {0x1FABB, 0x1FABD, cat_symbol},      {0x1FABF, 0x1FABF, cat_symbol},
    {0x1FACE, 0x1FACF, cat_symbol},      {0x1FADA, 0x1FADB, cat_symbol},
    {0x1FAE8, 0x1FAE8, cat_symbol},      {0x1FAF7, 0x1FAF8, cat_symbol},
    {0x2B739, 0x2B739, cat_letter},      {0x2EBF0, 0x2EE5D, cat_letter},
    {0x31350, 0x323AF, cat_letter},
};

// One capture group per category; which group matched names the category. Cn comes before C
// so that unassigned code points are told apart from controls, as llama.cpp does.
constexpr const char* category_pattern =
    R"(^(?:(\p{N})|(\p{L})|(\p{Z})|(\p{M})|(\p{P})|(\p{S})|(\p{Cn})|(\p{C})))";
constexpr category group_category[] = {cat_number, cat_letter,      cat_separator, cat_mark,
                                       cat_punctuation, cat_symbol, cat_undefined, cat_control};

struct pcre2_classifier {
  pcre2_code* code = nullptr;
  pcre2_classifier() {
    int err = 0;
    PCRE2_SIZE err_offset = 0;
    code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(category_pattern), PCRE2_ZERO_TERMINATED,
                         PCRE2_UTF | PCRE2_UCP, &err, &err_offset, nullptr);
    // The pattern is a constant: failing to compile it means PCRE2 lacks Unicode support.
    TROUPE_ASSERT(code != nullptr);
  }
  ~pcre2_classifier() { pcre2_code_free(code); }

  category classify(uint32_t cpt) const {
    unsigned char buf[4];
    size_t n = 0;
    if (cpt < 0x80) {
      buf[n++] = static_cast<unsigned char>(cpt);
    } else if (cpt < 0x800) {
      buf[n++] = static_cast<unsigned char>(0xC0 | (cpt >> 6));
      buf[n++] = static_cast<unsigned char>(0x80 | (cpt & 0x3F));
    } else if (cpt < 0x10000) {
      buf[n++] = static_cast<unsigned char>(0xE0 | (cpt >> 12));
      buf[n++] = static_cast<unsigned char>(0x80 | ((cpt >> 6) & 0x3F));
      buf[n++] = static_cast<unsigned char>(0x80 | (cpt & 0x3F));
    } else {
      buf[n++] = static_cast<unsigned char>(0xF0 | (cpt >> 18));
      buf[n++] = static_cast<unsigned char>(0x80 | ((cpt >> 12) & 0x3F));
      buf[n++] = static_cast<unsigned char>(0x80 | ((cpt >> 6) & 0x3F));
      buf[n++] = static_cast<unsigned char>(0x80 | (cpt & 0x3F));
    }
    std::unique_ptr<pcre2_match_data, decltype(&pcre2_match_data_free)> md(
        pcre2_match_data_create_from_pattern(code, nullptr), &pcre2_match_data_free);
    TROUPE_ASSERT(md != nullptr);
    const int rc = pcre2_match(code, buf, n, 0, 0, md.get(), nullptr);
    // rc - 1 is the number of the highest group that took part: exactly one group matches.
    if (rc >= 2 && rc - 2 < static_cast<int>(std::size(group_category))) return group_category[rc - 2];
    return cat_undefined;
  }
};

category compute_category(uint32_t cpt) {
  if (cpt > max_code_point) return cat_undefined;
  if (cpt >= 0xD800 && cpt <= 0xDFFF) return cat_control;  // surrogates (Cs); PCRE2 cannot match them
  const auto* it = std::upper_bound(
      std::begin(unicode_15_additions), std::end(unicode_15_additions), cpt,
      [](uint32_t c, const assigned_range& r) { return c < r.first; });
  if (it != std::begin(unicode_15_additions) && cpt <= std::prev(it)->last) return std::prev(it)->cat;
  static const pcre2_classifier classifier;
  return classifier.classify(cpt);
}

// 0 = not computed yet. Relaxed atomics suffice: every thread computes the same value.
std::atomic<uint8_t> category_cache[max_code_point + 1];

}  // namespace

category category_of(uint32_t cpt) {
  if (cpt > max_code_point) return cat_undefined;
  uint8_t c = category_cache[cpt].load(std::memory_order_relaxed);
  if (c == 0) {
    c = compute_category(cpt);
    category_cache[cpt].store(c, std::memory_order_relaxed);
  }
  return static_cast<category>(c);
}

bool is_whitespace(uint32_t cpt) {
  if (cpt <= 0x20) return cpt == 0x20 || (cpt >= 0x09 && cpt <= 0x0D);
  if (cpt < 0x85) return false;
  switch (cpt) {
    case 0x85: case 0xA0: case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F:
    case 0x3000:
      return true;
    default:
      return cpt >= 0x2000 && cpt <= 0x200A;
  }
}

}  // namespace troupe::unicode
