// Fuzz target: the GGUF reader and what reads a parsed file (hostile model files).
//
// Contract (memory/gguf_file.hpp): any bytes give a gguf_file or an error, never a crash, a hang
// or a huge allocation; a parsed file's tensor data lies inside the bytes. A parsed file then goes
// through everything that reads GGUF metadata: the summary of `troupe inspect`, the llama loader
// and the tokenizer loader (which must refuse, not crash on, a hostile vocabulary).
#include <cstddef>
#include <cstdint>
#include <span>
#include <string>

#include "fuzz/fuzz_check.hpp"
#include "memory/gguf_file.hpp"
#include "memory/gguf_summary.hpp"
#include "memory/llama_model_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace {

using namespace troupe;

// Reads every accessor of a value and of an array's elements (the parser refuses nested arrays;
// the recursion would still cover them).
std::size_t walk(const gguf_value& v) {
  std::size_t n = 1;
  (void)v.as_uint();
  (void)v.as_int();
  (void)v.as_float();
  (void)v.as_bool();
  if (auto s = v.as_string()) n += s->empty() ? 0 : static_cast<unsigned char>(s->back());
  if (const auto* a = v.as_array()) {
    for (const auto& e : a->elements) {
      FUZZ_CHECK(e.type == a->elem_type);
      n += walk(e);
    }
  }
  return n;
}

void check_file(const gguf_file& f, std::span<const uint8_t> bytes) {
  std::size_t sink = 0;
  for (const auto& kv : f.metadata()) {
    sink += walk(kv.value);
    FUZZ_CHECK(f.find(kv.key) != nullptr);
  }
  const uint8_t* begin = bytes.data();
  const uint8_t* end = begin + bytes.size();
  for (const auto& t : f.tensors()) {
    FUZZ_CHECK(f.find_tensor(t.name) != nullptr);
    if (t.n_bytes == 0) continue;
    // Inside the bytes: compare as integers, so a wild pointer is a finding, not UB here.
    const auto p = reinterpret_cast<std::uintptr_t>(t.data);
    FUZZ_CHECK(p >= reinterpret_cast<std::uintptr_t>(begin));
    FUZZ_CHECK(p <= reinterpret_cast<std::uintptr_t>(end));
    FUZZ_CHECK(t.n_bytes <= static_cast<uint64_t>(end - t.data));
    sink += t.data[0] + t.data[t.n_bytes - 1];  // ASan checks both ends
  }
  (void)summarize_gguf(f);
  (void)load_llama_model(f);
  if (auto tok = tokenizer::from_gguf(f)) {
    auto ids = tok->encode("Hello <|im_start|> world 123", true, true);
    for (auto id : ids) FUZZ_CHECK(tok->is_valid(id));
    sink += tok->decode(ids, true).size();
  }
  asm volatile("" : : "r"(sink));
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::span<const uint8_t> bytes(data, size);
  for (bool allow_unsupported : {false, true}) {
    auto f = gguf_file::parse("fuzz.gguf", bytes, {.allow_unsupported_types = allow_unsupported});
    if (!f) {
      FUZZ_CHECK(!f.err().message.empty());
      continue;
    }
    check_file(*f, bytes);
  }
  return 0;
}
