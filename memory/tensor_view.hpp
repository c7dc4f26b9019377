// tensor_view: a borrowed, read-only 2-D view of a weight matrix or vector inside a GGUF mapping.
//
// Shapes use ggml order: ne0 is the row length (the input dimension of a Linear layer), ne1 the
// number of rows (its output dimension). Row r starts at data + r * row_bytes. The view owns
// nothing: it is valid while the gguf_file it came from (or a copy of it) is alive.
#pragma once

#include <cstdint>
#include <string_view>

#include "memory/ggml_type.hpp"

namespace troupe {

struct tensor_view {
  std::string_view name;
  ggml_type type = ggml_type::f32;
  int64_t ne0 = 0;          // elements per row
  int64_t ne1 = 1;          // rows
  uint64_t row_bytes = 0;   // ggml_row_bytes(type, ne0)
  const uint8_t* data = nullptr;

  const uint8_t* row(int64_t r) const { return data + static_cast<uint64_t>(r) * row_bytes; }
  bool empty() const { return data == nullptr; }
};

}  // namespace troupe
