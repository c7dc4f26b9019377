// gguf_cursor: a little-endian reader over a byte span that never reads past its end.
//
// Private to memory/ (used by the GGUF parser). Every read either succeeds and advances, or
// fails and leaves the position unchanged; the caller turns a failure into an error that names
// the file, the field and pos().
#pragma once

#include <bit>
#include <cstdint>
#include <cstring>
#include <span>
#include <string_view>
#include <type_traits>

namespace troupe {

static_assert(std::endian::native == std::endian::little,
              "GGUF is little-endian; troupe reads it by memcpy on little-endian hosts only");

class gguf_cursor {
 public:
  explicit gguf_cursor(std::span<const uint8_t> bytes) : bytes_(bytes) {}

  uint64_t pos() const { return pos_; }
  uint64_t size() const { return bytes_.size(); }
  uint64_t remaining() const { return bytes_.size() - pos_; }

  template <class T>
  bool read(T& out) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (remaining() < sizeof(T)) return false;
    std::memcpy(&out, bytes_.data() + pos_, sizeof(T));
    pos_ += sizeof(T);
    return true;
  }

  // A view of the next n bytes (zero-copy), or false when fewer than n remain.
  bool read_bytes(uint64_t n, std::string_view& out) {
    if (remaining() < n) return false;
    out = std::string_view(reinterpret_cast<const char*>(bytes_.data() + pos_), n);
    pos_ += n;
    return true;
  }

 private:
  std::span<const uint8_t> bytes_;
  uint64_t pos_ = 0;
};

}  // namespace troupe
