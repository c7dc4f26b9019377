// Micro-benchmarks of the CPU kernels (not a test; not run by ctest). Results: BENCHMARKS.md.
//   build-x/kernels/bench/bench_kernels [--benchmark_filter=...]
// Counters: GFLOPs = 2*K*N*n_tokens per second; weight_GBps = weight bytes read per second
// (the number to hold against memory bandwidth for n_tokens = 1); stream_read_GBps for the
// bandwidth probe. Variant: TROUPE_CPU=scalar|avx2 caps it, as everywhere.
#include <benchmark/benchmark.h>

#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <vector>

#include "kernels/cpu/fast_attention.hpp"
#include "kernels/cpu/fast_matmul.hpp"
#include "kernels/cpu/matmul.hpp"
#include "kernels/cpu/paged_attention.hpp"
#include "memory/dequantize.hpp"
#include "memory/float16.hpp"

using namespace troupe;
using namespace troupe::kernels;

namespace {

struct weight {
  std::vector<uint8_t> bytes;
  tensor_view view;
};

weight make_weight(ggml_type type, int64_t k, int64_t n) {
  std::mt19937 rng(1);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  weight w;
  const uint64_t rb = ggml_row_bytes(type, static_cast<uint64_t>(k));
  w.bytes.resize(rb * static_cast<uint64_t>(n));
  std::vector<float> row(static_cast<size_t>(k));
  for (int64_t r = 0; r < n; ++r) {
    for (auto& x : row) x = dist(rng);
    uint8_t* dst = w.bytes.data() + rb * static_cast<uint64_t>(r);
    if (type == ggml_type::q4_1) quantize_row_q4_1(row.data(), dst, k);
    else if (type == ggml_type::q4_0) quantize_row_q4_0(row.data(), dst, k);
    else quantize_row_q8_0(row.data(), dst, k);
  }
  w.view = tensor_view{"w", type, k, n, rb, w.bytes.data()};
  return w;
}

// args: K, N, n_tokens, threads, type
void bm_matmul(benchmark::State& state) {
  const int64_t k = state.range(0), n = state.range(1), t = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const auto type = static_cast<ggml_type>(state.range(4));
  const weight w = make_weight(type, k, n);
  std::vector<float> x(static_cast<size_t>(k * t), 0.5f), y(static_cast<size_t>(n * t));
  for (size_t i = 0; i < x.size(); ++i) x[i] = static_cast<float>((i * 7919) % 1000) / 500.0f - 1.0f;
  thread_pool pool(threads);
  for (auto _ : state) {
    matmul(w.view, x.data(), t, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(ggml_type_name(type)) + " " + active_kernels().name);
  state.counters["GFLOPs"] = benchmark::Counter(2.0 * static_cast<double>(k * n * t) * 1e-9,
                                                benchmark::Counter::kIsIterationInvariantRate);
  state.counters["weight_GBps"] = benchmark::Counter(static_cast<double>(w.bytes.size()) * 1e-9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

void matmul_args(benchmark::internal::Benchmark* b) {
  const int64_t shapes[][2] = {{576, 576}, {576, 1536}, {1536, 576}, {576, 49152}};
  for (int64_t type : {static_cast<int64_t>(ggml_type::q4_1), static_cast<int64_t>(ggml_type::q8_0)})
    for (auto& s : shapes)
      for (int64_t t : {1, 32})
        for (int64_t threads : {1, 2}) b->Args({s[0], s[1], t, threads, type});
  b->ArgNames({"K", "N", "tokens", "threads", "type"});
  b->UseRealTime();
}

// Streaming read of 1 GiB (AVX2 loads, 4 independent sums), one thread: the bandwidth one
// core can pull, which bounds a single-threaded matvec.
void bm_stream_read(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint8_t> buf(bytes, 1);
  __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
  for (auto _ : state) {
    const auto* p = reinterpret_cast<const __m256i*>(buf.data());
    for (size_t i = 0; i < bytes / 32; i += 4) {
      s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(p + i));
      s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(p + i + 1));
      s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(p + i + 2));
      s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(p + i + 3));
    }
    benchmark::DoNotOptimize(s0);
    benchmark::DoNotOptimize(s1);
    benchmark::DoNotOptimize(s2);
    benchmark::DoNotOptimize(s3);
  }
  state.counters["stream_read_GBps"] = benchmark::Counter(static_cast<double>(bytes) * 1e-9,
                                                          benchmark::Counter::kIsIterationInvariantRate);
}

// The same over 2 threads (each reads half): the machine's bandwidth with both cores.
void bm_stream_read_2t(benchmark::State& state) {
  const size_t bytes = size_t{1} << 30;
  std::vector<uint8_t> buf(bytes, 1);
  thread_pool pool(2);
  for (auto _ : state) {
    pool.parallel_for(64, [&](int64_t task, int) {
      const auto* p = reinterpret_cast<const __m256i*>(buf.data() + task * (bytes / 64));
      __m256i s0 = _mm256_setzero_si256(), s1 = s0, s2 = s0, s3 = s0;
      for (size_t i = 0; i < bytes / 64 / 32; i += 4) {
        s0 = _mm256_add_epi64(s0, _mm256_loadu_si256(p + i));
        s1 = _mm256_add_epi64(s1, _mm256_loadu_si256(p + i + 1));
        s2 = _mm256_add_epi64(s2, _mm256_loadu_si256(p + i + 2));
        s3 = _mm256_add_epi64(s3, _mm256_loadu_si256(p + i + 3));
      }
      benchmark::DoNotOptimize(_mm256_add_epi64(_mm256_add_epi64(s0, s1), _mm256_add_epi64(s2, s3)));
    });
  }
  state.counters["stream_read_GBps"] = benchmark::Counter(static_cast<double>(bytes) * 1e-9,
                                                          benchmark::Counter::kIsIterationInvariantRate);
}

// Cost of one parallel_for with trivial tasks: the per-kernel synchronisation a forward pass
// pays a few hundred times per decode step.
void bm_parallel_for(benchmark::State& state) {
  thread_pool pool(static_cast<int>(state.range(0)));
  std::vector<int64_t> out(64);
  for (auto _ : state) {
    pool.parallel_for(16, [&](int64_t i, int) { out[static_cast<size_t>(i)] += i; });
    benchmark::DoNotOptimize(out.data());
  }
}

// Paged attention of the default model's shape (9 query heads, 3 kv heads, head_dim 64,
// block 16): args = n_tokens of one sequence (a prefill chunk starting at 0), or, with
// decode != 0, one token at position n_tokens - 1 for each of `seqs` sequences.
void bm_attention(benchmark::State& state) {
  const int32_t n_ctx = static_cast<int32_t>(state.range(0));
  const bool decode = state.range(1) != 0;
  const int64_t n_seqs = decode ? state.range(2) : 1;
  const int threads = static_cast<int>(state.range(3));
  const int32_t n_head = 9, n_kv = 3, hd = 64, bs = 16;
  const int32_t blocks_per_seq = (n_ctx + bs - 1) / bs;
  const int64_t num_blocks = blocks_per_seq * n_seqs;
  std::vector<uint16_t> k(static_cast<size_t>(num_blocks * bs * n_kv * hd), 0x3c00);
  std::vector<uint16_t> v(k.size(), 0x3800);
  kv_layer_view kv{k.data(), v.data(), num_blocks, bs, n_kv, hd};
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n_seqs));
  std::vector<const int32_t*> tptr;
  std::vector<int32_t> lens, positions;
  std::vector<int64_t> starts{0};
  for (int64_t s = 0; s < n_seqs; ++s) {
    for (int32_t b = 0; b < blocks_per_seq; ++b) tables[static_cast<size_t>(s)].push_back(static_cast<int32_t>(s * blocks_per_seq + b));
    tptr.push_back(tables[static_cast<size_t>(s)].data());
    lens.push_back(blocks_per_seq);
    if (decode) {
      positions.push_back(n_ctx - 1);
    } else {
      for (int32_t p = 0; p < n_ctx; ++p) positions.push_back(p);
    }
    starts.push_back(static_cast<int64_t>(positions.size()));
  }
  attention_batch batch{n_seqs, starts.data(), positions.data(), tptr.data(), lens.data()};
  std::vector<float> q(positions.size() * n_head * hd, 0.1f), out(q.size());
  thread_pool pool(threads);
  for (auto _ : state) {
    paged_attention(kv, batch, q.data(), n_head, 0.125f, out.data(), pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(active_kernels().name);
}

// The matmuls of one decode step of the default model's shape (30 layers of Q4_1 q/k/v/o,
// gate/up/down, then the 49152 x 576 Q8_0 lm_head), each layer with its own weights so that,
// as in the real model, ~96 MB stream from memory per step (more than the 32 MB L3).
// args: n_tokens (1 = decode of one sequence, 32 = batched decode), threads.
void bm_decode_step_matmuls(benchmark::State& state) {
  const int64_t t = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  struct layer {
    weight q, k, v, o, gate, up, down;
  };
  static std::vector<layer> layers;
  static weight lm_head;
  if (layers.empty()) {
    for (int l = 0; l < 30; ++l)
      layers.push_back({make_weight(ggml_type::q4_1, 576, 576), make_weight(ggml_type::q4_1, 576, 192),
                        make_weight(ggml_type::q4_1, 576, 192), make_weight(ggml_type::q4_1, 576, 576),
                        make_weight(ggml_type::q4_1, 576, 1536), make_weight(ggml_type::q4_1, 576, 1536),
                        make_weight(ggml_type::q4_1, 1536, 576)});
    lm_head = make_weight(ggml_type::q8_0, 576, 49152);
  }
  double bytes = static_cast<double>(lm_head.bytes.size());
  for (const auto& l : layers)
    for (const weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down})
      bytes += static_cast<double>(w->bytes.size());
  std::vector<float> x(static_cast<size_t>(1536 * t), 0.01f), y(static_cast<size_t>(49152 * t));
  std::vector<float> y2(static_cast<size_t>(1536 * t)), y3(static_cast<size_t>(1536 * t));
  thread_pool pool(threads);
  for (auto _ : state) {
    for (const auto& l : layers) {
      const matmul_output qkv[] = {{&l.q.view, y.data()}, {&l.k.view, y2.data()}, {&l.v.view, y3.data()}};
      matmul_multi(qkv, x.data(), t, pool);
      matmul(l.o.view, x.data(), t, y.data(), pool);
      const matmul_output gu[] = {{&l.gate.view, y2.data()}, {&l.up.view, y3.data()}};
      matmul_multi(gu, x.data(), t, pool);
      matmul(l.down.view, x.data(), t, y.data(), pool);
    }
    matmul(lm_head.view, x.data(), t, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(t), benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(bm_decode_step_matmuls)->Args({1, 1})->Args({1, 2})->Args({4, 1})->Args({32, 1})->Args({32, 2})
    ->ArgNames({"tokens", "threads"})->UseRealTime();
BENCHMARK(bm_attention)->Args({512, 0, 1, 1})->Args({512, 0, 1, 2})->Args({1024, 1, 1, 1})
    ->Args({1024, 1, 32, 2})->ArgNames({"ctx", "decode", "seqs", "threads"})->UseRealTime();
BENCHMARK(bm_parallel_for)->Arg(1)->Arg(2)->UseRealTime();
BENCHMARK(bm_matmul)->Apply(matmul_args);
// The int8 dot-product rate a core can reach: vpdpbusd (u8 x s8, 4 products summed into each
// int32 lane) on 8 independent 256-bit accumulators, all in registers (no memory): the compute
// ceiling of the quantized matmuls, in int8 multiply-adds per second. AVX-512 VNNI only.
__attribute__((target("avx512f,avx512vl,avx512vnni"))) void dot_int8_loop(int64_t n, __m256i* acc) {
  const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2);
  __m256i s[8];
  for (int j = 0; j < 8; ++j) s[j] = acc[j];
  for (int64_t i = 0; i < n; ++i)
    for (int j = 0; j < 8; ++j) s[j] = _mm256_dpbusd_epi32(s[j], a, b);
  for (int j = 0; j < 8; ++j) acc[j] = s[j];
}

void bm_int8_dot_peak(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  constexpr int64_t iters = 1 << 20;
  __m256i acc[8] = {};
  for (auto _ : state) {
    dot_int8_loop(iters, acc);
    benchmark::DoNotOptimize(acc);
  }
  // per iteration: 8 instructions x 32 int8 multiply-adds
  state.counters["int8_GMACps"] = benchmark::Counter(static_cast<double>(iters) * 8 * 32 * 1e-9,
                                                     benchmark::Counter::kIsIterationInvariantRate);
}

BENCHMARK(bm_int8_dot_peak)->UseRealTime();
BENCHMARK(bm_stream_read)->UseRealTime()->MinTime(2.0);
BENCHMARK(bm_stream_read_2t)->UseRealTime()->MinTime(2.0);
namespace {

// Exact (llama.cpp-exact paged_attention) vs fast (paged_attention_fast) attention of the default
// model's shape (9 query heads, 3 kv heads, head_dim 64, block 16), random fp16 K/V. args: ctx,
// decode, seqs, threads, fast. decode 0: one sequence's prefill chunk of ctx tokens starting
// at position 0; decode 1: one token at position ctx - 1 for each of `seqs` sequences. The label
// names the kernel variant.
void bm_attention_mode(benchmark::State& state) {
  const int32_t n_ctx = static_cast<int32_t>(state.range(0));
  const bool decode = state.range(1) != 0;
  const int64_t n_seqs = state.range(2);
  const int threads = static_cast<int>(state.range(3));
  const bool fast = state.range(4) != 0;
  const int32_t n_head = 9, n_kv = 3, hd = 64, bs = 16;
  const int32_t blocks_per_seq = (n_ctx + bs - 1) / bs;
  const int64_t num_blocks = blocks_per_seq * n_seqs;
  std::mt19937 rng(3);
  std::uniform_real_distribution<float> dist(-1.0f, 1.0f);
  std::vector<uint16_t> k(static_cast<size_t>(num_blocks * bs * n_kv * hd)), v(k.size());
  for (auto& x : k) x = fp32_to_fp16(dist(rng));
  for (auto& x : v) x = fp32_to_fp16(dist(rng));
  kv_layer_view kv{k.data(), v.data(), num_blocks, bs, n_kv, hd};
  std::vector<std::vector<int32_t>> tables(static_cast<size_t>(n_seqs));
  std::vector<const int32_t*> tptr;
  std::vector<int32_t> lens, positions;
  std::vector<int64_t> starts{0};
  for (int64_t s = 0; s < n_seqs; ++s) {
    for (int32_t b = 0; b < blocks_per_seq; ++b) tables[static_cast<size_t>(s)].push_back(static_cast<int32_t>(s * blocks_per_seq + b));
    tptr.push_back(tables[static_cast<size_t>(s)].data());
    lens.push_back(blocks_per_seq);
    if (decode) positions.push_back(n_ctx - 1);
    else for (int32_t p = 0; p < n_ctx; ++p) positions.push_back(p);
    starts.push_back(static_cast<int64_t>(positions.size()));
  }
  attention_batch batch{n_seqs, starts.data(), positions.data(), tptr.data(), lens.data()};
  std::vector<float> q(positions.size() * n_head * hd), out(q.size());
  for (auto& x : q) x = dist(rng);
  thread_pool pool(threads);
  for (auto _ : state) {
    if (fast) paged_attention_fast(kv, batch, q.data(), n_head, 0.125f, out.data(), pool);
    else paged_attention(kv, batch, q.data(), n_head, 0.125f, out.data(), pool);
    benchmark::DoNotOptimize(out.data());
  }
  state.SetLabel(fast ? fast_attention_variant_name(active_fast_attention_variant()) : active_kernels().name);
}

void attention_mode_args(benchmark::internal::Benchmark* b) {
  for (int fast : {0, 1})
    for (int threads : {1, 2}) {
      b->Args({512, 0, 1, threads, fast});
      b->Args({2048, 0, 1, threads, fast});
      b->Args({1024, 1, 32, threads, fast});
    }
  b->ArgNames({"ctx", "decode", "seqs", "threads", "fast"})->UseRealTime();
}

}  // namespace

BENCHMARK(bm_attention_mode)->Apply(attention_mode_args);
// ---- the fast arithmetic (kernels/cpu/fast_matmul.hpp) ----
namespace {

// The matmuls of one step of the default model's shape in the fast arithmetic: packed Q4_1
// layers and a packed Q8_0 lm_head (as bm_decode_step_matmuls, ~96 MB of weights, more than the
// L3). args: n_tokens (1 = decode of one sequence, 32 = batched decode, 512 = a prefill chunk;
// the lm_head runs on min(n_tokens, 32) rows, as a prefill computes logits only for the last
// token of each sequence), threads. MACs counted: 2 * multiply-adds = FLOP-equivalents.
void bm_fast_step_matmuls(benchmark::State& state) {
  const int64_t t = state.range(0);
  const int threads = static_cast<int>(state.range(1));
  struct layer {
    packed_weight q, k, v, o, gate, up, down;
  };
  static std::vector<layer> layers;
  static packed_weight lm_head;
  if (layers.empty()) {
    auto pack = [](const weight& w) { return packed_weight::pack(w.view).value(); };
    for (int l = 0; l < 30; ++l)
      layers.push_back({pack(make_weight(ggml_type::q4_1, 576, 576)), pack(make_weight(ggml_type::q4_1, 576, 192)),
                        pack(make_weight(ggml_type::q4_1, 576, 192)), pack(make_weight(ggml_type::q4_1, 576, 576)),
                        pack(make_weight(ggml_type::q4_1, 576, 1536)), pack(make_weight(ggml_type::q4_1, 576, 1536)),
                        pack(make_weight(ggml_type::q4_1, 1536, 576))});
    lm_head = pack(make_weight(ggml_type::q8_0, 576, 49152));
  }
  const int64_t t_head = std::min<int64_t>(t, 32);
  double bytes = static_cast<double>(lm_head.bytes()), macs = 576.0 * 49152 * t_head;
  for (const auto& l : layers)
    for (const packed_weight* w : {&l.q, &l.k, &l.v, &l.o, &l.gate, &l.up, &l.down}) {
      bytes += static_cast<double>(w->bytes());
      macs += static_cast<double>(w->k()) * static_cast<double>(w->n()) * t;
    }
  std::vector<float> x(static_cast<size_t>(1536 * t), 0.01f), y(static_cast<size_t>(49152 * t));
  std::vector<float> y2(static_cast<size_t>(1536 * t)), y3(static_cast<size_t>(1536 * t));
  for (size_t i = 0; i < x.size(); ++i) x[i] = 0.01f * static_cast<float>(i % 97) - 0.4f;
  thread_pool pool(threads);
  const fast_kernel_table& kt = active_fast_kernels();
  for (auto _ : state) {
    for (const auto& l : layers) {
      const fast_matmul_output qkv[] = {{&l.q, y.data()}, {&l.k, y2.data()}, {&l.v, y3.data()}};
      fast_matmul_multi(kt, qkv, x.data(), t, pool);
      fast_matmul(kt, l.o, x.data(), t, y.data(), pool);
      const fast_matmul_output gu[] = {{&l.gate, y2.data()}, {&l.up, y3.data()}};
      fast_matmul_multi(kt, gu, x.data(), t, pool);
      fast_matmul(kt, l.down, x.data(), t, y.data(), pool);
    }
    fast_matmul(kt, lm_head, x.data(), t_head, y.data(), pool);
    benchmark::DoNotOptimize(y.data());
  }
  state.counters["weight_GBps"] = benchmark::Counter(bytes * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.counters["tokens_per_s"] = benchmark::Counter(static_cast<double>(t), benchmark::Counter::kIsIterationInvariantRate);
  state.counters["GMACps"] = benchmark::Counter(macs * 1e-9, benchmark::Counter::kIsIterationInvariantRate);
  state.SetLabel(kt.name);
}

// The 16-bit integer multiply-add rate of one core: vpdpwssd on 12 independent zmm
// accumulators, in registers -- the compute ceiling of the fast arithmetic's AVX-512 kernel.
__attribute__((target("avx512f,avx512bw,avx512vnni"))) void dot_int16_loop(int64_t n, __m512i* acc) {
  const __m512i a = _mm512_set1_epi16(3), b = _mm512_set1_epi16(-2);
  __m512i s[12];
  for (int j = 0; j < 12; ++j) s[j] = acc[j];
  for (int64_t i = 0; i < n; ++i) {
#pragma GCC unroll 12
    for (int j = 0; j < 12; ++j) s[j] = _mm512_dpwssd_epi32(s[j], a, b);
  }
  for (int j = 0; j < 12; ++j) acc[j] = s[j];
}

void bm_int16_dot_peak(benchmark::State& state) {
  if (!__builtin_cpu_supports("avx512vnni")) {
    state.SkipWithError("no AVX-512 VNNI");
    return;
  }
  constexpr int64_t iters = 1 << 20;
  alignas(64) __m512i acc[12] = {};
  for (auto _ : state) {
    dot_int16_loop(iters, acc);
    benchmark::DoNotOptimize(acc);
  }
  // per iteration: 12 instructions x 32 int16 multiply-adds
  state.counters["int16_GMACps"] = benchmark::Counter(static_cast<double>(iters) * 12 * 32 * 1e-9,
                                                      benchmark::Counter::kIsIterationInvariantRate);
}

}  // namespace

BENCHMARK(bm_fast_step_matmuls)->Args({1, 1})->Args({1, 2})->Args({32, 1})->Args({32, 2})
    ->Args({512, 1})->Args({512, 2})->ArgNames({"tokens", "threads"})->UseRealTime();
BENCHMARK(bm_int16_dot_peak)->UseRealTime();
BENCHMARK_MAIN();
