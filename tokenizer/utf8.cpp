#include "tokenizer/utf8.hpp"

#include "tokenizer/unicode_props.hpp"

namespace troupe::utf8 {

std::vector<uint32_t> decode_code_points_lenient(std::string_view text) {
  std::vector<uint32_t> cpts;
  cpts.reserve(text.size());
  const auto* s = reinterpret_cast<const unsigned char*>(text.data());
  const size_t n = text.size();
  auto cont = [&](size_t i) { return i < n && (s[i] & 0xC0) == 0x80; };
  size_t i = 0;
  while (i < n) {
    const unsigned char b = s[i];
    // Mirrors llama.cpp's unicode_cpt_from_utf8: the lead byte picks the length, continuation
    // bytes must be 10xxxxxx, and the value itself is not checked (overlong forms, surrogates).
    if (b < 0x80) {
      cpts.push_back(b);
      i += 1;
    } else if ((b & 0xE0) == 0xC0 && cont(i + 1)) {
      cpts.push_back((uint32_t(b & 0x1F) << 6) | (s[i + 1] & 0x3F));
      i += 2;
    } else if ((b & 0xF0) == 0xE0 && cont(i + 1) && cont(i + 2)) {
      cpts.push_back((uint32_t(b & 0x0F) << 12) | (uint32_t(s[i + 1] & 0x3F) << 6) | (s[i + 2] & 0x3F));
      i += 3;
    } else if ((b & 0xF8) == 0xF0 && cont(i + 1) && cont(i + 2) && cont(i + 3)) {
      const uint32_t cpt = (uint32_t(b & 0x07) << 18) | (uint32_t(s[i + 1] & 0x3F) << 12) |
                           (uint32_t(s[i + 2] & 0x3F) << 6) | (s[i + 3] & 0x3F);
      if (cpt <= unicode::max_code_point) {
        cpts.push_back(cpt);
        i += 4;
      } else {
        // llama.cpp would throw (and abort) re-encoding this; treat the lead byte as invalid.
        cpts.push_back(unicode::replacement_character);
        i += 1;
      }
    } else {
      cpts.push_back(unicode::replacement_character);
      i += 1;
    }
  }
  return cpts;
}

void append_code_point(std::string& out, uint32_t cpt) {
  if (cpt < 0x80) {
    out += static_cast<char>(cpt);
  } else if (cpt < 0x800) {
    out += static_cast<char>(0xC0 | (cpt >> 6));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else if (cpt < 0x10000) {
    out += static_cast<char>(0xE0 | (cpt >> 12));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cpt >> 18));
    out += static_cast<char>(0x80 | ((cpt >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cpt >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cpt & 0x3F));
  }
}

char_scan next_utf8_char(std::string_view bytes, size_t pos) {
  const auto* s = reinterpret_cast<const unsigned char*>(bytes.data());
  const size_t n = bytes.size();
  const unsigned char b = s[pos];
  if (b < 0x80) return {char_status::complete, 1};
  size_t need = 0;
  unsigned char lo = 0x80, hi = 0xBF;  // allowed range of the second byte (RFC 3629 table)
  if (b >= 0xC2 && b <= 0xDF) {
    need = 2;
  } else if (b >= 0xE0 && b <= 0xEF) {
    need = 3;
    if (b == 0xE0) lo = 0xA0;  // no overlong forms
    if (b == 0xED) hi = 0x9F;  // no surrogates
  } else if (b >= 0xF0 && b <= 0xF4) {
    need = 4;
    if (b == 0xF0) lo = 0x90;  // no overlong forms
    if (b == 0xF4) hi = 0x8F;  // nothing above U+10FFFF
  } else {
    return {char_status::invalid, 1};
  }
  for (size_t k = 1; k < need; ++k) {
    if (pos + k >= n) return {char_status::incomplete, k};
    const unsigned char c = s[pos + k];
    const unsigned char l = k == 1 ? lo : 0x80, h = k == 1 ? hi : 0xBF;
    if (c < l || c > h) return {char_status::invalid, k};
  }
  return {char_status::complete, need};
}

bool is_valid_utf8(std::string_view bytes) {
  for (size_t i = 0; i < bytes.size();) {
    const auto scan = next_utf8_char(bytes, i);
    if (scan.status != char_status::complete) return false;
    i += scan.length;
  }
  return true;
}

std::string to_valid_utf8(std::string_view bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (size_t i = 0; i < bytes.size();) {
    const auto scan = next_utf8_char(bytes, i);
    if (scan.status == char_status::complete) {
      out.append(bytes.substr(i, scan.length));
    } else {
      append_code_point(out, unicode::replacement_character);
    }
    i += scan.length;
  }
  return out;
}

}  // namespace troupe::utf8
