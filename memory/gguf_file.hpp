// gguf_file: a read-only, bounds-checked view of a GGUF v2/v3 file mapped into memory.
//
// Ownership: the mapping is shared (shared_ptr) by every copy of gguf_file, so string views,
// array elements and tensor data pointers stay valid while any copy lives. Nothing is copied
// out of the file except the metadata index; tensor data is zero-copy.
//
// Every count, length and offset is checked against the file size before use, and size
// arithmetic is overflow-checked, so a hostile file produces an error (naming the file and the
// fault) rather than a crash, a hang or a huge allocation.
//
// Thread-safety: immutable after open(); any thread may read it concurrently.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "memory/ggml_type.hpp"
#include "troupe/result.hpp"

namespace troupe {

enum class gguf_value_type : uint32_t {
  uint8 = 0, int8 = 1, uint16 = 2, int16 = 3, uint32 = 4, int32 = 5, float32 = 6, boolean = 7,
  string = 8, array = 9, uint64 = 10, int64 = 11, float64 = 12,
};
const char* gguf_value_type_name(gguf_value_type t);

struct gguf_value;

struct gguf_array {
  gguf_value_type elem_type = gguf_value_type::uint8;
  std::vector<gguf_value> elements;
};

// One metadata value. Integers are widened (unsigned to uint64_t, signed to int64_t), floats to
// double; `type` keeps the type that was stored in the file.
struct gguf_value {
  gguf_value_type type = gguf_value_type::uint8;
  std::variant<uint64_t, int64_t, double, bool, std::string_view, std::shared_ptr<gguf_array>> data;

  // Typed accessors; nullopt/nullptr when the stored type does not fit. as_uint accepts any
  // non-negative integer type, as_int any integer that fits int64, as_float any float type.
  std::optional<uint64_t> as_uint() const;
  std::optional<int64_t> as_int() const;
  std::optional<double> as_float() const;
  std::optional<bool> as_bool() const;
  std::optional<std::string_view> as_string() const;
  const gguf_array* as_array() const;
};

struct gguf_kv {
  std::string_view key;
  gguf_value value;
};

struct gguf_tensor_info {
  std::string_view name;
  ggml_type type = ggml_type::f32;
  uint32_t n_dims = 0;
  std::array<uint64_t, 4> ne = {1, 1, 1, 1};  // ne[0] is the row length (fastest varying)
  uint64_t offset = 0;                        // relative to the data section
  uint64_t n_elements = 0;
  uint64_t n_bytes = 0;
  const uint8_t* data = nullptr;              // points into the mapping
};

struct gguf_open_options {
  // By default a tensor of a type troupe cannot run (Q4_K, IQ2_XS, ...) is an error naming the
  // type. With this set, any type whose block geometry ggml defines is accepted, so a file can be
  // listed (troupe inspect); whoever uses the data must check ggml_type_is_supported.
  // Unknown type ids are refused either way (their sizes are unknown).
  bool allow_unsupported_types = false;
};

class gguf_file {
 public:
  // Maps and parses `path`. Errors name the file and the fault.
  static result<gguf_file> open(const std::string& path, gguf_open_options options = {});
  // Parses bytes already in memory (tests, fuzzing); `name` is used in error messages.
  // The caller keeps `bytes` alive for the lifetime of the returned object.
  static result<gguf_file> parse(std::string name, std::span<const uint8_t> bytes,
                                 gguf_open_options options = {});

  const std::string& path() const { return path_; }
  uint32_t version() const { return version_; }
  uint64_t alignment() const { return alignment_; }
  uint64_t file_size() const { return bytes_.size(); }

  const std::vector<gguf_kv>& metadata() const { return kvs_; }
  const gguf_value* find(std::string_view key) const;   // nullptr when absent
  const std::vector<gguf_tensor_info>& tensors() const { return tensors_; }
  const gguf_tensor_info* find_tensor(std::string_view name) const;  // nullptr when absent

 private:
  std::string path_;
  std::shared_ptr<const void> mapping_;  // keeps the mmap (or nothing, for parse()) alive
  std::span<const uint8_t> bytes_;
  uint32_t version_ = 0;
  uint64_t alignment_ = 32;
  std::vector<gguf_kv> kvs_;
  std::vector<gguf_tensor_info> tensors_;
};

}  // namespace troupe
