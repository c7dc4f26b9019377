// The pieces of the GGUF parser, private to memory/: reading one metadata entry, reading one
// tensor info, and checking where tensor data lies. gguf_file::parse strings them together.
//
// Every function reads through a gguf_cursor (so never past the end), checks every count
// against the bytes that remain before allocating or looping, and returns an error whose message
// starts with the file name and ends with the byte offset of the fault.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "memory/gguf_cursor.hpp"
#include "memory/gguf_file.hpp"
#include "troupe/result.hpp"

namespace troupe::gguf_detail {

// Metadata arrays are expanded into gguf_value elements (32 bytes each), so one byte of file
// could cost 32 bytes of memory. This cap bounds that: real vocabularies hold < 1M entries
// (tokens + merges + scores + types of a 256k vocabulary is about 1M elements).
inline constexpr uint64_t k_max_array_elements_total = uint64_t{1} << 24;

// GGUF strings: llama.cpp refuses strings above 1 GiB; so do we (and they must fit the file).
inline constexpr uint64_t k_max_string_bytes = uint64_t{1} << 30;

// Tensor names are at most 63 bytes (llama.cpp GGML_MAX_NAME is 64 including the NUL).
inline constexpr uint64_t k_max_tensor_name_bytes = 63;

struct parse_context {
  const std::string& name;  // file name for messages
  gguf_cursor& cur;
  uint64_t array_elements_left = k_max_array_elements_total;
  bool allow_unsupported_types = false;  // gguf_open_options::allow_unsupported_types
};

// "<name>: <what> (at byte offset <pos>)"
error make_error(const parse_context& ctx, uint64_t pos, std::string_view what);

// Reads a length-prefixed string (a view into the file). `field` + `what` name it in errors
// ("the key of" + "metadata entry 3"); they are formatted only on failure.
result<std::string_view> read_string(parse_context& ctx, std::string_view field,
                                     std::string_view what);

// Reads one key/value entry (key, u32 type, value). `index` is used in messages.
result<gguf_kv> read_kv(parse_context& ctx, uint64_t index);

// Reads one tensor info and validates it alone: name length, n_dims 1..4, no zero dims, a type
// troupe supports (any known type with ctx.allow_unsupported_types), ne[0] a multiple of the
// block size, element and byte counts that fit int64.
result<gguf_tensor_info> read_tensor_info(parse_context& ctx, uint64_t index);

// Checks that every tensor's data is aligned, lies inside the file and overlaps no other, and
// sets each tensor's data pointer. `bytes` is the whole file; `data_start` the data section.
status place_tensors(const std::string& name, std::span<const uint8_t> bytes, uint64_t data_start,
                     uint64_t alignment, std::vector<gguf_tensor_info>& tensors);

}  // namespace troupe::gguf_detail
