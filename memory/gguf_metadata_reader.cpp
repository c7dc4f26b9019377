// Reading GGUF metadata: strings, scalar values, arrays and key/value entries.
//
// Why the order of checks matters: a count read from the file is compared with the bytes left
// (count * smallest possible element size) before anything is reserved or looped over, so a
// claimed 2^60 elements fails in O(1) instead of allocating or spinning.
#include <fmt/format.h>

#include "memory/gguf_parse.hpp"

namespace troupe::gguf_detail {
namespace {

bool is_known_value_type(uint32_t t) { return t <= static_cast<uint32_t>(gguf_value_type::float64); }

// Fewest bytes one value of type t can occupy in the file (a string is at least its u64 length).
uint64_t min_value_bytes(gguf_value_type t) {
  switch (t) {
    case gguf_value_type::uint8:
    case gguf_value_type::int8:
    case gguf_value_type::boolean: return 1;
    case gguf_value_type::uint16:
    case gguf_value_type::int16: return 2;
    case gguf_value_type::uint32:
    case gguf_value_type::int32:
    case gguf_value_type::float32: return 4;
    case gguf_value_type::uint64:
    case gguf_value_type::int64:
    case gguf_value_type::float64:
    case gguf_value_type::string: return 8;
    case gguf_value_type::array: return 4 + 8;
  }
  return 1;
}

// `field` and `what` together name the value in the message ("the length of" + "key 'x'");
// they are only formatted on failure, because arrays read hundreds of thousands of values.
template <class T>
result<T> read_scalar(parse_context& ctx, std::string_view field, std::string_view what) {
  T v{};
  if (!ctx.cur.read(v))
    return make_error(ctx, ctx.cur.pos(),
                      fmt::format("file ends inside {} {} ({} bytes needed, {} left)", field, what,
                                  sizeof(T), ctx.cur.remaining()));
  return v;
}

result<gguf_value> read_value(parse_context& ctx, gguf_value_type type, std::string_view what,
                              bool inside_array);

result<gguf_value> read_array(parse_context& ctx, std::string_view what) {
  const uint64_t start = ctx.cur.pos();
  auto elem_type = read_scalar<uint32_t>(ctx, "the element type of", what);
  if (!elem_type) return elem_type.err();
  if (!is_known_value_type(*elem_type))
    return make_error(ctx, start, fmt::format("{} is an array of unknown element type {}", what,
                                              *elem_type));
  const auto et = static_cast<gguf_value_type>(*elem_type);
  // llama.cpp refuses nested arrays; nothing real writes them, and refusing keeps recursion at
  // depth one.
  if (et == gguf_value_type::array)
    return make_error(ctx, start, fmt::format("{} is an array of arrays, which GGUF readers "
                                              "(llama.cpp, troupe) do not support", what));
  auto count = read_scalar<uint64_t>(ctx, "the element count of", what);
  if (!count) return count.err();
  uint64_t min_bytes = 0;
  if (__builtin_mul_overflow(*count, min_value_bytes(et), &min_bytes) ||
      min_bytes > ctx.cur.remaining())
    return make_error(ctx, start + 4,
                      fmt::format("{} claims {} elements of type {}, more than the {} bytes left "
                                  "in the file can hold", what, *count, gguf_value_type_name(et),
                                  ctx.cur.remaining()));
  if (*count > ctx.array_elements_left)
    return make_error(ctx, start + 4,
                      fmt::format("{} has {} elements, past troupe's limit of {} array elements "
                                  "per file", what, *count, k_max_array_elements_total));
  ctx.array_elements_left -= *count;

  auto arr = std::make_shared<gguf_array>();
  arr->elem_type = et;
  arr->elements.reserve(*count);
  for (uint64_t i = 0; i < *count; ++i) {
    auto v = read_value(ctx, et, what, /*inside_array=*/true);
    if (!v) return v.err();
    arr->elements.push_back(std::move(*v));
  }
  gguf_value out;
  out.type = gguf_value_type::array;
  out.data = std::move(arr);
  return out;
}

result<gguf_value> read_value(parse_context& ctx, gguf_value_type type, std::string_view what,
                              bool inside_array) {
  gguf_value out;
  out.type = type;
  const auto widen_u = [&](auto r) -> status {
    if (!r) return r.err();
    out.data = static_cast<uint64_t>(*r);
    return {};
  };
  const auto widen_i = [&](auto r) -> status {
    if (!r) return r.err();
    out.data = static_cast<int64_t>(*r);
    return {};
  };
  const auto widen_f = [&](auto r) -> status {
    if (!r) return r.err();
    out.data = static_cast<double>(*r);
    return {};
  };
  const std::string_view field = inside_array ? "an element of" : "the value of";
  status st;
  switch (type) {
    case gguf_value_type::uint8: st = widen_u(read_scalar<uint8_t>(ctx, field, what)); break;
    case gguf_value_type::int8: st = widen_i(read_scalar<int8_t>(ctx, field, what)); break;
    case gguf_value_type::uint16: st = widen_u(read_scalar<uint16_t>(ctx, field, what)); break;
    case gguf_value_type::int16: st = widen_i(read_scalar<int16_t>(ctx, field, what)); break;
    case gguf_value_type::uint32: st = widen_u(read_scalar<uint32_t>(ctx, field, what)); break;
    case gguf_value_type::int32: st = widen_i(read_scalar<int32_t>(ctx, field, what)); break;
    case gguf_value_type::uint64: st = widen_u(read_scalar<uint64_t>(ctx, field, what)); break;
    case gguf_value_type::int64: st = widen_i(read_scalar<int64_t>(ctx, field, what)); break;
    case gguf_value_type::float32: st = widen_f(read_scalar<float>(ctx, field, what)); break;
    case gguf_value_type::float64: st = widen_f(read_scalar<double>(ctx, field, what)); break;
    case gguf_value_type::boolean: {
      const uint64_t pos = ctx.cur.pos();
      auto b = read_scalar<uint8_t>(ctx, field, what);
      if (!b) return b.err();
      if (*b > 1)
        return make_error(ctx, pos, fmt::format("{} is a bool stored as {} (must be 0 or 1)",
                                                what, *b));
      out.data = *b == 1;
      break;
    }
    case gguf_value_type::string: {
      auto s = read_string(ctx, field, what);
      if (!s) return s.err();
      out.data = *s;
      break;
    }
    case gguf_value_type::array:
      TROUPE_ASSERT(!inside_array);  // read_array refuses nested arrays before recursing
      return read_array(ctx, what);
  }
  if (!st) return st.err();
  return out;
}

}  // namespace

error make_error(const parse_context& ctx, uint64_t pos, std::string_view what) {
  return error{fmt::format("{}: {} (at byte offset {})", ctx.name, what, pos)};
}

result<std::string_view> read_string(parse_context& ctx, std::string_view field,
                                     std::string_view what) {
  const uint64_t start = ctx.cur.pos();
  uint64_t len_value = 0;
  if (!ctx.cur.read(len_value))
    return make_error(ctx, start, fmt::format("file ends inside the string length of {} {} (8 "
                                              "bytes needed, {} left)", field, what,
                                              ctx.cur.remaining()));
  const uint64_t* len = &len_value;
  if (*len > ctx.cur.remaining())
    return make_error(ctx, start,
                      fmt::format("string length {} of {} {} runs past the end of the file ({} "
                                  "bytes left)", *len, field, what, ctx.cur.remaining()));
  if (*len > k_max_string_bytes)
    return make_error(ctx, start, fmt::format("string length {} of {} {} is over the 1 GiB limit",
                                              *len, field, what));
  std::string_view s;
  TROUPE_ASSERT(ctx.cur.read_bytes(*len, s));
  return s;
}

result<gguf_kv> read_kv(parse_context& ctx, uint64_t index) {
  const uint64_t start = ctx.cur.pos();
  auto key = read_string(ctx, "the key of", fmt::format("metadata entry {}", index));
  if (!key) return key.err();
  if (key->empty())
    return make_error(ctx, start, fmt::format("metadata entry {} has an empty key", index));
  const std::string what = fmt::format("metadata key '{}'", *key);
  const uint64_t type_pos = ctx.cur.pos();
  auto type = read_scalar<uint32_t>(ctx, "the type of", what);
  if (!type) return type.err();
  if (!is_known_value_type(*type))
    return make_error(ctx, type_pos, fmt::format("{} has unknown value type {}", what, *type));
  auto value = read_value(ctx, static_cast<gguf_value_type>(*type), what, false);
  if (!value) return value.err();
  return gguf_kv{*key, std::move(*value)};
}

}  // namespace troupe::gguf_detail
