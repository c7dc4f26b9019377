#include "frontend/system_fingerprint.hpp"

#include <fmt/format.h>
#include <xxhash.h>

#include <fstream>
#include <vector>

namespace troupe::frontend {

namespace {

constexpr std::size_t edge_bytes = 1u << 20;

// Feeds the whole file (whole = true) or its size and first and last edge_bytes.
void hash_file(XXH3_state_t* st, const std::string& path, bool whole) {
  std::ifstream in(path, std::ios::binary | std::ios::ate);
  if (!in) {
    XXH3_64bits_update(st, path.data(), path.size());
    return;
  }
  const auto size = static_cast<std::uint64_t>(in.tellg());
  XXH3_64bits_update(st, &size, sizeof size);
  std::vector<char> buf(edge_bytes);
  auto feed_from = [&](std::uint64_t offset, std::uint64_t n) {
    in.seekg(static_cast<std::streamoff>(offset));
    while (n > 0 && in) {
      const auto want = static_cast<std::streamsize>(std::min<std::uint64_t>(n, buf.size()));
      in.read(buf.data(), want);
      const auto got = in.gcount();
      if (got <= 0) break;
      XXH3_64bits_update(st, buf.data(), static_cast<std::size_t>(got));
      n -= static_cast<std::uint64_t>(got);
    }
  };
  if (whole || size <= 2 * edge_bytes) return feed_from(0, size);
  feed_from(0, edge_bytes);
  feed_from(size - edge_bytes, edge_bytes);
}

}  // namespace

std::string make_system_fingerprint(const std::string& executable_path,
                                    const std::string& model_path, std::string_view arithmetic) {
  XXH3_state_t* st = XXH3_createState();
  XXH3_64bits_reset(st);
  hash_file(st, executable_path, /*whole=*/true);
  hash_file(st, model_path, /*whole=*/false);
  XXH3_64bits_update(st, arithmetic.data(), arithmetic.size());
  const auto h = XXH3_64bits_digest(st);
  XXH3_freeState(st);
  return fmt::format("fp_{:016x}", h);
}

}  // namespace troupe::frontend
