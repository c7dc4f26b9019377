// The ggml type table. Ids, names and block geometry follow llama.cpp's ggml.h / ggml-common.h;
// unsupported types are listed only so that errors can name them.
#include "memory/ggml_type.hpp"

#include <array>

#include "troupe/result.hpp"

namespace troupe {
namespace {

struct type_row {
  uint32_t id;
  ggml_type_traits traits;
};

// Ids 4, 5 and 31..33, 36..38 were used by removed types; ggml no longer defines them, and
// neither do we, so a file using them gets "unknown type id".
constexpr std::array<type_row, 31> k_types = {{
    {0, {"F32", 1, 4, true}},
    {1, {"F16", 1, 2, true}},
    {2, {"Q4_0", 32, 18, true}},
    {3, {"Q4_1", 32, 20, true}},
    {6, {"Q5_0", 32, 22, true}},
    {7, {"Q5_1", 32, 24, true}},
    {8, {"Q8_0", 32, 34, true}},
    {9, {"Q8_1", 32, 36, false}},
    {10, {"Q2_K", 256, 84, false}},
    {11, {"Q3_K", 256, 110, false}},
    {12, {"Q4_K", 256, 144, true}},
    {13, {"Q5_K", 256, 176, true}},
    {14, {"Q6_K", 256, 210, true}},
    {15, {"Q8_K", 256, 292, false}},
    {16, {"IQ2_XXS", 256, 66, false}},
    {17, {"IQ2_XS", 256, 74, false}},
    {18, {"IQ3_XXS", 256, 98, false}},
    {19, {"IQ1_S", 256, 50, false}},
    {20, {"IQ4_NL", 32, 18, false}},
    {21, {"IQ3_S", 256, 110, false}},
    {22, {"IQ2_S", 256, 82, false}},
    {23, {"IQ4_XS", 256, 136, false}},
    {24, {"I8", 1, 1, false}},
    {25, {"I16", 1, 2, false}},
    {26, {"I32", 1, 4, false}},
    {27, {"I64", 1, 8, false}},
    {28, {"F64", 1, 8, false}},
    {29, {"IQ1_M", 256, 56, false}},
    {30, {"BF16", 1, 2, true}},
    {34, {"TQ1_0", 256, 54, false}},
    {35, {"TQ2_0", 256, 66, false}},
}};

const type_row* lookup(uint32_t id) {
  for (const auto& row : k_types)
    if (row.id == id) return &row;
  return nullptr;
}

}  // namespace

std::optional<ggml_type_traits> ggml_type_info(uint32_t id) {
  if (const auto* row = lookup(id)) return row->traits;
  return std::nullopt;
}

const char* ggml_type_name(uint32_t id) {
  if (const auto* row = lookup(id)) return row->traits.name;
  return "unknown";
}

bool ggml_type_is_supported(uint32_t id) {
  const auto* row = lookup(id);
  return row != nullptr && row->traits.supported;
}

uint64_t ggml_row_bytes(ggml_type t, uint64_t n_elems) {
  const auto* row = lookup(static_cast<uint32_t>(t));
  TROUPE_ASSERT(row != nullptr);
  TROUPE_ASSERT(n_elems % row->traits.block_elems == 0);
  return n_elems / row->traits.block_elems * row->traits.block_bytes;
}

}  // namespace troupe
