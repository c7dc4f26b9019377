// ggml tensor types as stored in GGUF files: ids, block geometry, names.
//
// Only the types listed as supported have dequantizers and kernels; every other id known to
// llama.cpp still has a name here so errors can say "Q4_K (id 12) is not supported".
#pragma once

#include <cstdint>
#include <optional>
#include <string>

namespace troupe {

enum class ggml_type : uint32_t {
  f32 = 0,
  f16 = 1,
  q4_0 = 2,
  q4_1 = 3,
  q5_0 = 6,
  q5_1 = 7,
  q8_0 = 8,
  q8_1 = 9,
  q2_k = 10,
  q3_k = 11,
  q4_k = 12,
  q5_k = 13,
  q6_k = 14,
  q8_k = 15,
  bf16 = 30,
};

struct ggml_type_traits {
  const char* name;        // "Q4_1", as llama.cpp prints it
  uint32_t block_elems;    // elements per block (1 for plain floats)
  uint32_t block_bytes;    // bytes per block
  bool supported;          // we can dequantize it and run kernels on it
};

// Traits for a raw type id read from a file; nullopt for ids no ggml version defines.
std::optional<ggml_type_traits> ggml_type_info(uint32_t id);

// "Q4_K" for known ids, "unknown" otherwise. Never fails.
const char* ggml_type_name(uint32_t id);
inline const char* ggml_type_name(ggml_type t) { return ggml_type_name(static_cast<uint32_t>(t)); }

// True for F32, F16, BF16, Q4_0, Q4_1, Q8_0 (issue #2) and Q5_0, Q5_1, Q4_K, Q5_K, Q6_K (issue
// #13): the weight types with dequantizers and exact kernels. Q8_1 and Q8_K are activation
// types only: they never appear as weights and stay unsupported here.
bool ggml_type_is_supported(uint32_t id);

// Bytes of one row of n_elems elements. REQUIRES: supported/known type, n_elems % block_elems == 0.
uint64_t ggml_row_bytes(ggml_type t, uint64_t n_elems);

}  // namespace troupe
