// Presenting a benchmark run: the human table (vLLM benchmark_serving's layout) and the JSON file.
// Pure functions; any thread.
#pragma once

#include <string>
#include <vector>

#include "bench/stats.hpp"

namespace troupe::bench {

// What was run, echoed in both outputs so a result file explains itself.
struct run_description {
  std::string base_url, endpoint, model, workload;  // workload: "sharegpt", "file.jsonl", ...
  size_t num_requests = 0;
  size_t max_concurrency = 0;   // 0 = unbounded
  double request_rate = 0;      // requests/s; infinity = closed loop
  double burstiness = 1;
  uint64_t seed = 0;
  size_t connections_opened = 0;
  slo goal;
};

std::string format_table(const run_description& d, const bench_metrics& m);

// One JSON object: "config", "summary" (metrics, latencies in ms) and, when per_request is set,
// "requests" (success, error, prompt/output tokens, start/ttft/latency in ms, itl_ms).
std::string format_json(const run_description& d, const bench_metrics& m,
                        const std::vector<request_record>* per_request);

// One rate of a sweep (troupe bench --request-rates): what was run and what it gave.
struct sweep_point {
  run_description run;
  bench_metrics metrics;
  std::vector<request_record> records;  // only kept for --json-per-request
};

// One line per rate: rate, completed, throughput, goodput (with the SLO), TTFT and TPOT p50/p99.
std::string format_sweep_table(const std::vector<sweep_point>& points);

// {"sweep": [one format_json object per rate, in rate order]}; per-request records when
// per_request is set.
std::string format_sweep_json(const std::vector<sweep_point>& points, bool per_request);

}  // namespace troupe::bench
