// Malformed GGUF files: each fault gives an error that starts with the file name and names the
// fault -- never a crash, a hang or a huge allocation (run these under ASan/UBSan).
#include <catch2/catch.hpp>

#include <chrono>
#include <memory>

#include "memory/gguf_file.hpp"
#include "tests/memory/gguf_builder.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

constexpr const char* k_name = "bad.gguf";

// Parses a copy in a buffer of exactly b.size() bytes, so ASan sees any read past the end.
result<gguf_file> parse_exact(const bytes& b, std::unique_ptr<uint8_t[]>& keep) {
  keep = std::make_unique<uint8_t[]>(b.size() + (b.empty() ? 1 : 0));
  if (!b.empty()) std::memcpy(keep.get(), b.data(), b.size());
  return gguf_file::parse(k_name, std::span<const uint8_t>(keep.get(), b.size()));
}

// The error message for `b`; fails the test if it parses.
std::string parse_error(const bytes& b) {
  std::unique_ptr<uint8_t[]> keep;
  auto f = parse_exact(b, keep);
  REQUIRE_FALSE(f.ok());
  CHECK_THAT(f.message(), Catch::StartsWith(std::string(k_name) + ": "));
  return f.message();
}

std::string parse_error(const gguf_builder& g) { return parse_error(g.build()); }

}  // namespace

TEST_CASE("bad magic", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.magic = 0x46554746;
  const auto msg = parse_error(g);
  CHECK_THAT(msg, Catch::Contains("bad magic") && Catch::Contains("at byte offset 0"));
}

TEST_CASE("unknown versions 0, 1 and 4; big-endian file", "[gguf][malformed]") {
  for (uint32_t v : {0u, 1u, 4u}) {
    auto g = small_valid_file();
    g.version = v;
    CHECK_THAT(parse_error(g), Catch::Contains("unsupported GGUF version " + std::to_string(v) +
                                               " (troupe reads versions 2 and 3)"));
  }
  auto g = small_valid_file();
  g.version = 0x03000000;
  CHECK_THAT(parse_error(g), Catch::Contains("big-endian"));
}

TEST_CASE("truncated header", "[gguf][malformed]") {
  auto b = small_valid_file().build();
  b.resize(20);
  CHECK_THAT(parse_error(b), Catch::Contains("too short for a GGUF header"));
}

TEST_CASE("absurd tensor and kv counts fail at once, without allocating", "[gguf][malformed]") {
  const auto start = std::chrono::steady_clock::now();
  auto g = small_valid_file();
  g.tensor_count_override = uint64_t{1} << 60;
  CHECK_THAT(parse_error(g), Catch::Contains("tensor_count is 1152921504606846976") &&
                                 Catch::Contains("at byte offset 8"));
  g = small_valid_file();
  g.kv_count_override = uint64_t{1} << 60;
  CHECK_THAT(parse_error(g), Catch::Contains("kv_count is 1152921504606846976") &&
                                 Catch::Contains("at byte offset 16"));
  g = small_valid_file();
  g.kv_count_override = UINT64_MAX;
  CHECK_THAT(parse_error(g), Catch::Contains("kv_count is 18446744073709551615"));
  // A count that fits the bytes left in isolation still fails when the entries run out.
  g = small_valid_file();
  g.kv_count_override = 6;
  CHECK_THAT(parse_error(g), Catch::Contains("metadata"));
  CHECK(std::chrono::steady_clock::now() - start < std::chrono::seconds(1));
}

TEST_CASE("string length past the end of the file", "[gguf][malformed]") {
  gguf_builder g;
  bytes p;
  put<uint64_t>(p, 1000);
  p.insert(p.end(), {'a', 'b', 'c'});
  g.kv("general.name", 8, p);
  CHECK_THAT(parse_error(g), Catch::Contains("string length 1000 of the value of metadata key "
                                             "'general.name' runs past the end of the file"));
  gguf_builder k;  // the key's own length
  k.kv_str("x", "y");
  auto b = k.build();
  b[24] = 0xFF;  // low byte of the key length
  CHECK_THAT(parse_error(b), Catch::Contains("string length 255 of the key of metadata entry 0"));
}

TEST_CASE("array of unknown element type, array of arrays, unknown value type",
          "[gguf][malformed]") {
  gguf_builder g;
  bytes p;
  put<uint32_t>(p, 13);
  put<uint64_t>(p, 1);
  put<uint8_t>(p, 0);
  g.kv("test.arr", 9, p);
  CHECK_THAT(parse_error(g), Catch::Contains("metadata key 'test.arr' is an array of unknown "
                                             "element type 13"));
  gguf_builder n;
  bytes q;
  put<uint32_t>(q, 9);
  put<uint64_t>(q, 1);
  put<uint32_t>(q, 0);
  put<uint64_t>(q, 0);
  n.kv("test.nested", 9, q);
  CHECK_THAT(parse_error(n), Catch::Contains("array of arrays"));
  gguf_builder u;
  u.kv("test.u", 13, encode<uint32_t>(0));
  CHECK_THAT(parse_error(u), Catch::Contains("'test.u' has unknown value type 13"));
}

TEST_CASE("array element count past the end", "[gguf][malformed]") {
  gguf_builder g;
  bytes p;
  put<uint32_t>(p, 8);  // strings: at least 8 bytes each
  put<uint64_t>(p, uint64_t{1} << 58);
  g.kv("tokenizer.ggml.tokens", 9, p);
  CHECK_THAT(parse_error(g), Catch::Contains("claims 288230376151711744 elements of type string"));
}

TEST_CASE("metadata arrays past the per-file element cap are refused before expanding",
          "[gguf][malformed]") {
  // 2^24 + 1 one-byte elements fit the file but would expand to 0.5 GiB of gguf_values.
  const uint64_t n = (uint64_t{1} << 24) + 1;
  gguf_builder g;
  bytes p;
  put<uint32_t>(p, 0);
  put<uint64_t>(p, n);
  p.resize(p.size() + n, 1);
  g.kv("test.big", 9, std::move(p));
  CHECK_THAT(parse_error(g), Catch::Contains("'test.big' has 16777217 elements, past troupe's "
                                             "limit of 16777216"));
}

TEST_CASE("bool other than 0 or 1", "[gguf][malformed]") {
  gguf_builder g;
  g.kv("test.flag", 7, encode<uint8_t>(2));
  CHECK_THAT(parse_error(g), Catch::Contains("'test.flag' is a bool stored as 2"));
}

TEST_CASE("duplicate metadata keys", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.kv_u32("test.count", 8);
  CHECK_THAT(parse_error(g), Catch::Contains("duplicate metadata key 'test.count'"));
}

TEST_CASE("bad general.alignment values", "[gguf][malformed]") {
  for (uint32_t a : {0u, 3u, 48u}) {
    auto g = small_valid_file();
    g.kv_u32("general.alignment", a);
    CHECK_THAT(parse_error(g), Catch::Contains("general.alignment must be a nonzero power of two") &&
                                   Catch::Contains("uint32 " + std::to_string(a)));
  }
  auto g = small_valid_file();
  g.kv("general.alignment", 10, encode<uint64_t>(32));
  CHECK_THAT(parse_error(g), Catch::Contains("stored as uint32 (got uint64 32)"));
}

TEST_CASE("tensor data past the end of the file", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("c.weight", 0, {16, 16}, /*n_bytes=*/100);  // needs 1024
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'c.weight' data (1024 bytes") &&
                                 Catch::Contains("ends past the end of the file"));
  g = small_valid_file();
  g.tensors[1].offset = uint64_t{1} << 63;  // offset + data start overflows nothing, lies outside
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'b.weight'") &&
                                 Catch::Contains("ends past the end of the file"));
  g = small_valid_file();
  g.tensors[1].offset = UINT64_MAX - 31;  // aligned, and data_start + offset overflows
  CHECK_THAT(parse_error(g), Catch::Contains("ends past the end of the file"));
}

TEST_CASE("overlapping tensors", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("c.weight", 0, {8});
  g.tensors.back().offset = 0;  // on top of a.weight
  CHECK_THAT(parse_error(g), Catch::Contains("overlap") && Catch::Contains("'a.weight'") &&
                                 Catch::Contains("'c.weight'"));
}

TEST_CASE("misaligned tensor offset", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensors[1].offset = 40;
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'b.weight' has data offset 40, not a "
                                             "multiple of the alignment 32"));
}

TEST_CASE("n_dims outside 1..4", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("five.weight", 0, {1, 1, 1, 1, 2});
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'five.weight' has n_dims 5 (must be 1 to 4)"));
  g = small_valid_file();
  g.tensor("zero.weight", 0, {}, 4);
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'zero.weight' has n_dims 0"));
}

TEST_CASE("zero-size dimension", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("z.weight", 0, {4, 0}, 0);
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'z.weight' has a zero-size dimension ne[1]"));
}

TEST_CASE("element and byte count overflow", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("huge.weight", 0, {uint64_t{1} << 32, uint64_t{1} << 32, 4}, 32);
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'huge.weight' has shape [4294967296, "
                                             "4294967296, 4], whose element count overflows"));
  g = small_valid_file();
  g.tensor("big.weight", 0, {uint64_t{1} << 31, uint64_t{1} << 31}, 32);  // 2^62 floats
  CHECK_THAT(parse_error(g), Catch::Contains("'big.weight' has shape [2147483648, 2147483648] of "
                                             "F32, whose byte size overflows"));
  g = small_valid_file();
  g.tensor("neg.weight", 0, {uint64_t{1} << 63}, 32);
  CHECK_THAT(parse_error(g), Catch::Contains("past INT64_MAX"));
}

TEST_CASE("duplicate tensor names", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("a.weight", 0, {4});
  CHECK_THAT(parse_error(g), Catch::Contains("duplicate tensor name 'a.weight'"));
}

TEST_CASE("tensor name of 64 bytes or more", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor(std::string(64, 'n'), 0, {4});
  CHECK_THAT(parse_error(g), Catch::Contains("has a name of 64 bytes (GGUF allows at most 63)"));
}

TEST_CASE("unsupported and unknown tensor types", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("blk.0.ffn_up.weight", 11, {256, 2});
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'blk.0.ffn_up.weight' has type Q3_K (id 11), "
                                             "which troupe does not support (supported: F32, "
                                             "F16, Q4_0, Q4_1, Q5_0, Q5_1, Q8_0, Q4_K, Q5_K, "
                                             "Q6_K, BF16)"));
  g = small_valid_file();
  g.tensor("x.weight", 99, {32});
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'x.weight' has unknown type id 99"));
}

TEST_CASE("row length not a multiple of the block size", "[gguf][malformed]") {
  auto g = small_valid_file();
  g.tensor("q.weight", 3, {48, 2}, 60);
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'q.weight' has row length ne[0] = 48, not a "
                                             "multiple of the Q4_1 block size 32"));
  // K-quants: blocks of 256, so the default model's 576-wide rows cannot be Q4_K (llama-quantize
  // falls back to Q5_0 for them); a file that claims otherwise is refused.
  g = small_valid_file();
  g.tensor("blk.0.attn_q.weight", 12, {576, 2}, 576 / 256 * 144 * 2);
  CHECK_THAT(parse_error(g), Catch::Contains("tensor 'blk.0.attn_q.weight' has row length ne[0] = "
                                             "576, not a multiple of the Q4_K block size 256"));
}

TEST_CASE("every truncation of a valid file is an error, never a crash", "[gguf][malformed]") {
  const auto full = small_valid_file().build();
  {
    std::unique_ptr<uint8_t[]> keep;
    REQUIRE(parse_exact(full, keep).ok());
  }
  for (size_t len = 0; len < full.size(); ++len) {
    INFO("prefix of " << len << " bytes out of " << full.size());
    parse_error(bytes(full.begin(), full.begin() + static_cast<std::ptrdiff_t>(len)));
  }
}

TEST_CASE("every single-byte corruption parses or errors, never crashes", "[gguf][malformed]") {
  const auto full = small_valid_file().build();
  size_t errors = 0;
  for (size_t i = 0; i < full.size(); ++i) {
    for (uint8_t v : {uint8_t{0x00}, uint8_t{0x80}, uint8_t{0xFF}}) {
      auto b = full;
      b[i] = v;
      std::unique_ptr<uint8_t[]> keep;
      auto f = parse_exact(b, keep);
      if (!f.ok()) {
        ++errors;
        CHECK_THAT(f.message(), Catch::StartsWith(std::string(k_name) + ": "));
      }
    }
  }
  CHECK(errors > 0);
}
