// gguf_builder: writes GGUF files in memory for tests, valid by default and easy to break.
//
// Metadata entries are kept as (key, type, payload bytes) so a test can write any payload,
// including malformed ones; tensors are (name, type id, dims, offset, data). build() lays out
// header, kvs, infos, zero padding to `alignment` and data, computing offsets unless a test
// fixes one. Counts in the header can be overridden to lie about the contents.
#pragma once

#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "memory/ggml_type.hpp"

namespace troupe::test {

using bytes = std::vector<uint8_t>;

// resize + memcpy rather than insert: g++ 12 at -O3 reports a false stringop-overflow for
// vector<uint8_t>::insert of a few bytes.
inline void put_bytes(bytes& out, const void* p, size_t n) {
  if (n == 0) return;
  const size_t at = out.size();
  out.resize(at + n);
  std::memcpy(out.data() + at, p, n);
}
template <class T>
void put(bytes& out, T v) {
  put_bytes(out, &v, sizeof(T));
}
inline void put_string(bytes& out, std::string_view s) {
  put<uint64_t>(out, s.size());
  put_bytes(out, s.data(), s.size());
}
template <class T>
bytes encode(T v) {
  bytes out;
  put(out, v);
  return out;
}
inline bytes encode_string(std::string_view s) {
  bytes out;
  put_string(out, s);
  return out;
}

struct test_kv {
  std::string key;
  uint32_t type;
  bytes payload;
};

struct test_tensor {
  std::string name;
  uint32_t type_id;
  std::vector<uint64_t> ne;
  bytes data;                      // written at the tensor's offset
  std::optional<uint64_t> offset;  // relative to the data section; auto when absent
};

class gguf_builder {
 public:
  uint32_t magic = 0x46554747;
  uint32_t version = 3;
  uint64_t alignment = 32;  // used for padding; set general.alignment separately
  std::optional<uint64_t> tensor_count_override;
  std::optional<uint64_t> kv_count_override;
  std::vector<test_kv> kvs;
  std::vector<test_tensor> tensors;

  gguf_builder& kv(std::string key, uint32_t type, bytes payload) {
    kvs.push_back({std::move(key), type, std::move(payload)});
    return *this;
  }
  gguf_builder& kv_u32(std::string key, uint32_t v) { return kv(std::move(key), 4, encode(v)); }
  gguf_builder& kv_f32(std::string key, float v) { return kv(std::move(key), 6, encode(v)); }
  gguf_builder& kv_str(std::string key, std::string_view v) {
    return kv(std::move(key), 8, encode_string(v));
  }
  gguf_builder& kv_str_array(std::string key, const std::vector<std::string>& v) {
    bytes p;
    put<uint32_t>(p, 8);
    put<uint64_t>(p, v.size());
    for (const auto& s : v) put_string(p, s);
    return kv(std::move(key), 9, std::move(p));
  }
  void remove_kv(std::string_view key) {
    std::erase_if(kvs, [&](const test_kv& k) { return k.key == key; });
  }
  test_kv* find_kv(std::string_view key) {
    for (auto& k : kvs)
      if (k.key == key) return &k;
    return nullptr;
  }

  // A tensor whose data is `n_bytes` of a repeating pattern (so contents are not all zero).
  // n_bytes defaults to the exact size for a known type.
  gguf_builder& tensor(std::string name, uint32_t type_id, std::vector<uint64_t> ne,
                       std::optional<uint64_t> n_bytes = std::nullopt) {
    uint64_t size = n_bytes.value_or(0);
    if (!n_bytes) {
      const auto info = ggml_type_info(type_id);
      uint64_t n = 1;
      for (auto d : ne) n *= d;
      size = info ? n / info->block_elems * info->block_bytes : 32;
    }
    bytes data(size);
    for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<uint8_t>(i * 7 + 3);
    tensors.push_back({std::move(name), type_id, std::move(ne), std::move(data), std::nullopt});
    return *this;
  }
  test_tensor* find_tensor(std::string_view name) {
    for (auto& t : tensors)
      if (t.name == name) return &t;
    return nullptr;
  }
  void remove_tensor(std::string_view name) {
    std::erase_if(tensors, [&](const test_tensor& t) { return t.name == name; });
  }

  bytes build() const {
    bytes out;
    put(out, magic);
    put(out, version);
    put<uint64_t>(out, tensor_count_override.value_or(tensors.size()));
    put<uint64_t>(out, kv_count_override.value_or(kvs.size()));
    for (const auto& k : kvs) {
      put_string(out, k.key);
      put(out, k.type);
      put_bytes(out, k.payload.data(), k.payload.size());
    }
    std::vector<uint64_t> offsets;
    uint64_t next = 0;
    for (const auto& t : tensors) {
      const uint64_t off = t.offset.value_or(next);
      offsets.push_back(off);
      next = align(off + t.data.size());
      put_string(out, t.name);
      put<uint32_t>(out, static_cast<uint32_t>(t.ne.size()));
      for (auto d : t.ne) put(out, d);
      put(out, t.type_id);
      put(out, off);
    }
    if (tensors.empty()) return out;
    out.resize(align(out.size()), 0);
    const uint64_t data_start = out.size();
    for (size_t i = 0; i < tensors.size(); ++i) {
      const auto& t = tensors[i];
      if (offsets[i] > (uint64_t{1} << 30) || t.data.empty()) continue;  // nothing to write
      const uint64_t end = data_start + offsets[i] + t.data.size();
      if (out.size() < end) out.resize(end, 0);
      std::memcpy(out.data() + data_start + offsets[i], t.data.data(), t.data.size());
    }
    return out;
  }

 private:
  uint64_t align(uint64_t x) const { return (x + alignment - 1) / alignment * alignment; }
};

// A small valid file: a few metadata types, a string array and two F32/Q8_0 tensors.
inline gguf_builder small_valid_file() {
  gguf_builder b;
  b.kv_str("general.architecture", "test")
      .kv_u32("test.count", 7)
      .kv_f32("test.scale", 0.5f)
      .kv_str_array("test.words", {"alpha", "beta", ""})
      .tensor("a.weight", 0, {4, 2})
      .tensor("b.weight", 8, {32, 3});
  return b;
}

}  // namespace troupe::test
