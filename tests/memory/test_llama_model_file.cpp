// load_llama_model: a tiny llama file built in memory loads with the right hparams and views;
// each missing key, bad head count, missing tensor or wrong shape is refused by name; the
// default model loads with the facts of the brief.
#include <catch2/catch.hpp>

#include <filesystem>
#include <vector>

#include "memory/dequantize.hpp"
#include "memory/llama_model_file.hpp"
#include "tests/memory/gguf_builder.hpp"

using namespace troupe;
using namespace troupe::test;

namespace {

// n_embd 64, 4 heads of 16, 2 kv heads, n_ff 96, 2 layers, vocab 10. Integer widths vary on
// purpose (u32, u64, i32) because writers disagree.
gguf_builder tiny_llama() {
  gguf_builder g;
  g.kv_str("general.architecture", "llama")
      .kv("llama.context_length", 5, encode<int32_t>(256))
      .kv_u32("llama.embedding_length", 64)
      .kv("llama.block_count", 10, encode<uint64_t>(2))
      .kv_u32("llama.feed_forward_length", 96)
      .kv_u32("llama.attention.head_count", 4)
      .kv_u32("llama.attention.head_count_kv", 2)
      .kv_f32("llama.attention.layer_norm_rms_epsilon", 1e-6f)
      .kv_u32("llama.vocab_size", 10);
  g.tensor("token_embd.weight", 8, {64, 10}).tensor("output_norm.weight", 0, {64});
  for (int i = 0; i < 2; ++i) {
    const auto n = [i](const char* w) { return "blk." + std::to_string(i) + "." + w + ".weight"; };
    g.tensor(n("attn_norm"), 0, {64})
        .tensor(n("attn_q"), 3, {64, 64})
        .tensor(n("attn_k"), 3, {64, 32})
        .tensor(n("attn_v"), 2, {64, 32})
        .tensor(n("attn_output"), 3, {64, 64})
        .tensor(n("ffn_norm"), 0, {64})
        .tensor(n("ffn_gate"), 1, {64, 96})
        .tensor(n("ffn_up"), 30, {64, 96})
        .tensor(n("ffn_down"), 3, {96, 64});
  }
  return g;
}

// Keeps the bytes alive next to the loaded model.
struct loaded {
  bytes data;
  result<llama_model_file> model = error{"not loaded"};
};

loaded load(const gguf_builder& g) {
  loaded l{g.build()};
  auto f = gguf_file::parse("llama.gguf", std::span<const uint8_t>(l.data.data(), l.data.size()));
  if (!f) {
    l.model = f.err();
    return l;
  }
  l.model = load_llama_model(std::move(*f));
  return l;
}

std::string load_error(const gguf_builder& g) {
  auto l = load(g);
  REQUIRE_FALSE(l.model.ok());
  CHECK_THAT(l.model.message(), Catch::StartsWith("llama.gguf: "));
  return l.model.message();
}

}  // namespace

TEST_CASE("a tiny llama file loads with its hparams and weight views", "[llama]") {
  auto l = load(tiny_llama());
  REQUIRE(l.model.ok());
  const auto& m = *l.model;
  const auto& hp = m.hparams;
  CHECK(hp.n_vocab == 10);
  CHECK(hp.n_ctx_train == 256);
  CHECK(hp.n_embd == 64);
  CHECK(hp.n_layer == 2);
  CHECK(hp.n_ff == 96);
  CHECK(hp.n_head == 4);
  CHECK(hp.n_head_kv == 2);
  CHECK(hp.head_dim == 16);
  CHECK(hp.n_rot == 16);
  CHECK(hp.rms_eps == 1e-6f);
  CHECK(hp.rope_freq_base == 10000.0f);  // absent: llama default
  const auto& w = m.weights;
  CHECK(w.output_tied);
  CHECK(w.output.data == w.token_embd.data);
  CHECK(w.token_embd.type == ggml_type::q8_0);
  CHECK(w.token_embd.ne0 == 64);
  CHECK(w.token_embd.ne1 == 10);
  CHECK(w.token_embd.row_bytes == 2 * 34);
  REQUIRE(w.layers.size() == 2);
  const auto& l1 = w.layers[1];
  CHECK(l1.wk.name == "blk.1.attn_k.weight");
  CHECK(l1.wk.ne0 == 64);
  CHECK(l1.wk.ne1 == 32);
  CHECK(l1.wv.type == ggml_type::q4_0);
  CHECK(l1.w_gate.type == ggml_type::f16);
  CHECK(l1.w_up.type == ggml_type::bf16);
  CHECK(l1.w_down.ne0 == 96);
  CHECK(l1.w_down.row_bytes == 3 * 20);
  CHECK(l1.attn_norm.ne1 == 1);
  CHECK(l1.wq.data == m.file.find_tensor("blk.1.attn_q.weight")->data);
  CHECK(l1.wq.row(1) == l1.wq.data + 40);
}

TEST_CASE("hparams: any integer width, explicit head size, rope base, untied output", "[llama]") {
  auto g = tiny_llama();
  g.find_kv("llama.embedding_length")->type = 2;  // uint16
  g.find_kv("llama.embedding_length")->payload = encode<uint16_t>(64);
  g.kv("llama.rope.freq_base", 12, encode<double>(100000.0))
      .kv_u32("llama.rope.dimension_count", 8)
      .kv_u32("llama.attention.key_length", 16);
  g.remove_kv("llama.vocab_size");
  g.kv_str_array("tokenizer.ggml.tokens", {"a", "b", "c", "d", "e", "f", "g", "h", "i", "j"});
  g.tensor("output.weight", 3, {64, 10});
  auto l = load(g);
  REQUIRE(l.model.ok());
  CHECK(l.model->hparams.n_embd == 64);
  CHECK(l.model->hparams.rope_freq_base == 100000.0f);
  CHECK(l.model->hparams.n_rot == 8);
  CHECK(l.model->hparams.n_vocab == 10);
  CHECK_FALSE(l.model->weights.output_tied);
  CHECK(l.model->weights.output.type == ggml_type::q4_1);
  CHECK(l.model->weights.output.data != l.model->weights.token_embd.data);
}

TEST_CASE("missing required llama keys are named", "[llama][malformed]") {
  for (const char* key : {"llama.context_length", "llama.embedding_length", "llama.block_count",
                          "llama.feed_forward_length", "llama.attention.head_count",
                          "llama.attention.layer_norm_rms_epsilon"}) {
    auto g = tiny_llama();
    g.remove_kv(key);
    CHECK_THAT(load_error(g), Catch::Contains(std::string("missing required llama key '") + key));
  }
  auto g = tiny_llama();
  g.remove_kv("general.architecture");
  CHECK_THAT(load_error(g), Catch::Contains("missing required key 'general.architecture'"));
}

TEST_CASE("not llama, bad values, inconsistent heads", "[llama][malformed]") {
  auto g = tiny_llama();
  g.find_kv("general.architecture")->payload = encode_string("gpt2");
  CHECK_THAT(load_error(g), Catch::Contains("architecture is 'gpt2', but troupe runs only 'llama'"));

  g = tiny_llama();
  g.find_kv("llama.attention.head_count_kv")->payload = encode<uint32_t>(3);
  CHECK_THAT(load_error(g), Catch::Contains("head_count 4 is not a multiple of head_count_kv 3"));

  g = tiny_llama();
  g.find_kv("llama.attention.head_count")->payload = encode<uint32_t>(5);
  g.find_kv("llama.attention.head_count_kv")->payload = encode<uint32_t>(5);
  CHECK_THAT(load_error(g), Catch::Contains("embedding_length 64 is not a multiple of head_count 5"));

  g = tiny_llama();
  g.find_kv("llama.block_count")->payload = encode<uint64_t>(0);
  CHECK_THAT(load_error(g), Catch::Contains("'llama.block_count' is 0, outside 1.."));

  g = tiny_llama();
  g.find_kv("llama.feed_forward_length")->type = 8;
  g.find_kv("llama.feed_forward_length")->payload = encode_string("96");
  CHECK_THAT(load_error(g), Catch::Contains("'llama.feed_forward_length' must be a non-negative "
                                            "integer, but is stored as string"));

  g = tiny_llama();
  g.find_kv("llama.attention.layer_norm_rms_epsilon")->payload = encode<float>(-1.0f);
  CHECK_THAT(load_error(g), Catch::Contains("not a positive finite number"));

  g = tiny_llama();
  g.kv_str("llama.rope.scaling.type", "yarn");
  CHECK_THAT(load_error(g), Catch::Contains("RoPE scaling is not supported"));

  g = tiny_llama();
  g.kv_f32("llama.rope.scale_linear", 4.0f);
  CHECK_THAT(load_error(g), Catch::Contains("scale_linear is set: RoPE scaling is not supported"));
  g = tiny_llama();
  g.kv_str("llama.rope.scaling.type", "none");
  g.kv_f32("llama.rope.scale_linear", 1.0f);
  CHECK(load(g).model.ok());
}

TEST_CASE("missing tensors and wrong shapes are named", "[llama][malformed]") {
  auto g = tiny_llama();
  g.remove_tensor("blk.1.ffn_down.weight");
  CHECK_THAT(load_error(g), Catch::Contains("missing llama tensor 'blk.1.ffn_down.weight'"));

  // A block_count far beyond the tensors present is a missing tensor, not a huge allocation
  // (fuzz/corpus/gguf_file/regress-huge-block-count).
  g = tiny_llama();
  g.find_kv("llama.block_count")->payload = encode<uint64_t>(INT32_MAX);
  CHECK_THAT(load_error(g), Catch::Contains("missing llama tensor 'blk.2.attn_norm.weight'"));

  g = tiny_llama();
  g.remove_tensor("output_norm.weight");
  CHECK_THAT(load_error(g), Catch::Contains("missing llama tensor 'output_norm.weight'"));

  g = tiny_llama();
  g.find_tensor("blk.0.attn_k.weight")->ne = {64, 64};
  g.find_tensor("blk.0.attn_k.weight")->data.resize(64 * 64 / 32 * 20);
  CHECK_THAT(load_error(g), Catch::Contains("llama tensor 'blk.0.attn_k.weight' has the wrong "
                                            "shape: expected [64, 32], got [64, 64]"));

  g = tiny_llama();
  g.find_tensor("token_embd.weight")->ne = {64, 5, 2};
  CHECK_THAT(load_error(g), Catch::Contains("'token_embd.weight' has the wrong shape: expected "
                                            "[64, 10], got [64, 5, 2]"));

  g = tiny_llama();
  g.find_tensor("blk.1.ffn_norm.weight")->type_id = 1;
  g.find_tensor("blk.1.ffn_norm.weight")->data.resize(128);
  CHECK_THAT(load_error(g), Catch::Contains("'blk.1.ffn_norm.weight' is F16, but norm weights "
                                            "must be F32"));

  g = tiny_llama();
  g.tensor("blk.0.attn_q.bias", 0, {64});
  CHECK_THAT(load_error(g), Catch::Contains("tensor 'blk.0.attn_q.bias' (a bias) is not supported"));
}

TEST_CASE("a leniently parsed llama with a type troupe cannot run is refused", "[llama]") {
  auto g = tiny_llama();
  g.find_tensor("blk.0.ffn_up.weight")->type_id = 20;  // IQ4_NL
  g.find_tensor("blk.0.ffn_up.weight")->data.resize(64 * 96 / 32 * 18);
  const auto b = g.build();
  auto f = gguf_file::parse("llama.gguf", std::span<const uint8_t>(b.data(), b.size()),
                            {.allow_unsupported_types = true});
  REQUIRE(f.ok());
  auto m = load_llama_model(std::move(*f));
  REQUIRE_FALSE(m.ok());
  CHECK_THAT(m.message(), Catch::Contains("llama tensor 'blk.0.ffn_up.weight' has type IQ4_NL (id "
                                          "20), which troupe does not support"));
}

TEST_CASE("the default model loads with the hparams of the brief", "[llama][model]") {
  const std::string path = TROUPE_DEFAULT_MODEL;
  if (!std::filesystem::exists(path)) FAIL("default model missing at " << path << ": run make model");
  auto m = load_llama_model(path);
  REQUIRE(m.ok());
  const auto& hp = m->hparams;
  CHECK(m->file.version() == 3);
  CHECK(m->file.tensors().size() == 272);
  CHECK(hp.n_vocab == 49152);
  CHECK(hp.n_ctx_train == 8192);
  CHECK(hp.n_embd == 576);
  CHECK(hp.n_layer == 30);
  CHECK(hp.n_ff == 1536);
  CHECK(hp.n_head == 9);
  CHECK(hp.n_head_kv == 3);
  CHECK(hp.head_dim == 64);
  CHECK(hp.n_rot == 64);
  CHECK(hp.rms_eps == 1e-5f);
  CHECK(hp.rope_freq_base == 100000.0f);
  CHECK(m->weights.output_tied);
  CHECK(m->weights.token_embd.type == ggml_type::q8_0);
  CHECK(m->weights.layers[29].w_down.type == ggml_type::q4_1);
  CHECK(m->weights.layers[0].attn_norm.type == ggml_type::f32);

  // Embedding rows are distinct, finite, small vectors.
  std::vector<float> row(576), other(576);
  const auto& e = m->weights.token_embd;
  dequantize_row(e.type, e.row(1), row.data(), e.ne0);
  dequantize_row(e.type, e.row(e.ne1 - 1), other.data(), e.ne0);
  double norm = 0;
  for (float v : row) {
    REQUIRE(std::isfinite(v));
    norm += double(v) * v;
  }
  CHECK(norm > 0.01);
  CHECK(norm < 1e4);
  CHECK(row != other);
}
