#include "bench/stats.hpp"

#include <algorithm>
#include <cmath>

#include "troupe/result.hpp"

namespace troupe::bench {

double percentile(std::vector<double> values, double p) {
  TROUPE_ASSERT(p >= 0 && p <= 100);
  if (values.empty()) return 0;
  std::sort(values.begin(), values.end());
  // numpy's "linear" method: rank = p/100 * (n-1), interpolate between its floor and ceiling.
  const double rank = p / 100.0 * static_cast<double>(values.size() - 1);
  const size_t lo = static_cast<size_t>(std::floor(rank));
  const size_t hi = std::min(lo + 1, values.size() - 1);
  const double frac = rank - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

latency_summary summarize_ms(const std::vector<double>& seconds) {
  latency_summary s;
  s.n = seconds.size();
  if (seconds.empty()) return s;
  double sum = 0;
  for (double v : seconds) sum += v;
  const double mean = sum / static_cast<double>(s.n);
  double var = 0;
  for (double v : seconds) var += (v - mean) * (v - mean);
  s.mean_ms = mean * 1e3;
  s.std_ms = std::sqrt(var / static_cast<double>(s.n)) * 1e3;
  s.p50_ms = percentile(seconds, 50) * 1e3;
  s.p90_ms = percentile(seconds, 90) * 1e3;
  s.p99_ms = percentile(seconds, 99) * 1e3;
  s.max_ms = *std::max_element(seconds.begin(), seconds.end()) * 1e3;
  return s;
}

std::optional<double> tpot_s(const request_record& r) {
  if (!r.success || r.output_tokens <= 1) return std::nullopt;
  return (r.latency_s - r.ttft_s) / static_cast<double>(r.output_tokens - 1);
}

bench_metrics compute_metrics(const std::vector<request_record>& records, double duration_s,
                              const slo& goal) {
  TROUPE_ASSERT(duration_s > 0);
  bench_metrics m;
  m.num_requests = records.size();
  m.duration_s = duration_s;
  std::vector<double> ttfts, tpots, itls, e2es;
  for (const auto& r : records) {
    if (!r.success) {
      ++m.failed;
      if (m.first_errors.size() < 5 &&
          std::find(m.first_errors.begin(), m.first_errors.end(), r.error) == m.first_errors.end())
        m.first_errors.push_back(r.error);
      continue;
    }
    ++m.completed;
    m.total_input_tokens += r.prompt_tokens;
    m.total_output_tokens += r.output_tokens;
    const auto tpot = tpot_s(r);
    if (tpot) tpots.push_back(*tpot);
    ttfts.push_back(r.ttft_s);
    e2es.push_back(r.latency_s);
    itls.insert(itls.end(), r.itl_s.begin(), r.itl_s.end());
    if (goal.any()) {
      // vLLM: a request with <= 1 output token has TPOT 0 for the goodput check.
      const double tpot_ms = tpot.value_or(0.0) * 1e3;
      const bool good = (!goal.ttft_ms || r.ttft_s * 1e3 <= *goal.ttft_ms) &&
                        (!goal.tpot_ms || tpot_ms <= *goal.tpot_ms) &&
                        (!goal.e2e_ms || r.latency_s * 1e3 <= *goal.e2e_ms);
      if (good) ++m.good;
    }
  }
  m.request_throughput = static_cast<double>(m.completed) / duration_s;
  m.request_goodput = static_cast<double>(m.good) / duration_s;
  m.output_throughput = static_cast<double>(m.total_output_tokens) / duration_s;
  m.total_token_throughput =
      static_cast<double>(m.total_input_tokens + m.total_output_tokens) / duration_s;
  m.ttft = summarize_ms(ttfts);
  m.tpot = summarize_ms(tpots);
  m.itl = summarize_ms(itls);
  m.e2e = summarize_ms(e2es);
  return m;
}

}  // namespace troupe::bench
