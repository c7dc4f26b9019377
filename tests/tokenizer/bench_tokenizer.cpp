// Tokenizer speed on ~100 KB of English (hidden: run with `test_tokenizer "[.bench]"`). Prints
// the median of 7 runs; no timing is asserted. tools/gen-tokenizer-oracle --bench times
// llama.cpp on the same bytes and prints the same id checksum.
#include <catch2/catch.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "oracle_data.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

constexpr size_t bench_bytes = 100000;

// The license texts Debian ships, regular files in byte order of their names, cut at 100000
// bytes -- the same bytes as bench_text() in tools/gen-tokenizer-oracle.
std::string bench_text() {
  namespace fs = std::filesystem;
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator("/usr/share/common-licenses"))
    if (e.is_regular_file() && !e.is_symlink()) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  std::string text;
  for (const auto& n : names) {
    std::ifstream in("/usr/share/common-licenses/" + n, std::ios::binary);
    std::ostringstream ss;
    ss << in.rdbuf();
    text += ss.str();
    if (text.size() >= bench_bytes) break;
  }
  text.resize(std::min(text.size(), bench_bytes));
  return text;
}

uint64_t ids_fnv1a(const std::vector<int32_t>& ids) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (int32_t id : ids) {
    const auto u = static_cast<uint32_t>(id);
    for (int k = 0; k < 4; ++k) h = (h ^ ((u >> (8 * k)) & 0xFF)) * 0x100000001b3ULL;
  }
  return h;
}

}  // namespace

TEST_CASE("tokenize ~100 KB of English", "[.bench]") {
  const auto& tok = default_tokenizer();
  const std::string text = bench_text();
  REQUIRE(text.size() == bench_bytes);
  std::vector<double> ms;
  std::vector<int32_t> ids;
  for (int run = 0; run < 7; ++run) {
    const auto t0 = std::chrono::steady_clock::now();
    ids = tok.encode(text, false, true);
    const auto t1 = std::chrono::steady_clock::now();
    ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
  }
  std::sort(ms.begin(), ms.end());
  std::printf("troupe: %zu bytes -> %zu tokens (ids fnv1a %016llx), median %.2f ms over %zu runs (min %.2f ms)\n",
              text.size(), ids.size(), static_cast<unsigned long long>(ids_fnv1a(ids)), ms[ms.size() / 2],
              ms.size(), ms.front());
  CHECK(tok.decode(ids, true) == text);
}
