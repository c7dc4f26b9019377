#include "bench/report.hpp"

#include <fmt/format.h>

#include <cmath>

#include "net/json_writer.hpp"

namespace troupe::bench {
namespace {

void add_row(std::string& out, std::string_view label, std::string_view value) {
  out += fmt::format("{:<40}{:>12}\n", label, value);
}

void add_latency(std::string& out, std::string_view title, std::string_view name,
                 const latency_summary& s) {
  out += fmt::format("{:-^52}\n", fmt::format(" {} ", title));
  add_row(out, fmt::format("Mean {} (ms):", name), fmt::format("{:.2f}", s.mean_ms));
  add_row(out, fmt::format("Median {} (ms):", name), fmt::format("{:.2f}", s.p50_ms));
  add_row(out, fmt::format("P90 {} (ms):", name), fmt::format("{:.2f}", s.p90_ms));
  add_row(out, fmt::format("P99 {} (ms):", name), fmt::format("{:.2f}", s.p99_ms));
}

void write_latency(net::json_writer& w, std::string_view key, const latency_summary& s) {
  w.key(key).begin_object();
  w.field("n", static_cast<uint64_t>(s.n));
  w.field("mean_ms", s.mean_ms).field("std_ms", s.std_ms).field("p50_ms", s.p50_ms);
  w.field("p90_ms", s.p90_ms).field("p99_ms", s.p99_ms).field("max_ms", s.max_ms);
  w.end_object();
}

}  // namespace

std::string format_table(const run_description& d, const bench_metrics& m) {
  std::string out;
  out += fmt::format("{:=^52}\n", " Serving Benchmark Result ");
  add_row(out, "Server:", d.base_url);
  add_row(out, "Endpoint:", d.endpoint);
  add_row(out, "Workload:", d.workload);
  add_row(out, "Max concurrency:", d.max_concurrency ? std::to_string(d.max_concurrency) : "none");
  add_row(out, "Request rate (req/s):",
          std::isinf(d.request_rate) ? "inf" : fmt::format("{:.2f}", d.request_rate));
  add_row(out, "Successful requests:", std::to_string(m.completed));
  add_row(out, "Failed requests:", std::to_string(m.failed));
  add_row(out, "Benchmark duration (s):", fmt::format("{:.2f}", m.duration_s));
  add_row(out, "Total input tokens:", std::to_string(m.total_input_tokens));
  add_row(out, "Total generated tokens:", std::to_string(m.total_output_tokens));
  add_row(out, "Request throughput (req/s):", fmt::format("{:.2f}", m.request_throughput));
  if (d.goal.any())
    add_row(out, "Request goodput (req/s):", fmt::format("{:.2f}", m.request_goodput));
  add_row(out, "Output token throughput (tok/s):", fmt::format("{:.2f}", m.output_throughput));
  add_row(out, "Total token throughput (tok/s):", fmt::format("{:.2f}", m.total_token_throughput));
  add_latency(out, "Time to First Token", "TTFT", m.ttft);
  add_latency(out, "Time per Output Token (excl. 1st token)", "TPOT", m.tpot);
  add_latency(out, "Inter-token Latency", "ITL", m.itl);
  add_latency(out, "End-to-end Latency", "E2EL", m.e2e);
  if (d.goal.any()) {
    std::string s;
    if (d.goal.ttft_ms) s += fmt::format("TTFT <= {} ms ", *d.goal.ttft_ms);
    if (d.goal.tpot_ms) s += fmt::format("TPOT <= {} ms ", *d.goal.tpot_ms);
    if (d.goal.e2e_ms) s += fmt::format("E2EL <= {} ms ", *d.goal.e2e_ms);
    out += fmt::format("{:-^52}\n", " Goodput ");
    add_row(out, "SLO:", s);
    add_row(out, "Requests meeting the SLO:", fmt::format("{}/{}", m.good, m.num_requests));
  }
  if (!m.first_errors.empty()) {
    out += fmt::format("{:-^52}\n", " Errors (first distinct) ");
    for (const auto& e : m.first_errors) out += "  " + e + "\n";
  }
  out += std::string(52, '=') + "\n";
  return out;
}

std::string format_json(const run_description& d, const bench_metrics& m,
                        const std::vector<request_record>* per_request) {
  net::json_writer w;
  w.begin_object();
  w.key("config").begin_object();
  w.field("base_url", d.base_url).field("endpoint", d.endpoint).field("model", d.model);
  w.field("workload", d.workload).field("num_requests", static_cast<uint64_t>(d.num_requests));
  w.field("max_concurrency", static_cast<uint64_t>(d.max_concurrency));
  if (std::isinf(d.request_rate)) w.key("request_rate").value("inf");
  else w.field("request_rate", d.request_rate);
  w.field("burstiness", d.burstiness).field("seed", d.seed);
  w.key("slo").begin_object();
  if (d.goal.ttft_ms) w.field("ttft_ms", *d.goal.ttft_ms);
  if (d.goal.tpot_ms) w.field("tpot_ms", *d.goal.tpot_ms);
  if (d.goal.e2e_ms) w.field("e2e_ms", *d.goal.e2e_ms);
  w.end_object().end_object();

  w.key("summary").begin_object();
  w.field("completed", static_cast<uint64_t>(m.completed));
  w.field("failed", static_cast<uint64_t>(m.failed));
  w.field("good", static_cast<uint64_t>(m.good));
  w.field("duration_s", m.duration_s);
  w.field("total_input_tokens", m.total_input_tokens);
  w.field("total_output_tokens", m.total_output_tokens);
  w.field("request_throughput", m.request_throughput);
  w.field("request_goodput", m.request_goodput);
  w.field("output_throughput", m.output_throughput);
  w.field("total_token_throughput", m.total_token_throughput);
  w.field("connections_opened", static_cast<uint64_t>(d.connections_opened));
  write_latency(w, "ttft", m.ttft);
  write_latency(w, "tpot", m.tpot);
  write_latency(w, "itl", m.itl);
  write_latency(w, "e2el", m.e2e);
  w.key("errors").begin_array();
  for (const auto& e : m.first_errors) w.value(e);
  w.end_array();
  w.end_object();

  if (per_request) {
    w.key("requests").begin_array();
    for (const auto& r : *per_request) {
      w.begin_object();
      w.field("success", r.success);
      if (!r.success) w.field("error", r.error);
      w.field("prompt_tokens", r.prompt_tokens).field("output_tokens", r.output_tokens);
      w.field("start_ms", r.start_s * 1e3).field("ttft_ms", r.ttft_s * 1e3);
      w.field("latency_ms", r.latency_s * 1e3);
      w.key("itl_ms").begin_array();
      for (double v : r.itl_s) w.value(v * 1e3);
      w.end_array();
      w.end_object();
    }
    w.end_array();
  }
  w.end_object();
  return w.take();
}

std::string format_sweep_table(const std::vector<sweep_point>& points) {
  std::string out = fmt::format("{:=^96}\n", " Request-rate sweep ");
  if (!points.empty() && points.front().run.goal.any()) {
    const slo& g = points.front().run.goal;
    std::string s;
    if (g.ttft_ms) s += fmt::format(" TTFT <= {} ms", *g.ttft_ms);
    if (g.tpot_ms) s += fmt::format(" TPOT <= {} ms", *g.tpot_ms);
    if (g.e2e_ms) s += fmt::format(" E2EL <= {} ms", *g.e2e_ms);
    out += "goodput SLO:" + s + "\n";
  }
  out += fmt::format("{:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10} {:>10}\n", "rate/s",
                     "completed", "req/s", "good/s", "good %", "TTFT p50", "TTFT p99", "TPOT p50",
                     "TPOT p99");
  for (const auto& p : points) {
    const auto& m = p.metrics;
    const double share = m.num_requests ? 100.0 * static_cast<double>(m.good) /
                                              static_cast<double>(m.num_requests)
                                        : 0.0;
    const std::string rate =
        std::isinf(p.run.request_rate) ? "inf" : fmt::format("{:.2f}", p.run.request_rate);
    out += fmt::format("{:>10} {:>10} {:>10.2f} {:>10} {:>10} {:>10.0f} {:>10.0f} {:>10.1f} "
                       "{:>10.1f}\n",
                       rate, fmt::format("{}/{}", m.completed, m.num_requests), m.request_throughput,
                       p.run.goal.any() ? fmt::format("{:.2f}", m.request_goodput) : "-",
                       p.run.goal.any() ? fmt::format("{:.0f}", share) : "-", m.ttft.p50_ms,
                       m.ttft.p99_ms, m.tpot.p50_ms, m.tpot.p99_ms);
  }
  out += std::string(96, '=') + "\n";
  return out;
}

std::string format_sweep_json(const std::vector<sweep_point>& points, bool per_request) {
  std::string out = "{\"sweep\":[";
  for (size_t i = 0; i < points.size(); ++i) {
    if (i) out += ',';
    const auto& p = points[i];
    out += format_json(p.run, p.metrics, per_request ? &p.records : nullptr);
  }
  out += "]}";
  return out;
}

}  // namespace troupe::bench
