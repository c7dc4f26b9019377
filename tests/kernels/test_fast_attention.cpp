// paged_attention_fast (kernels/cpu/fast_attention.hpp), every variant this CPU has:
//
// 1. Accuracy: against attention in double precision computed straight from the fp16-rounded
//    K/V history (no pages), over ragged batches (decode tokens and prefill chunks of several
//    sequences, at positions spanning many blocks of shuffled block tables), GQA ratios 1, 3
//    and 4, block sizes 5, 16 and 32, and head sizes that take the SIMD kernels (64, 128, 48)
//    and the scalar fallback (40 on avx512, 20 everywhere). Bound: relative RMS error over the
//    whole output <= 1e-6 (fp32 arithmetic; measured 1.5e-7 .. 3.5e-7).
// 2. Batch invariance, bit for bit, each variant against itself: the same 64-token stretch of
//    one sequence (head sizes 64, 128 and 48: each kernel instantiation) computed as one chunk,
//    as 64 single-token steps, as chunks of 7, inside batches with other sequences (decodes
//    and prefill chunks around it), with block_size 16 and 32, with 1 and 2 threads, and
//    recomputed after "preemption" into other blocks. The avx2 and avx512 variants also give
//    each other's bits (the same operations lane by lane).
// Unwritten page slots hold fp16 NaN, so a kernel that read a key it must not gets NaN.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <numeric>
#include <sstream>

#include "kernel_test_util.hpp"
#include "kernels/cpu/fast_attention.hpp"

using namespace troupe;
using namespace troupe::kernels;
using kernel_test::random_floats;

namespace {

constexpr uint16_t fp16_nan = 0x7E00;

struct shape {
  int32_t n_head_kv, group, head_dim;
  int32_t n_head() const { return n_head_kv * group; }
  int64_t kv_row() const { return int64_t{n_head_kv} * head_dim; }
  int64_t q_row() const { return int64_t{n_head()} * head_dim; }
};

// One sequence's whole history: K/V rows as stored (floats) and the query of every position.
struct history {
  std::vector<float> k, v, q;  // [n_pos][kv_row], [n_pos][kv_row], [n_pos][q_row]
};

history make_history(std::mt19937& rng, const shape& sh, int32_t n_pos) {
  history h;
  h.k = random_floats(rng, static_cast<size_t>(n_pos * sh.kv_row()), -2.0f, 2.0f);
  h.v = random_floats(rng, static_cast<size_t>(n_pos * sh.kv_row()));
  h.q = random_floats(rng, static_cast<size_t>(n_pos * sh.q_row()), -2.0f, 2.0f);
  return h;
}

// Attention of position pos of a history, in double, from the fp16-rounded K/V.
void dense_attention(const shape& sh, const history& h, int32_t pos, float scale, double* out) {
  const int32_t hd = sh.head_dim;
  for (int32_t head = 0; head < sh.n_head(); ++head) {
    const int32_t kvh = head / sh.group;
    const float* q = h.q.data() + pos * sh.q_row() + head * hd;
    std::vector<double> w(static_cast<size_t>(pos + 1));
    double mx = -1e300;
    for (int32_t p = 0; p <= pos; ++p) {
      double d = 0.0;
      for (int32_t i = 0; i < hd; ++i)
        d += static_cast<double>(q[i]) * fp16_to_fp32(fp32_to_fp16(h.k[static_cast<size_t>(p * sh.kv_row() + kvh * hd + i)]));
      w[static_cast<size_t>(p)] = d * scale;
      mx = std::max(mx, d * scale);
    }
    double sum = 0.0;
    for (auto& e : w) sum += (e = std::exp(e - mx));
    for (int32_t i = 0; i < hd; ++i) {
      double o = 0.0;
      for (int32_t p = 0; p <= pos; ++p)
        o += w[static_cast<size_t>(p)] * fp16_to_fp32(fp32_to_fp16(h.v[static_cast<size_t>(p * sh.kv_row() + kvh * hd + i)]));
      out[head * hd + i] = o / sum;
    }
  }
}

// Pages for a set of sequences, with shuffled physical blocks (plus spare ones) and NaN in
// every slot until it is written.
struct paged_world {
  shape sh;
  int32_t block_size;
  std::vector<uint16_t> k_pages, v_pages;
  std::vector<std::vector<int32_t>> tables;
  int64_t num_blocks = 0;

  paged_world(std::mt19937& rng, const shape& s, int32_t bs, const std::vector<int32_t>& seq_lens)
      : sh(s), block_size(bs) {
    int32_t total = 3;
    for (int32_t n : seq_lens) total += (n + bs - 1) / bs;
    std::vector<int32_t> ids(static_cast<size_t>(total));
    std::iota(ids.begin(), ids.end(), 0);
    std::shuffle(ids.begin(), ids.end(), rng);
    size_t next = 0;
    for (int32_t n : seq_lens) {
      tables.emplace_back();
      for (int32_t i = 0; i < (n + bs - 1) / bs; ++i) tables.back().push_back(ids[next++]);
    }
    num_blocks = total;
    k_pages.assign(static_cast<size_t>(total * bs * sh.kv_row()), fp16_nan);
    v_pages = k_pages;
  }
  kv_layer_view view() {
    return kv_layer_view{k_pages.data(), v_pages.data(), num_blocks, block_size, sh.n_head_kv, sh.head_dim};
  }
};

// A step: for each listed sequence, positions [first, first + n) of its history.
struct step_entry {
  int32_t seq, first, n;
};

// Stores the step's K/V, runs paged_attention_fast, and writes each token's output into
// outs[seq] at its position ([n_pos][q_row]).
void run_step(fast_attention_variant var, paged_world& w, const std::vector<const history*>& hs,
              const std::vector<step_entry>& step, float scale, thread_pool& pool,
              std::vector<std::vector<float>>& outs) {
  const shape& sh = w.sh;
  std::vector<int64_t> starts{0};
  std::vector<int32_t> positions, lens;
  std::vector<const int32_t*> tptrs;
  std::vector<float> k, v, q;
  for (const auto& e : step) {
    const history& h = *hs[static_cast<size_t>(e.seq)];
    for (int32_t i = 0; i < e.n; ++i) positions.push_back(e.first + i);
    starts.push_back(starts.back() + e.n);
    tptrs.push_back(w.tables[static_cast<size_t>(e.seq)].data());
    lens.push_back(static_cast<int32_t>(w.tables[static_cast<size_t>(e.seq)].size()));
    k.insert(k.end(), h.k.begin() + e.first * sh.kv_row(), h.k.begin() + (e.first + e.n) * sh.kv_row());
    v.insert(v.end(), h.v.begin() + e.first * sh.kv_row(), h.v.begin() + (e.first + e.n) * sh.kv_row());
    q.insert(q.end(), h.q.begin() + e.first * sh.q_row(), h.q.begin() + (e.first + e.n) * sh.q_row());
  }
  const attention_batch batch{static_cast<int64_t>(step.size()), starts.data(), positions.data(),
                              tptrs.data(), lens.data()};
  const kv_layer_view kv = w.view();
  store_kv(kv, batch, k.data(), v.data());
  std::vector<float> out(q.size(), -7.0f);
  paged_attention_fast(var, kv, batch, q.data(), sh.n_head(), scale, out.data(), pool);
  for (size_t s = 0; s < step.size(); ++s) {
    const auto& e = step[s];
    std::copy(out.begin() + starts[s] * sh.q_row(), out.begin() + starts[s + 1] * sh.q_row(),
              outs[static_cast<size_t>(e.seq)].begin() + e.first * sh.q_row());
  }
}

std::string describe(const shape& sh, int32_t bs) {
  std::ostringstream o;
  o << "n_head_kv=" << sh.n_head_kv << " group=" << sh.group << " head_dim=" << sh.head_dim
    << " block_size=" << bs;
  return o.str();
}

}  // namespace

TEST_CASE("paged_attention_fast matches attention in double precision", "[fast_attention]") {
  struct seq_spec {
    int32_t first_pos, n_new;
  };
  struct scenario {
    shape sh;
    int32_t block_size;
    std::vector<seq_spec> seqs;
  };
  const std::vector<scenario> scenarios = {
      {{3, 3, 64}, 16, {{0, 64}, {100, 1}, {31, 20}, {0, 1}, {250, 3}}},
      {{3, 3, 64}, 32, {{0, 300}}},
      {{2, 4, 128}, 16, {{17, 40}, {63, 1}, {64, 1}, {5, 9}}},
      {{1, 1, 48}, 5, {{0, 33}, {70, 2}}},
      {{2, 3, 40}, 16, {{10, 21}, {90, 1}}},
      {{1, 2, 20}, 16, {{0, 18}, {40, 1}}},
      {{4, 1, 64}, 32, {{500, 17}, {1000, 1}, {0, 70}}},
  };
  thread_pool pool(2);
  for (const auto var : available_fast_attention_variants()) {
    for (const auto& sc : scenarios) {
      std::mt19937 rng(static_cast<uint32_t>(sc.sh.head_dim * 7 + sc.block_size));
      const shape& sh = sc.sh;
      std::vector<int32_t> lens;
      std::vector<history> hist;
      for (const auto& s : sc.seqs) {
        lens.push_back(s.first_pos + s.n_new);
        hist.push_back(make_history(rng, sh, s.first_pos + s.n_new));
      }
      paged_world w(rng, sh, sc.block_size, lens);
      std::vector<const history*> hs;
      std::vector<std::vector<float>> outs;
      for (size_t i = 0; i < hist.size(); ++i) {
        hs.push_back(&hist[i]);
        outs.emplace_back(static_cast<size_t>(lens[i] * sh.q_row()), 0.0f);
      }
      const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));
      // Earlier steps: each sequence's context as one prefill (outputs not checked).
      for (int32_t s = 0; s < static_cast<int32_t>(sc.seqs.size()); ++s)
        if (sc.seqs[static_cast<size_t>(s)].first_pos > 0)
          run_step(var, w, hs, {{s, 0, sc.seqs[static_cast<size_t>(s)].first_pos}}, scale, pool, outs);
      // This step: every sequence's new tokens in one ragged batch.
      std::vector<step_entry> step;
      for (int32_t s = 0; s < static_cast<int32_t>(sc.seqs.size()); ++s)
        step.push_back({s, sc.seqs[static_cast<size_t>(s)].first_pos, sc.seqs[static_cast<size_t>(s)].n_new});
      run_step(var, w, hs, step, scale, pool, outs);

      double err = 0.0, norm = 0.0;
      std::vector<double> ref(static_cast<size_t>(sh.q_row()));
      for (const auto& e : step)
        for (int32_t p = e.first; p < e.first + e.n; ++p) {
          dense_attention(sh, hist[static_cast<size_t>(e.seq)], p, scale, ref.data());
          const float* got = outs[static_cast<size_t>(e.seq)].data() + p * sh.q_row();
          for (int64_t i = 0; i < sh.q_row(); ++i) {
            const double d = got[i] - ref[static_cast<size_t>(i)];
            err += d * d;
            norm += ref[static_cast<size_t>(i)] * ref[static_cast<size_t>(i)];
          }
        }
      const double rel_rms = std::sqrt(err / norm);
      INFO("variant " << fast_attention_variant_name(var) << " " << describe(sh, sc.block_size));
      CHECK(rel_rms <= 1e-6);
    }
  }
}

TEST_CASE("paged_attention_fast is batch invariant bit for bit", "[fast_attention]") {
  // The target is sequence 0: positions [first, first + 64) after `first` positions of context.
  // Sequences 1 and 2 are companions: 1 decodes one token per step, 2 prefills 5 per step.
  constexpr int32_t n_new = 64;
  struct config {
    const char* name;
    int32_t block_size;
    int32_t chunk;          // target tokens per step
    bool companions;
    int threads;
  };
  const std::vector<config> configs = {
      {"one 64-token chunk", 16, 64, false, 1},
      {"64 single-token steps", 16, 1, false, 1},
      {"chunks of 7", 16, 7, false, 1},
      {"in a batch, chunks of 64", 16, 64, true, 1},
      {"in a batch, chunks of 13", 16, 13, true, 2},
      {"in a batch, single-token steps", 16, 1, true, 2},
      {"block_size 32", 32, 64, false, 1},
      {"block_size 32, chunks of 7", 32, 7, true, 1},
      {"2 threads", 16, 64, false, 2},
  };
  const std::vector<shape> shapes = {{3, 3, 64}, {2, 4, 128}, {1, 2, 48}};
  std::map<std::string, std::vector<float>> simd_baselines;
  for (const auto var : available_fast_attention_variants()) {
    for (const auto& sh : shapes) {
      for (const int32_t first : {0, 45}) {
        const int32_t target_len = first + n_new;
        std::mt19937 rng(static_cast<uint32_t>(sh.head_dim + first));
        const history target = make_history(rng, sh, target_len);
        const history decoder = make_history(rng, sh, 200 + n_new);
        const history prefiller = make_history(rng, sh, 5 * n_new);
        const std::vector<const history*> hs{&target, &decoder, &prefiller};
        const float scale = 1.0f / std::sqrt(static_cast<float>(sh.head_dim));

        std::vector<float> baseline;
        for (const auto& cfg : configs) {
          thread_pool pool(cfg.threads);
          paged_world w(rng, sh, cfg.block_size, {target_len, 200 + n_new, 5 * n_new});
          std::vector<std::vector<float>> outs{std::vector<float>(static_cast<size_t>(target_len * sh.q_row())),
                                               std::vector<float>(decoder.q.size()),
                                               std::vector<float>(prefiller.q.size())};
          if (first > 0) run_step(var, w, hs, {{0, 0, first}}, scale, pool, outs);
          if (cfg.companions) run_step(var, w, hs, {{1, 0, 200}}, scale, pool, outs);
          int32_t dec = 200, pre = 0;
          for (int32_t p = first; p < target_len; p += cfg.chunk) {
            std::vector<step_entry> step;
            if (cfg.companions) step.push_back({1, dec++, 1});
            step.push_back({0, p, std::min(cfg.chunk, target_len - p)});
            if (cfg.companions) {
              step.push_back({2, pre, 5});
              pre += 5;
            }
            run_step(var, w, hs, step, scale, pool, outs);
          }
          std::vector<float> got(outs[0].begin() + first * sh.q_row(), outs[0].end());
          REQUIRE(std::all_of(got.begin(), got.end(), [](float x) { return std::isfinite(x); }));
          if (baseline.empty()) {
            baseline = got;
            continue;
          }
          size_t diff = 0;
          while (diff < got.size() && std::memcmp(&got[diff], &baseline[diff], sizeof(float)) == 0) ++diff;
          INFO("variant " << fast_attention_variant_name(var) << " " << describe(sh, cfg.block_size)
                          << " context " << first << ": '" << cfg.name << "' vs '" << configs[0].name
                          << "' first differs at token " << diff / static_cast<size_t>(sh.q_row())
                          << " element " << diff % static_cast<size_t>(sh.q_row()));
          CHECK(diff == got.size());
        }

        // The SIMD variants compute the same operations lane by lane: same bits.
        if (var != fast_attention_variant::scalar) {
          auto& first_simd = simd_baselines[describe(sh, 16) + " context " + std::to_string(first)];
          if (first_simd.empty()) first_simd = baseline;
          INFO("variant " << fast_attention_variant_name(var) << " vs the first SIMD variant, "
                          << describe(sh, 16) << " context " << first);
          CHECK(std::memcmp(first_simd.data(), baseline.data(), baseline.size() * sizeof(float)) == 0);
        }

        // Preemption: the first 30 tokens as decode steps, then the sequence's blocks are lost
        // and positions [0, first + 64) recomputed in chunks of 16 into other blocks.
        thread_pool pool(2);
        paged_world w(rng, sh, 16, {target_len, target_len});
        const std::vector<const history*> twice{&target, &target};
        std::vector<std::vector<float>> outs(2, std::vector<float>(static_cast<size_t>(target_len * sh.q_row())));
        for (int32_t p = 0; p < std::min(30, target_len); ++p) run_step(var, w, twice, {{0, p, 1}}, scale, pool, outs);
        for (int32_t p = 0; p < target_len; p += 16)
          run_step(var, w, twice, {{1, p, std::min(16, target_len - p)}}, scale, pool, outs);
        INFO("variant " << fast_attention_variant_name(var) << " " << describe(sh, 16) << " context "
                        << first << ": recomputed after preemption");
        CHECK(std::memcmp(outs[1].data() + first * sh.q_row(), baseline.data(), baseline.size() * sizeof(float)) == 0);
        if (first < 30)
          CHECK(std::memcmp(outs[0].data() + first * sh.q_row(), outs[1].data() + first * sh.q_row(),
                            static_cast<size_t>((30 - first) * sh.q_row()) * sizeof(float)) == 0);
      }
    }
  }
}
