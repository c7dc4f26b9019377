// Paged attention: the reference against a dense causal GQA attention computed straight from
// the K/V rows (no pages), and every variant against the reference, over ragged batches
// (decode tokens and prefill chunks), block sizes 16 and 32, GQA ratios 1 and 3, and
// positions spanning many blocks of shuffled block tables.
//
// Tolerances (normalized MSE over the whole output):
//   reference vs dense: 1e-6. The reference rounds q and the softmax weights to fp16 as
//     llama.cpp does (relative error <= 2^-11 each; measured nmse ~3e-8); dense is in double.
//   variant vs reference: 0. Every table computes llama.cpp's operations in llama.cpp's order
//     (kernels/cpu/ggml_arithmetic.hpp), for prompt tokens and for sampled (decode) tokens.
#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>
#include <sstream>

#include "kernel_test_util.hpp"
#include "kernels/cpu/paged_attention.hpp"

using namespace troupe;
using namespace troupe::kernels;
using kernel_test::nmse;
using kernel_test::random_floats;

namespace {

struct seq_spec {
  int32_t first_pos;  // positions [first_pos, first_pos + n_new) are this step's tokens
  int32_t n_new;
};

struct scenario {
  int32_t block_size, n_head_kv, group, head_dim;
  std::vector<seq_spec> seqs;
};

std::string describe(const scenario& s) {
  std::ostringstream o;
  o << "block_size=" << s.block_size << " n_head_kv=" << s.n_head_kv << " group=" << s.group
    << " head_dim=" << s.head_dim << " seqs=[";
  for (auto& q : s.seqs) o << "(pos " << q.first_pos << ", new " << q.n_new << ")";
  o << "]";
  return o.str();
}

void run_scenario(std::mt19937& rng, const scenario& sc, thread_pool& pool) {
  const int32_t n_head = sc.n_head_kv * sc.group;
  const int64_t kv_row = static_cast<int64_t>(sc.n_head_kv) * sc.head_dim;
  const int64_t q_row = static_cast<int64_t>(n_head) * sc.head_dim;
  const int64_t n_seqs = static_cast<int64_t>(sc.seqs.size());

  // Shuffled physical blocks handed out to the sequences.
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n_seqs));
  int32_t total_blocks = 0;
  for (auto& s : sc.seqs) total_blocks += (s.first_pos + s.n_new + sc.block_size - 1) / sc.block_size;
  total_blocks += 3;  // unused blocks, so a wrong block id reads garbage rather than nothing
  std::vector<int32_t> ids(static_cast<size_t>(total_blocks));
  std::iota(ids.begin(), ids.end(), 0);
  std::shuffle(ids.begin(), ids.end(), rng);
  size_t next = 0;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const auto& q = sc.seqs[static_cast<size_t>(s)];
    const int32_t nb = (q.first_pos + q.n_new + sc.block_size - 1) / sc.block_size;
    for (int32_t i = 0; i < nb; ++i) tables[static_cast<size_t>(s)].push_back(ids[next++]);
  }
  const size_t page_elems = static_cast<size_t>(total_blocks) * sc.block_size * kv_row;
  std::vector<uint16_t> k_pages(page_elems, fp32_to_fp16(1e3f)), v_pages(page_elems, fp32_to_fp16(-1e3f));
  kv_layer_view kv{k_pages.data(), v_pages.data(), total_blocks, sc.block_size, sc.n_head_kv,
                   sc.head_dim};
  std::vector<const int32_t*> table_ptrs;
  std::vector<int32_t> table_lens;
  for (auto& t : tables) {
    table_ptrs.push_back(t.data());
    table_lens.push_back(static_cast<int32_t>(t.size()));
  }

  // Full K/V history of every sequence (what dense attention sees), in float.
  std::vector<std::vector<float>> hist_k(static_cast<size_t>(n_seqs)), hist_v(static_cast<size_t>(n_seqs));
  for (int64_t s = 0; s < n_seqs; ++s) {
    const auto& q = sc.seqs[static_cast<size_t>(s)];
    const size_t n = static_cast<size_t>((q.first_pos + q.n_new) * kv_row);
    hist_k[static_cast<size_t>(s)] = random_floats(rng, n, -2.0f, 2.0f);
    hist_v[static_cast<size_t>(s)] = random_floats(rng, n);
  }

  // Earlier steps: store positions [0, first_pos) one sequence at a time as a prefill.
  for (int64_t s = 0; s < n_seqs; ++s) {
    const auto& q = sc.seqs[static_cast<size_t>(s)];
    if (q.first_pos == 0) continue;
    std::vector<int32_t> pos(static_cast<size_t>(q.first_pos));
    std::iota(pos.begin(), pos.end(), 0);
    const int64_t starts[2] = {0, q.first_pos};
    attention_batch b{1, starts, pos.data(), &table_ptrs[static_cast<size_t>(s)],
                      &table_lens[static_cast<size_t>(s)]};
    store_kv(kv, b, hist_k[static_cast<size_t>(s)].data(), hist_v[static_cast<size_t>(s)].data());
  }

  // This step: all sequences' new tokens in one ragged batch.
  std::vector<int64_t> starts{0};
  std::vector<int32_t> positions;
  std::vector<uint8_t> single;  // decode tokens (one new token) sum in the single-token order
  std::vector<float> k_new, v_new;
  for (int64_t s = 0; s < n_seqs; ++s) {
    const auto& q = sc.seqs[static_cast<size_t>(s)];
    for (int32_t i = 0; i < q.n_new; ++i) {
      positions.push_back(q.first_pos + i);
      single.push_back(q.n_new == 1 ? 1 : 0);
    }
    starts.push_back(starts.back() + q.n_new);
    const auto& hk = hist_k[static_cast<size_t>(s)];
    const auto& hv = hist_v[static_cast<size_t>(s)];
    k_new.insert(k_new.end(), hk.begin() + q.first_pos * kv_row, hk.end());
    v_new.insert(v_new.end(), hv.begin() + q.first_pos * kv_row, hv.end());
  }
  const attention_batch batch{n_seqs, starts.data(), positions.data(), table_ptrs.data(),
                              table_lens.data(), single.data()};
  store_kv(kv, batch, k_new.data(), v_new.data());

  const int64_t n_tokens = batch.n_tokens();
  const auto q = random_floats(rng, static_cast<size_t>(n_tokens * q_row));
  const float scale = 1.0f / std::sqrt(static_cast<float>(sc.head_dim));

  // Dense causal GQA attention from the fp16-rounded history.
  std::vector<float> dense(static_cast<size_t>(n_tokens * q_row));
  for (int64_t s = 0; s < n_seqs; ++s) {
    for (int64_t t = starts[static_cast<size_t>(s)]; t < starts[static_cast<size_t>(s) + 1]; ++t) {
      const int32_t pos = positions[static_cast<size_t>(t)];
      for (int32_t h = 0; h < n_head; ++h) {
        const int32_t kvh = h / sc.group;
        std::vector<double> w(static_cast<size_t>(pos + 1));
        double mx = -1e300;
        for (int32_t p = 0; p <= pos; ++p) {
          double d = 0.0;
          for (int32_t i = 0; i < sc.head_dim; ++i)
            d += static_cast<double>(q[static_cast<size_t>(t * q_row + h * sc.head_dim + i)]) *
                 fp16_to_fp32(fp32_to_fp16(hist_k[static_cast<size_t>(s)][static_cast<size_t>(p * kv_row + kvh * sc.head_dim + i)]));
          w[static_cast<size_t>(p)] = d * scale;
          mx = std::max(mx, d * scale);
        }
        double sum = 0.0;
        for (auto& e : w) sum += (e = std::exp(e - mx));
        for (int32_t i = 0; i < sc.head_dim; ++i) {
          double o = 0.0;
          for (int32_t p = 0; p <= pos; ++p)
            o += w[static_cast<size_t>(p)] *
                 fp16_to_fp32(fp32_to_fp16(hist_v[static_cast<size_t>(s)][static_cast<size_t>(p * kv_row + kvh * sc.head_dim + i)]));
          dense[static_cast<size_t>(t * q_row + h * sc.head_dim + i)] = static_cast<float>(o / sum);
        }
      }
    }
  }

  std::vector<float> ref(dense.size(), 0.0f);
  paged_attention(reference_kernels(), kv, batch, q.data(), n_head, scale, ref.data(), pool);
  {
    const double e = nmse(ref.data(), dense.data(), ref.size());
    INFO("reference vs dense attention: " << describe(sc) << " nmse=" << e << " (max 1e-6)");
    REQUIRE(e < 1e-6);
  }
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<float> out(dense.size(), 0.0f);
    paged_attention(*kt, kv, batch, q.data(), n_head, scale, out.data(), pool);
    const double e = nmse(out.data(), ref.data(), ref.size());
    INFO("variant " << kt->name << " vs reference: " << describe(sc) << " nmse=" << e
                    << " (must be 0: same operations, same order)");
    REQUIRE(e == 0.0);
  }
}

}  // namespace

TEST_CASE("paged attention: ragged batches of decode and prefill tokens", "[attention]") {
  std::mt19937 rng(42);
  thread_pool pool(2);
  for (int32_t block_size : {16, 32})
    for (int32_t group : {1, 3})
      for (int32_t head_dim : {64, 40, 12}) {  // 12: not a multiple of 8 (fallback path)
        scenario sc{block_size, group == 1 ? 2 : 3, group, head_dim,
                    {{0, 1},                   // first token of a fresh sequence
                     {37, 1},                  // decode inside the 2nd/3rd block
                     {0, 21},                  // a first prefill chunk
                     {block_size * 3 - 2, 9},  // a later chunk crossing a block boundary
                     {130, 1}}};               // decode after many blocks
        run_scenario(rng, sc, pool);
      }
}

TEST_CASE("paged attention: a single token attends to exactly itself", "[attention]") {
  // With one position the softmax weight is 1: out must equal the stored V (fp16-rounded).
  std::mt19937 rng(3);
  thread_pool pool(1);
  std::vector<uint16_t> k(16 * 64), v(16 * 64);
  kv_layer_view kv{k.data(), v.data(), 1, 16, 1, 64};
  const auto kf = random_floats(rng, 64), vf = random_floats(rng, 64), q = random_floats(rng, 64);
  const int32_t table[1] = {0};
  const int32_t* tables[1] = {table};
  const int32_t lens[1] = {1}, pos[1] = {0};
  const int64_t starts[2] = {0, 1};
  attention_batch b{1, starts, pos, tables, lens};
  store_kv(kv, b, kf.data(), vf.data());
  for (const kernel_table* kt : available_kernel_tables()) {
    std::vector<float> out(64);
    paged_attention(*kt, kv, b, q.data(), 1, 0.125f, out.data(), pool);
    for (int i = 0; i < 64; ++i) {
      INFO("variant " << kt->name << " dim " << i);
      REQUIRE(out[static_cast<size_t>(i)] == Approx(fp16_to_fp32(fp32_to_fp16(vf[static_cast<size_t>(i)]))).epsilon(1e-6));
    }
  }
}
