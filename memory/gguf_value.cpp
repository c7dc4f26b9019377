// gguf_value's typed accessors and the names of GGUF value types (for messages and inspect).
#include <limits>

#include "memory/gguf_file.hpp"

namespace troupe {

const char* gguf_value_type_name(gguf_value_type t) {
  switch (t) {
    case gguf_value_type::uint8: return "uint8";
    case gguf_value_type::int8: return "int8";
    case gguf_value_type::uint16: return "uint16";
    case gguf_value_type::int16: return "int16";
    case gguf_value_type::uint32: return "uint32";
    case gguf_value_type::int32: return "int32";
    case gguf_value_type::float32: return "float32";
    case gguf_value_type::boolean: return "bool";
    case gguf_value_type::string: return "string";
    case gguf_value_type::array: return "array";
    case gguf_value_type::uint64: return "uint64";
    case gguf_value_type::int64: return "int64";
    case gguf_value_type::float64: return "float64";
  }
  return "unknown";
}

std::optional<uint64_t> gguf_value::as_uint() const {
  if (const auto* u = std::get_if<uint64_t>(&data)) return *u;
  if (const auto* i = std::get_if<int64_t>(&data); i && *i >= 0) return static_cast<uint64_t>(*i);
  return std::nullopt;
}

std::optional<int64_t> gguf_value::as_int() const {
  if (const auto* i = std::get_if<int64_t>(&data)) return *i;
  if (const auto* u = std::get_if<uint64_t>(&data);
      u && *u <= static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    return static_cast<int64_t>(*u);
  return std::nullopt;
}

std::optional<double> gguf_value::as_float() const {
  if (const auto* d = std::get_if<double>(&data)) return *d;
  return std::nullopt;
}

std::optional<bool> gguf_value::as_bool() const {
  if (const auto* b = std::get_if<bool>(&data)) return *b;
  return std::nullopt;
}

std::optional<std::string_view> gguf_value::as_string() const {
  if (const auto* s = std::get_if<std::string_view>(&data)) return *s;
  return std::nullopt;
}

const gguf_array* gguf_value::as_array() const {
  if (const auto* a = std::get_if<std::shared_ptr<gguf_array>>(&data)) return a->get();
  return nullptr;
}

}  // namespace troupe
