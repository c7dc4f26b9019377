// make_gguf_seeds: writes the seed corpus of fuzz_gguf_file -- small valid GGUF files, one per
// shape of file the readers handle, so the fuzzer starts from inputs that get past the header.
// Usage: make_gguf_seeds <dir>. Made with the tests' gguf_builder; each file is a few KB. The
// names have no .gguf suffix: *.gguf is git-ignored (models).
#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "tests/memory/gguf_builder.hpp"

namespace {

using namespace troupe::test;

// Every metadata type once, arrays of numbers and of booleans; general.alignment.
gguf_builder all_value_types() {
  gguf_builder b;
  b.alignment = 64;
  b.kv("general.alignment", 4, encode<uint32_t>(64))
      .kv("t.u8", 0, encode<uint8_t>(200))
      .kv("t.i8", 1, encode<int8_t>(-5))
      .kv("t.u16", 2, encode<uint16_t>(60000))
      .kv("t.i16", 3, encode<int16_t>(-300))
      .kv("t.i32", 5, encode<int32_t>(-70000))
      .kv("t.bool", 7, encode<uint8_t>(1))
      .kv("t.u64", 10, encode<uint64_t>(uint64_t{1} << 40))
      .kv("t.i64", 11, encode<int64_t>(-(int64_t{1} << 40)))
      .kv("t.f64", 12, encode<double>(2.5));
  bytes nums;
  put<uint32_t>(nums, 6);
  put<uint64_t>(nums, 3);
  for (float f : {1.0f, -2.0f, 0.25f}) put(nums, f);
  b.kv("t.floats", 9, nums);
  bytes flags;  // an array of booleans (arrays of arrays are refused, as llama.cpp does)
  put<uint32_t>(flags, 7);
  put<uint64_t>(flags, 2);
  put<uint8_t>(flags, 1);
  put<uint8_t>(flags, 0);
  b.kv("t.flags", 9, flags);
  b.tensor("x.weight", 1, {8, 2}).tensor("y.weight", 2, {32});
  return b;
}

// A llama model small enough to seed with: n_embd 32, 2 heads of 16, 1 kv head, 1 layer.
gguf_builder tiny_llama() {
  gguf_builder g;
  g.kv_str("general.architecture", "llama")
      .kv("llama.context_length", 5, encode<int32_t>(64))
      .kv_u32("llama.embedding_length", 32)
      .kv("llama.block_count", 10, encode<uint64_t>(1))
      .kv_u32("llama.feed_forward_length", 32)
      .kv_u32("llama.attention.head_count", 2)
      .kv_u32("llama.attention.head_count_kv", 1)
      .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f)
      .kv_u32("llama.vocab_size", 4);
  g.tensor("token_embd.weight", 8, {32, 4}).tensor("output_norm.weight", 0, {32});
  g.tensor("blk.0.attn_norm.weight", 0, {32})
      .tensor("blk.0.attn_q.weight", 8, {32, 32})
      .tensor("blk.0.attn_k.weight", 8, {32, 16})
      .tensor("blk.0.attn_v.weight", 2, {32, 16})
      .tensor("blk.0.attn_output.weight", 3, {32, 32})
      .tensor("blk.0.ffn_norm.weight", 0, {32})
      .tensor("blk.0.ffn_gate.weight", 1, {32, 32})
      .tensor("blk.0.ffn_up.weight", 30, {32, 32})
      .tensor("blk.0.ffn_down.weight", 8, {32, 32});
  return g;
}

// A byte-level BPE vocabulary as llama.cpp's gpt2 tokenizer reads it: tokens, types, merges,
// special ids, a control token and the pre-tokenizer name.
gguf_builder tiny_gpt2_vocab() {
  gguf_builder g;
  std::vector<std::string> tokens = {"<|endoftext|>", "<|im_start|>", "<|im_end|>", "H", "e",
                                     "l", "o", "He", "ll", "Hell", "Hello", "\xc4\xa0", "w",
                                     "\xc4\xa0w", "1", "2"};
  g.kv_str("general.architecture", "llama")
      .kv_str("tokenizer.ggml.model", "gpt2")
      .kv_str("tokenizer.ggml.pre", "smollm")
      .kv_str_array("tokenizer.ggml.tokens", tokens)
      .kv_str_array("tokenizer.ggml.merges", {"H e", "l l", "He ll", "Hell o", "\xc4\xa0 w"});
  bytes types;
  put<uint32_t>(types, 5);
  put<uint64_t>(types, tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) put<int32_t>(types, i < 3 ? 3 : 1);
  g.kv("tokenizer.ggml.token_type", 9, types)
      .kv_u32("tokenizer.ggml.bos_token_id", 1)
      .kv_u32("tokenizer.ggml.eos_token_id", 2)
      .kv("tokenizer.ggml.add_bos_token", 7, encode<uint8_t>(0));
  return g;
}

bool write(const std::string& dir, const char* name, const gguf_builder& b) {
  const auto data = b.build();
  std::ofstream out(dir + "/" + name, std::ios::binary);
  out.write(reinterpret_cast<const char*>(data.data()), static_cast<std::streamsize>(data.size()));
  std::printf("%s/%s: %zu bytes\n", dir.c_str(), name, data.size());
  return static_cast<bool>(out);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: make_gguf_seeds <dir>\n");
    return 2;
  }
  const std::string dir = argv[1];
  auto v2 = small_valid_file();
  v2.version = 2;
  bool ok = write(dir, "seed-small_valid", small_valid_file()) &&
            write(dir, "seed-small_v2", v2) &&
            write(dir, "seed-all_value_types", all_value_types()) &&
            write(dir, "seed-tiny_llama", tiny_llama()) &&
            write(dir, "seed-tiny_gpt2_vocab", tiny_gpt2_vocab());
  return ok ? 0 : 1;
}
