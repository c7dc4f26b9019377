// Reading GGUF tensor infos and placing tensor data inside the file.
//
// Why each tensor is validated on its own first: shape and type faults are reported with the
// tensor's name before any layout question (alignment, overlap) is asked, so the message points
// at the real cause.
#include <algorithm>
#include <limits>

#include <fmt/format.h>

#include "memory/gguf_parse.hpp"

namespace troupe::gguf_detail {
namespace {

constexpr uint64_t k_max_int64 = static_cast<uint64_t>(std::numeric_limits<int64_t>::max());

std::string supported_type_list() {
  std::string out;
  for (uint32_t id = 0; id < 64; ++id) {
    if (!ggml_type_is_supported(id)) continue;
    if (!out.empty()) out += ", ";
    out += ggml_type_name(id);
  }
  return out;
}

std::string shape_string(const gguf_tensor_info& t) {
  std::string out = "[";
  for (uint32_t i = 0; i < t.n_dims; ++i) out += fmt::format("{}{}", i ? ", " : "", t.ne[i]);
  return out + "]";
}

}  // namespace

result<gguf_tensor_info> read_tensor_info(parse_context& ctx, uint64_t index) {
  const uint64_t start = ctx.cur.pos();
  auto name = read_string(ctx, "the name of", fmt::format("tensor info {}", index));
  if (!name) return name.err();
  if (name->size() > k_max_tensor_name_bytes)
    return make_error(ctx, start, fmt::format("tensor info {} has a name of {} bytes (GGUF allows "
                                              "at most {})", index, name->size(),
                                              k_max_tensor_name_bytes));
  gguf_tensor_info t;
  t.name = *name;

  const auto fail_at = [&](uint64_t pos, std::string_view what) {
    return make_error(ctx, pos, fmt::format("tensor '{}' {}", t.name, what));
  };
  const auto read_u32 = [&](uint32_t& v, std::string_view field) -> status {
    if (!ctx.cur.read(v))
      return fail_at(ctx.cur.pos(), fmt::format("is cut off: file ends inside its {}", field));
    return {};
  };
  const auto read_u64 = [&](uint64_t& v, std::string_view field) -> status {
    if (!ctx.cur.read(v))
      return fail_at(ctx.cur.pos(), fmt::format("is cut off: file ends inside its {}", field));
    return {};
  };

  const uint64_t dims_pos = ctx.cur.pos();
  if (auto st = read_u32(t.n_dims, "n_dims"); !st) return st.err();
  if (t.n_dims < 1 || t.n_dims > 4)
    return fail_at(dims_pos, fmt::format("has n_dims {} (must be 1 to 4)", t.n_dims));
  for (uint32_t i = 0; i < t.n_dims; ++i) {
    const uint64_t pos = ctx.cur.pos();
    if (auto st = read_u64(t.ne[i], fmt::format("ne[{}]", i)); !st) return st.err();
    if (t.ne[i] == 0) return fail_at(pos, fmt::format("has a zero-size dimension ne[{}]", i));
    if (t.ne[i] > k_max_int64)
      return fail_at(pos, fmt::format("has dimension ne[{}] = {}, past INT64_MAX", i, t.ne[i]));
  }

  const uint64_t type_pos = ctx.cur.pos();
  uint32_t type_id = 0;
  if (auto st = read_u32(type_id, "type"); !st) return st.err();
  const auto traits = ggml_type_info(type_id);
  if (!traits)
    return fail_at(type_pos, fmt::format("has unknown type id {} (supported: {})", type_id,
                                         supported_type_list()));
  if (!traits->supported && !ctx.allow_unsupported_types)
    return fail_at(type_pos, fmt::format("has type {} (id {}), which troupe does not support "
                                         "(supported: {})", traits->name, type_id,
                                         supported_type_list()));
  t.type = static_cast<ggml_type>(type_id);
  if (t.ne[0] % traits->block_elems != 0)
    return fail_at(dims_pos, fmt::format("has row length ne[0] = {}, not a multiple of the {} "
                                         "block size {}", t.ne[0], traits->name,
                                         traits->block_elems));

  uint64_t n = 1;
  for (uint32_t i = 0; i < 4; ++i)
    if (__builtin_mul_overflow(n, t.ne[i], &n) || n > k_max_int64)
      return fail_at(dims_pos, fmt::format("has shape {}, whose element count overflows int64",
                                           shape_string(t)));
  t.n_elements = n;
  uint64_t bytes = 0;
  if (__builtin_mul_overflow(n / traits->block_elems, traits->block_bytes, &bytes) ||
      bytes > k_max_int64)
    return fail_at(dims_pos, fmt::format("has shape {} of {}, whose byte size overflows int64",
                                         shape_string(t), traits->name));
  t.n_bytes = bytes;

  if (auto st = read_u64(t.offset, "data offset"); !st) return st.err();
  return t;
}

status place_tensors(const std::string& name, std::span<const uint8_t> bytes, uint64_t data_start,
                     uint64_t alignment, std::vector<gguf_tensor_info>& tensors) {
  const uint64_t file_size = bytes.size();
  for (auto& t : tensors) {
    if (t.offset % alignment != 0)
      return error{fmt::format("{}: tensor '{}' has data offset {}, not a multiple of the "
                               "alignment {}", name, t.name, t.offset, alignment)};
    uint64_t begin = 0, end = 0;
    if (__builtin_add_overflow(data_start, t.offset, &begin) ||
        __builtin_add_overflow(begin, t.n_bytes, &end) || end > file_size)
      return error{fmt::format("{}: tensor '{}' data ({} bytes at data offset {}, file offset {}) "
                               "ends past the end of the file ({} bytes)", name, t.name,
                               t.n_bytes, t.offset, data_start + t.offset, file_size)};
    t.data = bytes.data() + begin;
  }
  std::vector<const gguf_tensor_info*> by_offset;
  by_offset.reserve(tensors.size());
  for (const auto& t : tensors) by_offset.push_back(&t);
  std::sort(by_offset.begin(), by_offset.end(),
            [](const auto* a, const auto* b) { return a->offset < b->offset; });
  for (size_t i = 1; i < by_offset.size(); ++i) {
    const auto* prev = by_offset[i - 1];
    const auto* cur = by_offset[i];
    if (prev->offset + prev->n_bytes > cur->offset)  // no overflow: both ends checked above
      return error{fmt::format("{}: tensors '{}' (data offset {}, {} bytes) and '{}' (data "
                               "offset {}) overlap", name, prev->name, prev->offset,
                               prev->n_bytes, cur->name, cur->offset)};
  }
  return {};
}

}  // namespace troupe::gguf_detail
