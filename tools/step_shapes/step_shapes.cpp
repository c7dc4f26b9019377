// step_shapes MODEL [--repeats R] [--threads T] [--arithmetic fast|llama.cpp-exact]
//
// Times engine steps of given shapes, for fitting and checking the scheduler's step cost model
// (actors/step_cost_model.hpp). Reads shapes from stdin, one a line:
//     D L N P
// = D decoding sequences with L positions of context each (one new token at position L) plus,
// when N > 0, one prefill chunk of N tokens starting at position P. Each shape runs R times
// (default 7, after one warm-up run) through llama_model::forward, as the server's executor
// runs a step; prints, per shape, one line
//     D L N P median_ms min_ms
// The K/V pages are zeros (timing does not depend on their values). No sampling: the server's
// sampling is ~0.1 ms a sequence on top. tools/step_shapes/shapes.txt holds the shapes of issue
// 10's scenario; tools/step_shapes/fit.py fits the cost model's features to the output.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <iostream>
#include <string>
#include <vector>

#include "engine/fast_weights.hpp"
#include "engine/llama_model.hpp"

using namespace troupe;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: step_shapes MODEL [--repeats R] [--threads T] "
                         "[--arithmetic fast|llama.cpp-exact] < shapes\n");
    return 2;
  }
  int repeats = 7, threads = 2;
  std::string arith = "fast";
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string a = argv[i];
    if (a == "--repeats") repeats = std::stoi(argv[i + 1]);
    else if (a == "--threads") threads = std::stoi(argv[i + 1]);
    else if (a == "--arithmetic") arith = argv[i + 1];
  }
  auto file = load_llama_model(argv[1]);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.message().c_str());
    return 1;
  }
  engine::model_options opts;
  opts.mode = *engine::parse_arithmetic(arith);
  if (opts.mode == engine::arithmetic::fast) {
    auto packed = engine::fast_weights::pack(
        file.value(), {0, static_cast<int32_t>(file->hparams.n_layer)});
    if (!packed.ok()) return 1;
    opts.packed = std::move(*packed);
  }
  kernels::thread_pool pool(threads);
  engine::llama_model model(file.value(), pool, opts);
  // 40 sequences of up to 4,096 positions: blocks [s * 256, (s + 1) * 256) belong to sequence s.
  constexpr int32_t block_size = 16, blocks_per_seq = 256, max_seqs = 40;
  auto kv = paged_kv_storage::create(model.kv_shape(int64_t{blocks_per_seq} * max_seqs, block_size));
  if (!kv.ok()) return 1;
  std::vector<std::vector<int32_t>> tables(max_seqs);
  for (int s = 0; s < max_seqs; ++s)
    for (int b = 0; b < blocks_per_seq; ++b) tables[s].push_back(s * blocks_per_seq + b);
  std::vector<int32_t> tokens(4096);
  for (size_t i = 0; i < tokens.size(); ++i) tokens[i] = 100 + static_cast<int32_t>(i * 37 % 20000);

  std::vector<float> logits;
  int64_t d, l, n, p;
  while (std::cin >> d >> l >> n >> p) {
    if (d + (n > 0) > max_seqs || l >= 4096 || p + n > 4096) {
      std::fprintf(stderr, "shape %ld %ld %ld %ld: too large\n", d, l, n, p);
      return 1;
    }
    std::vector<engine::batch_sequence> batch;
    for (int64_t s = 0; s < d; ++s) {
      engine::batch_sequence b;
      b.seq_id = static_cast<uint64_t>(s);
      b.tokens = std::span<const int32_t>(tokens).subspan(static_cast<size_t>(s), 1);
      b.first_position = static_cast<int32_t>(l);
      b.block_table = tables[static_cast<size_t>(s)];
      b.sampled_from = 0;
      batch.push_back(b);
    }
    if (n > 0) {
      engine::batch_sequence b;
      b.seq_id = static_cast<uint64_t>(d);
      b.tokens = std::span<const int32_t>(tokens).subspan(static_cast<size_t>(p),
                                                           static_cast<size_t>(n));
      b.first_position = static_cast<int32_t>(p);
      b.block_table = tables[static_cast<size_t>(d)];
      batch.push_back(b);
    }
    logits.resize(static_cast<size_t>(engine::llama_model::num_logit_rows(batch) *
                                      model.n_vocab()));
    std::vector<double> ms;
    for (int r = 0; r < repeats + 1; ++r) {
      const auto t0 = std::chrono::steady_clock::now();
      if (status st = model.forward(batch, kv.value(), logits); !st.ok()) {
        std::fprintf(stderr, "%s\n", st.message().c_str());
        return 1;
      }
      const double t = std::chrono::duration<double, std::milli>(
                           std::chrono::steady_clock::now() - t0).count();
      if (r > 0) ms.push_back(t);  // the first run warms caches
    }
    std::sort(ms.begin(), ms.end());
    std::printf("%ld %ld %ld %ld %.3f %.3f\n", d, l, n, p, ms[ms.size() / 2], ms.front());
    std::fflush(stdout);
  }
  return 0;
}
