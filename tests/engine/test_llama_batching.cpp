// Batching is invisible (invariant 2, docs/INVARIANTS.md) at the model level: chunked prefill, a ragged batch
// of 16 mixed sequences on shuffled pages, and another page size all give the logits of the plain
// one-sequence run. Also the input checks of forward().
#include <cmath>
#include <random>

#include "model_fixture.hpp"

using namespace troupe;
using namespace troupe::engine;
using namespace troupe::engine::testing;

namespace {

// Stated tolerance: none. Every kernel computes a token's result with the same arithmetic
// whatever else shares the call (tests/kernels/test_batch_invariance.cpp), so batching, chunking
// and page size must give bitwise identical logits (invariant 2). A tolerance here would
// hide exactly the drift that 8-bit activation quantization amplifies into flipped tokens.
constexpr float batch_tolerance = 0.0f;

std::vector<int32_t> pseudo_text(size_t n, uint32_t seed) {
  // Real-looking ids: common tokens are small, so draw from a skewed range.
  std::mt19937 rng(seed);
  std::vector<int32_t> v(n);
  for (auto& t : v) t = static_cast<int32_t>(std::pow(std::uniform_real_distribution<double>(0, 1)(rng), 3) * 49000) + 17;
  return v;
}

// The checks, for one arithmetic and kernel variant. `scale` sizes the inputs (the reference kernels are slow).
void check_chunked_prefill(const model_options& opts, size_t n_tokens) {
  llama_model model(default_model_file(), test_pool(), opts);
  const auto tokens = pseudo_text(n_tokens, 1);
  auto kv = make_storage(model, 32);
  test_sequence whole{iota_blocks(0, 20), 0};
  const auto ref = feed(model, kv, whole, tokens, tokens.size(), true);
  for (size_t chunk : {size_t{1}, size_t{7}, n_tokens / 3 + 1}) {
    INFO("chunk " << chunk);
    test_sequence s{iota_blocks(0, 20), 0};
    const auto got = feed(model, kv, s, tokens, chunk, true);
    CHECK(max_abs_diff(got, ref) <= batch_tolerance);
  }
}

void check_block_sizes(const model_options& opts, size_t n_tokens) {
  llama_model model(default_model_file(), test_pool(), opts);
  const auto tokens = pseudo_text(n_tokens, 2);
  auto kv16 = make_storage(model, 16, 16);
  auto kv32 = make_storage(model, 8, 32);
  // Pages in reverse order, so the block table really is consulted.
  std::vector<int32_t> rev16 = iota_blocks(0, 16), rev32 = iota_blocks(0, 8);
  std::reverse(rev16.begin(), rev16.end());
  std::reverse(rev32.begin(), rev32.end());
  test_sequence a{rev16, 0}, b{rev32, 0};
  const auto la = feed(model, kv16, a, tokens, 11, true);
  const auto lb = feed(model, kv32, b, tokens, 11, true);
  CHECK(max_abs_diff(la, lb) <= batch_tolerance);
}

// Sequence i: a prefix already in the cache, then this step's new tokens -- one token (decode)
// for odd i, a chunk (prefill) for even i; every fourth wants all logits.
void check_mixed_batch(const model_options& opts, int prefix_base, int chunk_max,
                       int n_seqs = 16) {
  llama_model model(default_model_file(), test_pool(), opts);
  const int64_t V = model.n_vocab();
  constexpr int blocks_per_seq = 6;  // up to 96 positions
  std::vector<std::vector<int32_t>> prefix(n_seqs), step(n_seqs);
  for (int i = 0; i < n_seqs; ++i) {
    prefix[i] = pseudo_text(prefix_base + (i * 5) % 13, 100 + i);
    step[i] = pseudo_text(i % 2 ? 1 : 2 + (i * 7) % chunk_max, 200 + i);
  }
  auto wants_all = [](int i) { return i % 4 == 0; };

  // Alone: each sequence on its own storage, pages in order.
  std::vector<std::vector<float>> alone(n_seqs);
  for (int i = 0; i < n_seqs; ++i) {
    auto kv = make_storage(model, blocks_per_seq);
    test_sequence s{iota_blocks(0, blocks_per_seq), 0};
    feed(model, kv, s, prefix[i], prefix[i].size(), false);
    alone[i] = feed(model, kv, s, step[i], step[i].size(), wants_all(i));
  }

  // Together: one storage, pages shuffled across sequences, prefixes in one batched call, then
  // one batched step of all 16.
  auto kv = make_storage(model, n_seqs * blocks_per_seq);
  std::vector<int32_t> pages = iota_blocks(0, n_seqs * blocks_per_seq);
  std::shuffle(pages.begin(), pages.end(), std::mt19937(7));
  std::vector<std::vector<int32_t>> tables(n_seqs);
  for (int i = 0; i < n_seqs; ++i)
    tables[i].assign(pages.begin() + i * blocks_per_seq, pages.begin() + (i + 1) * blocks_per_seq);

  std::vector<batch_sequence> batch(n_seqs);
  for (int i = 0; i < n_seqs; ++i) {
    batch[i].seq_id = i;
    batch[i].tokens = prefix[i];
    batch[i].first_position = 0;
    batch[i].block_table = tables[i];
  }
  std::vector<float> logits(llama_model::num_logit_rows(batch) * V);
  REQUIRE(model.forward(batch, kv, logits).ok());

  for (int i = 0; i < n_seqs; ++i) {
    batch[i].tokens = step[i];
    batch[i].first_position = static_cast<int32_t>(prefix[i].size());
    batch[i].all_logits = wants_all(i);
  }
  logits.assign(llama_model::num_logit_rows(batch) * V, 0.0f);
  REQUIRE(model.forward(batch, kv, logits).ok());
  int64_t row = 0;
  for (int i = 0; i < n_seqs; ++i) {
    INFO("sequence " << i << " (" << step[i].size() << " new tokens)");
    const int64_t rows = wants_all(i) ? static_cast<int64_t>(step[i].size()) : 1;
    std::vector<float> got(logits.begin() + row * V, logits.begin() + (row + rows) * V);
    CHECK(max_abs_diff(got, alone[i]) <= batch_tolerance);
    row += rows;
  }
}

}  // namespace

// The engine's own batching logic (token layout, positions, pages, logit rows), checked with the
// reference kernels, whose results do not depend on how a step is batched. Scalar code with
// libm fmas is ~1 s per token on this model, so the shapes are the smallest that still cross a
// block (16) and mix decodes with chunks; the SIMD and fast variants below run the big ones.
TEST_CASE("chunked prefill gives the logits of one-piece prefill", "[model][batching]") {
  check_chunked_prefill(exact_options(&kernels::reference_kernels()), 18);
}

TEST_CASE("block size 16 and 32 give the same logits", "[model][batching]") {
  check_block_sizes(exact_options(&kernels::reference_kernels()), 20);
}

TEST_CASE("a batch of mixed sequences gives each sequence's logits alone", "[model][batching]") {
  check_mixed_batch(exact_options(&kernels::reference_kernels()), 2, 5, 6);
}

// The same with the SIMD kernels of this CPU in llama.cpp-exact arithmetic. Their quantized
// matmul is batch-invariant (a token's output is bitwise the same alone or in any batch), so
// chunking and batching must not move a single bit beyond the tolerance.
TEST_CASE("SIMD kernels: chunked prefill == one piece", "[model][batching][simd]") {
  check_chunked_prefill(exact_options(nullptr), 300);
}

TEST_CASE("SIMD kernels: a batch of 16 == each alone", "[model][batching][simd]") {
  check_mixed_batch(exact_options(nullptr), 5, 38);
}

// Attention steps its online softmax over fixed 16-position chunks, not pages, so the page size
// cannot change the summation order.
TEST_CASE("SIMD kernels: block size 16 == 32", "[model][batching][simd]") {
  check_block_sizes(exact_options(nullptr), 150);
}

// The fast arithmetic (the default) promises the same invariance (issue 9, point 3): packed
// 16-bit integer matmuls whose outputs depend on nothing but their row and token, and
// attention with a fixed reduction order per query.
TEST_CASE("fast arithmetic: chunked prefill == one piece", "[model][batching][fast]") {
  check_chunked_prefill(fast_options(), 300);
}

TEST_CASE("fast arithmetic: a batch of 16 == each alone", "[model][batching][fast]") {
  check_mixed_batch(fast_options(), 5, 38);
}

TEST_CASE("fast arithmetic: block size 16 == 32", "[model][batching][fast]") {
  check_block_sizes(fast_options(), 150);
}

TEST_CASE("fast arithmetic: every kernel variant gives the same logits", "[model][batching][fast]") {
  const auto tokens = pseudo_text(70, 9);
  std::vector<float> first;
  for (const kernels::fast_kernel_table* fkt : kernels::available_fast_kernel_tables()) {
    if (fkt == &kernels::reference_fast_kernels()) continue;  // scalar: minutes on 70 tokens
    model_options o = fast_options();
    o.fast_kt = fkt;
    llama_model model(default_model_file(), test_pool(), o);
    auto kv = make_storage(model, 8);
    test_sequence s{iota_blocks(0, 8), 0};
    const auto got = feed(model, kv, s, tokens, 23, true);
    INFO(fkt->name);
    if (first.empty()) first = got;
    CHECK(max_abs_diff(got, first) == 0.0f);
  }
}

// In the fast arithmetic a step runs all its layers in one pool dispatch (llama_model_fused.cpp)
// unless a trace probe is set, which takes the per-op path (run_layer). Both must give the
// same bits, on any number of threads: a prefill chunk, then decode steps.
TEST_CASE("fast arithmetic: the one-dispatch step == the per-op step, on 1 to 3 threads",
          "[model][batching][fast]") {
  const auto prompt = pseudo_text(27, 11), decoded = pseudo_text(9, 12);
  auto run = [&](llama_model& model) {
    auto kv = make_storage(model, 4);
    test_sequence s{iota_blocks(0, 4), 0};
    auto logits = feed(model, kv, s, prompt, 13, true);
    const auto steps = feed(model, kv, s, decoded, 1, true);
    logits.insert(logits.end(), steps.begin(), steps.end());
    return logits;
  };
  llama_model per_op(default_model_file(), test_pool(), fast_options());
  per_op.set_trace([](std::string_view, int32_t, const float*, int64_t, int64_t) {});
  const auto want = run(per_op);
  for (int threads : {1, 2, 3}) {
    kernels::thread_pool pool(threads);
    llama_model fused(default_model_file(), pool, fast_options());
    INFO(threads << " threads");
    CHECK(max_abs_diff(run(fused), want) == 0.0f);
  }
}

TEST_CASE("forward rejects malformed batches without touching the pages", "[model]") {
  llama_model model(default_model_file(), test_pool());
  auto kv = make_storage(model, 4);
  std::vector<int32_t> tokens = {1, 2, 3};
  std::vector<int32_t> table = {0};
  std::vector<float> logits(model.n_vocab());
  batch_sequence s;
  s.tokens = tokens;
  s.block_table = table;
  CHECK(model.forward({&s, 1}, kv, logits).ok());

  auto fails_with = [&](const batch_sequence& b, std::span<float> out, const char* what) {
    status st = model.forward({&b, 1}, kv, out);
    INFO(st.message());
    CHECK(!st.ok());
    CHECK(st.message().find(what) != std::string::npos);
  };
  batch_sequence bad = s;
  std::vector<int32_t> bad_tokens = {1, static_cast<int32_t>(model.n_vocab())};
  bad.tokens = bad_tokens;
  fails_with(bad, logits, "outside the vocabulary");
  bad = s;
  bad.first_position = 15;  // positions 15..17 need two blocks
  fails_with(bad, logits, "block table");
  std::vector<int32_t> far = {4};
  bad = s;
  bad.block_table = far;
  fails_with(bad, logits, "outside the storage");
  bad = s;
  bad.all_logits = true;  // three rows do not fit one row of logits
  fails_with(bad, logits, "logits buffer");
  bad = s;
  bad.tokens = {};
  fails_with(bad, logits, "no tokens");
  CHECK(!model.forward({}, kv, logits).ok());

  auto other = paged_kv_storage::create({1, 3, 64, 16, 4});
  REQUIRE(other.ok());
  CHECK(model.forward({&s, 1}, other.value(), logits).message().find("does not match") !=
        std::string::npos);
}
