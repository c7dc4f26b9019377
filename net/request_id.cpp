#include "net/request_id.hpp"

#include <fmt/format.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <random>

namespace troupe::net {

bool is_sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > max_request_id_bytes) return false;
  for (char c : id) {
    const bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                    c == '.' || c == '_' || c == ':' || c == '-';
    if (!ok) return false;
  }
  return true;
}

std::string make_request_id() {
  // Per thread: a generator seeded once from the OS, mixed with a process-wide counter so two
  // threads seeded alike (a poor random_device) still never repeat each other's ids.
  thread_local std::mt19937_64 gen{[] {
    std::random_device rd;
    return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^
           static_cast<std::uint64_t>(
               std::chrono::steady_clock::now().time_since_epoch().count());
  }()};
  static std::atomic<std::uint64_t> counter{0};
  const std::uint64_t hi = gen();
  const std::uint64_t lo = gen() ^ (counter.fetch_add(1, std::memory_order_relaxed) *
                                    0x9e3779b97f4a7c15ull);
  return fmt::format("{:016x}{:016x}", hi, lo);
}

std::string accept_or_make_request_id(std::string_view sent) {
  return is_sane_request_id(sent) ? std::string(sent) : make_request_id();
}

}  // namespace troupe::net
