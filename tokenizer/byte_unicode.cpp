#include "tokenizer/byte_unicode.hpp"

#include <array>

namespace troupe::byte_unicode {
namespace {

struct tables {
  std::array<uint32_t, 256> cpt_of_byte{};
  std::array<char, 256 * 2> text{};
  std::array<uint8_t, 256> text_len{};
  std::array<int16_t, 0x144> byte_of_cpt{};  // every mapped code point is below U+0144

  tables() {
    byte_of_cpt.fill(-1);
    // Printable Latin-1 bytes stand for themselves; the other 68 (controls, space, DEL, NBSP,
    // soft hyphen ...) take U+0100, U+0101, ... in increasing byte order.
    uint32_t next_extra = 0x100;
    for (int b = 0; b < 256; ++b) {
      const bool printable = (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || (b >= 0xAE);
      const uint32_t cpt = printable ? static_cast<uint32_t>(b) : next_extra++;
      cpt_of_byte[b] = cpt;
      byte_of_cpt[cpt] = static_cast<int16_t>(b);
      if (cpt < 0x80) {
        text[b * 2] = static_cast<char>(cpt);
        text_len[b] = 1;
      } else {
        text[b * 2] = static_cast<char>(0xC0 | (cpt >> 6));
        text[b * 2 + 1] = static_cast<char>(0x80 | (cpt & 0x3F));
        text_len[b] = 2;
      }
    }
  }
};

const tables& get() {
  static const tables t;
  return t;
}

}  // namespace

uint32_t code_point_of_byte(uint8_t b) { return get().cpt_of_byte[b]; }

std::string_view text_of_byte(uint8_t b) {
  const auto& t = get();
  return {t.text.data() + b * 2, t.text_len[b]};
}

int byte_of_code_point(uint32_t cpt) {
  const auto& t = get();
  return cpt < t.byte_of_cpt.size() ? t.byte_of_cpt[cpt] : -1;
}

}  // namespace troupe::byte_unicode
