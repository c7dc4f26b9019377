// Valid GGUF files: every metadata type reads back with its stored type and value, arrays,
// v2 and v3, custom alignment, tensor infos and data pointers, and open() from disk.
#include <catch2/catch.hpp>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include "memory/gguf_file.hpp"
#include "tests/memory/gguf_builder.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

result<gguf_file> parse_bytes(const bytes& b) {
  return gguf_file::parse("mem.gguf", std::span<const uint8_t>(b.data(), b.size()));
}

std::filesystem::path write_temp(const std::string& name, const bytes& b) {
  auto path = std::filesystem::temp_directory_path() / ("troupe_test_" + name);
  std::ofstream(path, std::ios::binary)
      .write(reinterpret_cast<const char*>(b.data()), static_cast<std::streamsize>(b.size()));
  return path;
}

}  // namespace

TEST_CASE("every metadata value type reads back with its type and value", "[gguf]") {
  gguf_builder b;
  b.kv("u8", 0, encode<uint8_t>(200))
      .kv("i8", 1, encode<int8_t>(-5))
      .kv("u16", 2, encode<uint16_t>(60000))
      .kv("i16", 3, encode<int16_t>(-30000))
      .kv("u32", 4, encode<uint32_t>(4000000000u))
      .kv("i32", 5, encode<int32_t>(-2000000000))
      .kv("f32", 6, encode<float>(1.5f))
      .kv("bool", 7, encode<uint8_t>(1))
      .kv_str("str", "héllo")
      .kv("u64", 10, encode<uint64_t>(UINT64_MAX))
      .kv("i64", 11, encode<int64_t>(INT64_MIN))
      .kv("f64", 12, encode<double>(-2.25));
  const auto bytes_ = b.build();
  auto f = parse_bytes(bytes_);
  REQUIRE(f.ok());
  CHECK(f->version() == 3);
  CHECK(f->metadata().size() == 12);
  CHECK(f->find("u8")->type == gguf_value_type::uint8);
  CHECK(f->find("u8")->as_uint() == 200u);
  CHECK(f->find("i8")->as_int() == -5);
  CHECK_FALSE(f->find("i8")->as_uint().has_value());
  CHECK(f->find("u16")->as_uint() == 60000u);
  CHECK(f->find("i16")->as_int() == -30000);
  CHECK(f->find("u32")->as_uint() == 4000000000u);
  CHECK(f->find("u32")->as_int() == 4000000000);
  CHECK(f->find("i32")->as_int() == -2000000000);
  CHECK(f->find("f32")->as_float() == 1.5);
  CHECK_FALSE(f->find("f32")->as_int().has_value());
  CHECK(f->find("bool")->as_bool() == true);
  CHECK(f->find("str")->as_string() == "héllo");
  CHECK(f->find("u64")->as_uint() == UINT64_MAX);
  CHECK_FALSE(f->find("u64")->as_int().has_value());
  CHECK(f->find("i64")->as_int() == INT64_MIN);
  CHECK(f->find("f64")->type == gguf_value_type::float64);
  CHECK(f->find("f64")->as_float() == -2.25);
  CHECK(f->find("absent") == nullptr);
  CHECK(f->tensors().empty());
}

TEST_CASE("arrays of numbers and strings, and an empty array", "[gguf]") {
  gguf_builder b;
  bytes ints;
  put<uint32_t>(ints, 5);  // int32 elements
  put<uint64_t>(ints, 3);
  for (int32_t v : {1, -2, 3}) put(ints, v);
  bytes empty;
  put<uint32_t>(empty, 6);
  put<uint64_t>(empty, 0);
  b.kv("ints", 9, ints).kv("empty", 9, empty).kv_str_array("words", {"a", "", "ccc"});
  const auto bytes_ = b.build();
  auto f = parse_bytes(bytes_);
  REQUIRE(f.ok());
  const gguf_array* a = f->find("ints")->as_array();
  REQUIRE(a != nullptr);
  CHECK(a->elem_type == gguf_value_type::int32);
  REQUIRE(a->elements.size() == 3);
  CHECK(a->elements[1].as_int() == -2);
  CHECK(f->find("empty")->as_array()->elements.empty());
  const gguf_array* w = f->find("words")->as_array();
  REQUIRE(w->elements.size() == 3);
  CHECK(w->elements[0].as_string() == "a");
  CHECK(w->elements[1].as_string() == "");
  CHECK(w->elements[2].as_string() == "ccc");
}

TEST_CASE("tensor infos, data pointers and row bytes", "[gguf]") {
  for (uint32_t version : {2u, 3u}) {
    auto b = small_valid_file();
    b.version = version;
    const auto bytes_ = b.build();
    auto f = parse_bytes(bytes_);
    REQUIRE(f.ok());
    CHECK(f->version() == version);
    CHECK(f->alignment() == 32);
    REQUIRE(f->tensors().size() == 2);
    const auto* a = f->find_tensor("a.weight");
    REQUIRE(a != nullptr);
    CHECK(a->type == ggml_type::f32);
    CHECK(a->n_dims == 2);
    CHECK(a->ne == std::array<uint64_t, 4>{4, 2, 1, 1});
    CHECK(a->n_elements == 8);
    CHECK(a->n_bytes == 32);
    // a (32 bytes) starts the data section; b (3 rows of one Q8_0 block) follows at offset 32
    // and ends the file.
    const auto* b8 = f->find_tensor("b.weight");
    REQUIRE(b8 != nullptr);
    CHECK(b8->type == ggml_type::q8_0);
    CHECK(b8->offset == 32);
    CHECK(b8->n_bytes == 3 * 34);
    CHECK(b8->data == bytes_.data() + bytes_.size() - 3 * 34);
    CHECK(a->data == b8->data - 32);
    CHECK(a->data[5] == static_cast<uint8_t>(5 * 7 + 3));
    CHECK(ggml_row_bytes(b8->type, b8->ne[0]) == 34);
    CHECK(f->find_tensor("c.weight") == nullptr);
  }
}

TEST_CASE("general.alignment moves the data section", "[gguf]") {
  auto b = small_valid_file();
  b.alignment = 64;
  b.kv_u32("general.alignment", 64);
  const auto bytes_ = b.build();
  auto f = parse_bytes(bytes_);
  REQUIRE(f.ok());
  CHECK(f->alignment() == 64);
  CHECK(f->find_tensor("b.weight")->offset == 64);
  CHECK((f->find_tensor("a.weight")->data - bytes_.data()) % 64 == 0);
}

TEST_CASE("ggml type table names every type and marks the supported ones", "[gguf]") {
  CHECK(std::string(ggml_type_name(ggml_type::q4_1)) == "Q4_1");
  CHECK(std::string(ggml_type_name(12)) == "Q4_K");
  CHECK(std::string(ggml_type_name(4)) == "unknown");
  CHECK_FALSE(ggml_type_info(4).has_value());
  CHECK(ggml_type_info(30)->block_bytes == 2);
  for (uint32_t id : {0u, 1u, 2u, 3u, 6u, 7u, 8u, 12u, 13u, 14u, 30u}) CHECK(ggml_type_is_supported(id));
  // Q8_1 and Q8_K are activation types; Q2_K, Q3_K and the IQ types have no kernels.
  for (uint32_t id : {9u, 10u, 11u, 15u, 20u, 99u}) CHECK_FALSE(ggml_type_is_supported(id));
  CHECK(ggml_row_bytes(ggml_type::q4_k, 512) == 288);
  CHECK(ggml_row_bytes(ggml_type::q6_k, 256) == 210);
  CHECK(ggml_row_bytes(ggml_type::q5_0, 576) == 396);
  CHECK(ggml_row_bytes(ggml_type::q4_1, 576) == 360);
  CHECK(ggml_row_bytes(ggml_type::q4_0, 64) == 36);
  CHECK(ggml_row_bytes(ggml_type::bf16, 3) == 6);
}

TEST_CASE("open() maps a file from disk and names it in errors", "[gguf]") {
  const auto good = write_temp("good.gguf", small_valid_file().build());
  auto f = gguf_file::open(good.string());
  REQUIRE(f.ok());
  CHECK(f->path() == good.string());
  CHECK(f->tensors().size() == 2);
  {
    // Views stay valid in a copy after the original is gone (the mapping is shared).
    auto copy = std::make_unique<gguf_file>(*f);
    f = error{"dropped"};
    CHECK(copy->find("test.words")->as_array()->elements[1].as_string() == "beta");
    CHECK(copy->find_tensor("a.weight")->data[0] == 3);
  }
  std::filesystem::remove(good);

  const auto missing = std::filesystem::temp_directory_path() / "troupe_test_missing.gguf";
  auto m = gguf_file::open(missing.string());
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.message(), Catch::StartsWith(missing.string()));
  CHECK_THAT(m.message(), Catch::Contains("No such file"));

  const auto empty = write_temp("empty.gguf", {});
  auto e = gguf_file::open(empty.string());
  REQUIRE_FALSE(e.ok());
  CHECK_THAT(e.message(), Catch::StartsWith(empty.string()));
  CHECK_THAT(e.message(), Catch::Contains("empty"));
  std::filesystem::remove(empty);

  auto d = gguf_file::open(std::filesystem::temp_directory_path().string());
  REQUIRE_FALSE(d.ok());
  CHECK_THAT(d.message(), Catch::Contains("not a regular file"));
}
