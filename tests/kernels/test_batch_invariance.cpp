// Batch invariance of the kernels (docs/INVARIANTS.md invariant 2, and 5 for seeded sampling): a token's
// result must be bit for bit the same whether it is computed alone (a decode step) or inside a
// call with other tokens (a prefill chunk, a batched step), at any position in that call, with
// 1 or 2 threads. Every variant is checked against ITSELF here; variant vs reference is
// test_matmul.cpp / test_paged_attention.cpp.
//
// matmul: token t alone vs inside batches of 2..40 (and 70: two token chunks) consecutive
// tokens at several offsets, every weight type, a row count that is not a multiple of 8.
// paged_attention: each query token alone (one-token batch, same positions and pages) vs in a
// ragged batch of decode tokens and prefill chunks of several sequences.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstring>
#include <numeric>
#include <sstream>

#include "kernel_test_util.hpp"
#include "kernels/cpu/kernel_table.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/ops.hpp"
#include "kernels/cpu/paged_attention.hpp"

using namespace troupe;
using namespace troupe::kernels;
using kernel_test::make_weight;
using kernel_test::random_floats;

namespace {

// Index of the first element whose bits differ, or -1.
int64_t first_difference(const float* a, const float* b, int64_t n) {
  for (int64_t i = 0; i < n; ++i)
    if (std::memcmp(a + i, b + i, sizeof(float)) != 0) return i;
  return -1;
}

void check_matmul(const kernel_table& kt, thread_pool& pool, ggml_type type, int64_t n_rows,
                  int64_t k) {
  std::mt19937 rng(static_cast<uint32_t>(n_rows * 131 + k + static_cast<int>(type)));
  const auto w = make_weight(rng, type, n_rows, k);
  constexpr int64_t n_pool = 80;  // distinct token vectors
  const auto x = random_floats(rng, static_cast<size_t>(n_pool * k), -3.0f, 3.0f);
  // Each token alone: the decode-step path.
  std::vector<float> alone(static_cast<size_t>(n_pool * n_rows));
  for (int64_t t = 0; t < n_pool; ++t)
    matmul(kt, w.view, x.data() + t * k, 1, alone.data() + t * n_rows, pool);
  std::vector<int64_t> sizes(39);
  std::iota(sizes.begin(), sizes.end(), 2);  // 2..40
  sizes.push_back(70);
  for (int64_t n : sizes)
    for (int64_t offset : {0, 3, 9}) {
      if (offset + n > n_pool) continue;
      std::vector<float> y(static_cast<size_t>(n * n_rows));
      matmul(kt, w.view, x.data() + offset * k, n, y.data(), pool);
      for (int64_t t = 0; t < n; ++t) {
        const int64_t diff =
            first_difference(y.data() + t * n_rows, alone.data() + (offset + t) * n_rows, n_rows);
        INFO("variant " << kt.name << " type=" << ggml_type_name(type) << " N=" << n_rows
                        << " K=" << k << " threads=" << pool.num_threads() << ": token "
                        << offset + t << " inside a batch of " << n << " at offset " << offset
                        << " differs from alone at row " << diff);
        if (diff >= 0) {
          INFO("batched " << y[static_cast<size_t>(t * n_rows + diff)] << " alone "
                          << alone[static_cast<size_t>((offset + t) * n_rows + diff)]);
          REQUIRE(diff < 0);
        }
      }
    }
}

}  // namespace

TEST_CASE("matmul: a token's output is bitwise the same alone and in any batch",
          "[batch_invariance]") {
  for (int threads : {1, 2}) {
    thread_pool pool(threads);
    for (const kernel_table* kt : available_kernel_tables())
      for (ggml_type type : {ggml_type::q4_0, ggml_type::q4_1, ggml_type::q8_0, ggml_type::f32,
                             ggml_type::f16, ggml_type::bf16})
        check_matmul(*kt, pool, type, 76, 576);
  }
}

TEST_CASE("matmul_multi: outputs are bitwise those of matmul for every batch size",
          "[batch_invariance]") {
  std::mt19937 rng(5);
  thread_pool pool(2);
  const auto wa = make_weight(rng, ggml_type::q4_1, 40, 256);
  const auto wb = make_weight(rng, ggml_type::q8_0, 24, 256);
  const auto x = random_floats(rng, 20 * 256);
  for (const kernel_table* kt : available_kernel_tables())
    for (int64_t n : {1, 3, 20}) {
      std::vector<float> ya(static_cast<size_t>(n * 40)), yb(static_cast<size_t>(n * 24));
      const matmul_output outs[2] = {{&wa.view, ya.data()}, {&wb.view, yb.data()}};
      matmul_multi(*kt, outs, x.data(), n, pool);
      for (int64_t t = 0; t < n; ++t) {
        std::vector<float> a1(40), b1(24);
        matmul(*kt, wa.view, x.data() + t * 256, 1, a1.data(), pool);
        matmul(*kt, wb.view, x.data() + t * 256, 1, b1.data(), pool);
        INFO("variant " << kt->name << " n=" << n << " token " << t);
        REQUIRE(first_difference(ya.data() + t * 40, a1.data(), 40) < 0);
        REQUIRE(first_difference(yb.data() + t * 24, b1.data(), 24) < 0);
      }
    }
}

TEST_CASE("rms_norm and rope: a row's result does not depend on the other rows",
          "[batch_invariance]") {
  std::mt19937 rng(8);
  const int64_t n = 576, rows = 9;
  const auto x = random_floats(rng, static_cast<size_t>(rows * n), -4.0f, 4.0f);
  const auto w = random_floats(rng, static_cast<size_t>(n));
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<float> all(x.size()), one(static_cast<size_t>(n));
    rms_norm(*kt, x.data(), w.data(), all.data(), rows, n, 1e-5f);
    for (int64_t r = 0; r < rows; ++r) {
      rms_norm(*kt, x.data() + r * n, w.data(), one.data(), 1, n, 1e-5f);
      INFO("variant " << kt->name << " row " << r);
      REQUIRE(first_difference(all.data() + r * n, one.data(), n) < 0);
    }
  }
  // rope: 9 heads x 64, positions of a chunk vs each position alone.
  std::vector<int32_t> pos(static_cast<size_t>(rows));
  std::iota(pos.begin(), pos.end(), 100);
  std::vector<float> cache(static_cast<size_t>(rows * 64)), all(x.begin(), x.end());
  rope_fill_cache(pos.data(), rows, 64, 100000.0f, cache.data());
  rope_apply(all.data(), rows, 9, 64, 64, cache.data());
  for (int64_t r = 0; r < rows; ++r) {
    std::vector<float> c1(64), one(x.begin() + r * n, x.begin() + (r + 1) * n);
    rope_fill_cache(&pos[static_cast<size_t>(r)], 1, 64, 100000.0f, c1.data());
    rope_apply(one.data(), 1, 9, 64, 64, c1.data());
    INFO("rope row " << r);
    REQUIRE(first_difference(all.data() + r * n, one.data(), n) < 0);
  }
}

TEST_CASE("paged attention: a query's output is bitwise the same alone and in any batch",
          "[batch_invariance]") {
  // 3 kv heads x group 3, head_dim 64 (the default model's shape), block size 16.
  const int32_t block_size = 16, n_head_kv = 3, group = 3, head_dim = 64;
  const int32_t n_head = n_head_kv * group;
  const int64_t kv_row = n_head_kv * head_dim, q_row = n_head * head_dim;
  struct seq_spec {
    int32_t first_pos, n_new;
  };
  // Decodes and prefill chunks of several lengths (tiles of 8 tokens plus remainders).
  const std::vector<seq_spec> seqs = {{0, 1}, {37, 1}, {0, 21}, {45, 9}, {130, 1}, {5, 17}, {64, 8}};
  std::mt19937 rng(11);
  std::vector<std::vector<int32_t>> tables;
  int32_t next_block = 0;
  for (auto& s : seqs) {
    std::vector<int32_t> t;
    for (int32_t i = 0; i < (s.first_pos + s.n_new + block_size - 1) / block_size; ++i)
      t.push_back(next_block++);
    std::shuffle(t.begin(), t.end(), rng);
    tables.push_back(t);
  }
  const size_t page_elems = static_cast<size_t>(next_block) * block_size * kv_row;
  auto k_pages = std::vector<uint16_t>(page_elems), v_pages = std::vector<uint16_t>(page_elems);
  {
    const auto kf = random_floats(rng, page_elems, -2.0f, 2.0f), vf = random_floats(rng, page_elems);
    for (size_t i = 0; i < page_elems; ++i) {
      k_pages[i] = fp32_to_fp16(kf[i]);
      v_pages[i] = fp32_to_fp16(vf[i]);
    }
  }
  kv_layer_view kv{k_pages.data(), v_pages.data(), next_block, block_size, n_head_kv, head_dim};
  std::vector<const int32_t*> table_ptrs;
  std::vector<int32_t> table_lens;
  for (auto& t : tables) {
    table_ptrs.push_back(t.data());
    table_lens.push_back(static_cast<int32_t>(t.size()));
  }
  std::vector<int64_t> starts{0};
  std::vector<int32_t> positions;
  std::vector<int32_t> seq_of;
  for (size_t s = 0; s < seqs.size(); ++s) {
    for (int32_t i = 0; i < seqs[s].n_new; ++i) {
      positions.push_back(seqs[s].first_pos + i);
      seq_of.push_back(static_cast<int32_t>(s));
    }
    starts.push_back(starts.back() + seqs[s].n_new);
  }
  const int64_t n_tokens = starts.back();
  const auto q = random_floats(rng, static_cast<size_t>(n_tokens * q_row));
  const float scale = 0.125f;
  const attention_batch batch{static_cast<int64_t>(seqs.size()), starts.data(), positions.data(),
                              table_ptrs.data(), table_lens.data()};
  for (int threads : {1, 2}) {
    thread_pool pool(threads);
    for (const kernel_table* kt : available_kernel_tables()) {
      std::vector<float> out(q.size());
      paged_attention(*kt, kv, batch, q.data(), n_head, scale, out.data(), pool);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const size_t s = static_cast<size_t>(seq_of[static_cast<size_t>(t)]);
        const int64_t one_start[2] = {0, 1};
        const attention_batch one{1, one_start, &positions[static_cast<size_t>(t)], &table_ptrs[s],
                                  &table_lens[s]};
        std::vector<float> o1(static_cast<size_t>(q_row));
        paged_attention(*kt, kv, one, q.data() + t * q_row, n_head, scale, o1.data(), pool);
        const int64_t diff = first_difference(out.data() + t * q_row, o1.data(), q_row);
        INFO("variant " << kt->name << " threads=" << threads << " token " << t << " (seq " << s
                        << ", pos " << positions[static_cast<size_t>(t)]
                        << ") differs from alone at element " << diff);
        REQUIRE(diff < 0);
      }
    }
  }
}

TEST_CASE("paged attention: the page size does not change a query's bits (8, 16, 32)",
          "[batch_invariance]") {
  // One sequence of 100 positions stored in pages of 8, 16 and 32 (reversed tables); a prefill
  // chunk of 12 queries at positions 88..99 and a decode at 99.
  const int32_t n_head_kv = 3, group = 3, head_dim = 64, n_pos = 100;
  const int32_t n_head = n_head_kv * group;
  const int64_t kv_row = n_head_kv * head_dim, q_row = n_head * head_dim;
  std::mt19937 rng(21);
  const auto kf = random_floats(rng, static_cast<size_t>(n_pos * kv_row), -2.0f, 2.0f);
  const auto vf = random_floats(rng, static_cast<size_t>(n_pos * kv_row));
  const auto q = random_floats(rng, static_cast<size_t>(12 * q_row));
  std::vector<int32_t> pos(12);
  std::iota(pos.begin(), pos.end(), n_pos - 12);
  thread_pool pool(2);
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<std::vector<float>> outs;
    for (int32_t bs : {8, 16, 32}) {
      const int32_t nb = (n_pos + bs - 1) / bs;
      std::vector<uint16_t> k(static_cast<size_t>(nb * bs * kv_row)), v(k.size());
      kv_layer_view kv{k.data(), v.data(), nb, bs, n_head_kv, head_dim};
      std::vector<int32_t> table(static_cast<size_t>(nb));
      std::iota(table.rbegin(), table.rend(), 0);
      const int32_t* tables[1] = {table.data()};
      const int32_t lens[1] = {nb};
      std::vector<int32_t> all_pos(static_cast<size_t>(n_pos));
      std::iota(all_pos.begin(), all_pos.end(), 0);
      const int64_t fill_starts[2] = {0, n_pos};
      store_kv(kv, {1, fill_starts, all_pos.data(), tables, lens}, kf.data(), vf.data());
      const int64_t starts[2] = {0, 12};
      std::vector<float> out(q.size());
      paged_attention(*kt, kv, {1, starts, pos.data(), tables, lens}, q.data(), n_head, 0.125f,
                      out.data(), pool);
      outs.push_back(out);
    }
    INFO("variant " << kt->name);
    REQUIRE(first_difference(outs[0].data(), outs[1].data(), static_cast<int64_t>(q.size())) < 0);
    REQUIRE(first_difference(outs[0].data(), outs[2].data(), static_cast<int64_t>(q.size())) < 0);
  }
}
