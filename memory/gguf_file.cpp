// gguf_file: mapping a file and parsing the GGUF header, metadata and tensor infos.
//
// Layout (GGUF v2/v3, little-endian): magic "GGUF", u32 version, u64 tensor_count,
// u64 kv_count, kv entries, tensor infos, zero padding to the alignment, tensor data.
#include "memory/gguf_file.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <unordered_set>

#include <fmt/format.h>

#include "memory/gguf_parse.hpp"

namespace troupe {
namespace {

using gguf_detail::make_error;
using gguf_detail::parse_context;

constexpr uint32_t k_gguf_magic = 0x46554747;  // "GGUF" read as a little-endian u32
constexpr uint64_t k_default_alignment = 32;
constexpr uint64_t k_header_bytes = 4 + 4 + 8 + 8;
// Fewest bytes a kv entry (u64 key length, u32 type, 1-byte value) and a tensor info (u64 name
// length, u32 n_dims, one u64 dim, u32 type, u64 offset) can occupy.
constexpr uint64_t k_min_kv_bytes = 8 + 4 + 1;
constexpr uint64_t k_min_tensor_info_bytes = 8 + 4 + 8 + 4 + 8;

// Refuses a count whose smallest encoding would not fit in the rest of the file, before any
// allocation or loop uses it.
status check_count(parse_context& ctx, uint64_t count, uint64_t min_bytes, uint64_t pos,
                   std::string_view what) {
  uint64_t need = 0;
  if (__builtin_mul_overflow(count, min_bytes, &need) || need > ctx.cur.remaining())
    return make_error(ctx, pos, fmt::format("{} is {}, but the {} bytes left in the file can hold "
                                            "at most {}", what, count, ctx.cur.remaining(),
                                            ctx.cur.remaining() / min_bytes));
  return {};
}

result<uint64_t> read_alignment(parse_context& ctx, const gguf_value* v) {
  if (v == nullptr) return k_default_alignment;
  const auto a = v->as_uint();
  if (v->type != gguf_value_type::uint32 || !a || *a == 0 || (*a & (*a - 1)) != 0)
    return error{fmt::format("{}: general.alignment must be a nonzero power of two stored as "
                             "uint32 (got {} {})", ctx.name, gguf_value_type_name(v->type),
                             a ? fmt::format("{}", *a) : std::string("value"))};
  return *a;
}

}  // namespace

result<gguf_file> gguf_file::open(const std::string& path, gguf_open_options options) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return error{fmt::format("{}: cannot open: {}", path, std::strerror(errno))};
  struct stat st{};
  if (::fstat(fd, &st) != 0) {
    const int e = errno;
    ::close(fd);
    return error{fmt::format("{}: cannot stat: {}", path, std::strerror(e))};
  }
  if (!S_ISREG(st.st_mode)) {
    ::close(fd);
    return error{fmt::format("{}: not a regular file", path)};
  }
  if (st.st_size == 0) {
    ::close(fd);
    return error{fmt::format("{}: file is empty (0 bytes), not a GGUF file", path)};
  }
  const auto size = static_cast<size_t>(st.st_size);
  void* addr = ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0);
  const int map_errno = errno;
  ::close(fd);  // the mapping keeps the file alive
  if (addr == MAP_FAILED)
    return error{fmt::format("{}: cannot mmap {} bytes: {}", path, size, std::strerror(map_errno))};
  std::shared_ptr<const void> mapping(addr, [size](const void* p) {
    ::munmap(const_cast<void*>(p), size);
  });
  auto parsed =
      parse(path, std::span<const uint8_t>(static_cast<const uint8_t*>(addr), size), options);
  if (!parsed) return parsed.err();
  parsed->mapping_ = std::move(mapping);
  return parsed;
}

result<gguf_file> gguf_file::parse(std::string name, std::span<const uint8_t> bytes,
                                    gguf_open_options options) {
  gguf_file f;
  f.path_ = std::move(name);
  f.bytes_ = bytes;
  gguf_cursor cur(bytes);
  parse_context ctx{f.path_, cur};
  ctx.allow_unsupported_types = options.allow_unsupported_types;

  if (bytes.size() < k_header_bytes)
    return make_error(ctx, 0, fmt::format("file is {} bytes, too short for a GGUF header ({} "
                                          "bytes)", bytes.size(), k_header_bytes));
  uint32_t magic = 0;
  TROUPE_ASSERT(cur.read(magic));
  if (magic != k_gguf_magic)
    return make_error(ctx, 0, fmt::format("bad magic 0x{:08x} (a GGUF file starts with \"GGUF\")",
                                          magic));
  TROUPE_ASSERT(cur.read(f.version_));
  if (f.version_ != 0 && (f.version_ & 0xFFFF) == 0)
    return make_error(ctx, 4, fmt::format("unsupported GGUF version 0x{:08x}: looks like a "
                                          "big-endian file, troupe reads little-endian only",
                                          f.version_));
  if (f.version_ != 2 && f.version_ != 3)
    return make_error(ctx, 4, fmt::format("unsupported GGUF version {} (troupe reads versions 2 "
                                          "and 3)", f.version_));
  uint64_t n_tensors = 0, n_kv = 0;
  TROUPE_ASSERT(cur.read(n_tensors) && cur.read(n_kv));
  // Each kv needs at least k_min_kv_bytes and each tensor info k_min_tensor_info_bytes after
  // the header; check both counts before reading anything else.
  if (auto s = check_count(ctx, n_kv, k_min_kv_bytes, 16, "kv_count"); !s) return s.err();
  if (auto s = check_count(ctx, n_tensors, k_min_tensor_info_bytes, 8, "tensor_count"); !s)
    return s.err();
  {
    uint64_t need = 0;
    if (__builtin_mul_overflow(n_kv, k_min_kv_bytes, &need) ||
        __builtin_add_overflow(need, n_tensors * k_min_tensor_info_bytes, &need) ||
        need > cur.remaining())
      return make_error(ctx, 8, fmt::format("tensor_count {} and kv_count {} together need more "
                                            "than the {} bytes left in the file", n_tensors, n_kv,
                                            cur.remaining()));
  }

  f.kvs_.reserve(n_kv);
  std::unordered_set<std::string_view> keys;
  keys.reserve(n_kv);
  for (uint64_t i = 0; i < n_kv; ++i) {
    const uint64_t pos = cur.pos();
    auto kv = gguf_detail::read_kv(ctx, i);
    if (!kv) return kv.err();
    if (!keys.insert(kv->key).second)
      return make_error(ctx, pos, fmt::format("duplicate metadata key '{}'", kv->key));
    f.kvs_.push_back(std::move(*kv));
  }
  auto alignment = read_alignment(ctx, f.find("general.alignment"));
  if (!alignment) return alignment.err();
  f.alignment_ = *alignment;

  f.tensors_.reserve(n_tensors);
  std::unordered_set<std::string_view> names;
  names.reserve(n_tensors);
  for (uint64_t i = 0; i < n_tensors; ++i) {
    const uint64_t pos = cur.pos();
    auto t = gguf_detail::read_tensor_info(ctx, i);
    if (!t) return t.err();
    if (!names.insert(t->name).second)
      return make_error(ctx, pos, fmt::format("duplicate tensor name '{}'", t->name));
    f.tensors_.push_back(*t);
  }

  // The data section starts at the next multiple of the alignment. A file without tensors may
  // end right after the infos; one with tensors must hold them all (place_tensors checks).
  uint64_t data_start = 0;
  if (__builtin_add_overflow(cur.pos(), f.alignment_ - 1, &data_start))
    return make_error(ctx, cur.pos(), "data section start overflows");
  data_start -= data_start % f.alignment_;
  if (auto s = gguf_detail::place_tensors(f.path_, bytes, data_start, f.alignment_, f.tensors_);
      !s)
    return s.err();
  return f;
}

const gguf_value* gguf_file::find(std::string_view key) const {
  for (const auto& kv : kvs_)
    if (kv.key == key) return &kv.value;
  return nullptr;
}

const gguf_tensor_info* gguf_file::find_tensor(std::string_view name) const {
  for (const auto& t : tensors_)
    if (t.name == name) return &t;
  return nullptr;
}

}  // namespace troupe
