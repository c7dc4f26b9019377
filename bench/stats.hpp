// Benchmark statistics with the definitions of vLLM's benchmark_serving.py (calculate_metrics),
// so figures from `troupe bench` read the same as vLLM's:
//  - TTFT: request start -> first chunk carrying generated text.
//  - ITL: gap between consecutive text chunks of one request (per SSE chunk, as vLLM; a chunk
//    may carry more than one token). All gaps of all successful requests are pooled.
//  - TPOT: (E2E - TTFT) / (output_tokens - 1), per request, only when output_tokens > 1 (the
//    first token is excluded). For goodput a request with <= 1 token counts TPOT as 0.
//  - E2E latency: request start -> last text chunk.
//  - request / output / total token throughput: successful requests, their output tokens, and
//    their input + output tokens, each divided by the benchmark's wall duration.
//  - goodput: successful requests meeting every given SLO (ttft <= slo, tpot <= slo, e2e <= slo)
//    per second of wall duration.
//  - percentiles: linear interpolation between closest ranks (numpy.percentile's default).
// Failed requests count as failures only (no latency sample, zero output tokens).
// Pure functions; any thread.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace troupe::bench {

// What the client observed for one request. Times in seconds.
struct request_record {
  bool success = false;
  std::string error;             // why it failed (empty on success)
  int64_t prompt_tokens = 0;     // input length (server's usage if reported, else the client's)
  int64_t output_tokens = 0;     // generated tokens (server's usage if reported, else chunks)
  double start_s = 0;            // since the benchmark started
  double ttft_s = 0;
  double latency_s = 0;          // E2E
  std::vector<double> itl_s;     // gaps between text chunks
};

// Summary of one latency series in milliseconds. All zero (n = 0) for an empty series.
struct latency_summary {
  size_t n = 0;
  double mean_ms = 0, std_ms = 0, p50_ms = 0, p90_ms = 0, p99_ms = 0, max_ms = 0;
};

struct slo {
  std::optional<double> ttft_ms, tpot_ms, e2e_ms;
  bool any() const { return ttft_ms || tpot_ms || e2e_ms; }
};

struct bench_metrics {
  size_t num_requests = 0, completed = 0, failed = 0, good = 0;
  double duration_s = 0;
  int64_t total_input_tokens = 0, total_output_tokens = 0;
  double request_throughput = 0;       // completed / duration
  double request_goodput = 0;          // good / duration (0 when no SLO given)
  double output_throughput = 0;        // tokens/s
  double total_token_throughput = 0;   // tokens/s
  latency_summary ttft, tpot, itl, e2e;
  std::vector<std::string> first_errors;  // up to 5 distinct error messages, for the report
};

// numpy.percentile(values, p) with linear interpolation. REQUIRES: 0 <= p <= 100. Empty -> 0.
double percentile(std::vector<double> values, double p);

// Mean, population standard deviation (numpy's default), p50/p90/p99 and max of seconds -> ms.
latency_summary summarize_ms(const std::vector<double>& seconds);

// TPOT of one successful request as defined above; nullopt when output_tokens <= 1.
std::optional<double> tpot_s(const request_record& r);

// REQUIRES: duration_s > 0.
bench_metrics compute_metrics(const std::vector<request_record>& records, double duration_s,
                              const slo& goal);

}  // namespace troupe::bench
