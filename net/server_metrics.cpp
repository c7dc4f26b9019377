#include "net/server_metrics.hpp"

#include <fmt/format.h>

namespace troupe::net {

latency_histogram::latency_histogram(std::vector<double> bounds_s)
    : bounds_(std::move(bounds_s)), counts_(bounds_.size() + 1, 0) {}

void latency_histogram::observe(double seconds) {
  std::lock_guard lock(mu_);
  std::size_t i = 0;
  while (i < bounds_.size() && seconds > bounds_[i]) ++i;
  ++counts_[i];
  sum_ += seconds;
  ++count_;
}

void latency_histogram::render(std::string& out, const std::string& name,
                               const std::string& help) const {
  std::lock_guard lock(mu_);
  out += fmt::format("# HELP {} {}\n# TYPE {} histogram\n", name, help, name);
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < bounds_.size(); ++i) {
    cum += counts_[i];
    out += fmt::format("{}_bucket{{le=\"{}\"}} {}\n", name, bounds_[i], cum);
  }
  cum += counts_.back();
  out += fmt::format("{}_bucket{{le=\"+Inf\"}} {}\n{}_sum {}\n{}_count {}\n", name, cum, name,
                     sum_, name, count_);
}

void render_histogram(std::string& out, const std::string& name, const std::string& labels,
                      const histogram_snapshot& h) {
  if (h.counts.size() != h.bounds.size() + 1) return;
  const std::string sep = labels.empty() ? "" : ",";
  std::uint64_t cum = 0;
  for (std::size_t i = 0; i < h.bounds.size(); ++i) {
    cum += h.counts[i];
    out += fmt::format("{}_bucket{{{}{}le=\"{}\"}} {}\n", name, labels, sep, h.bounds[i], cum);
  }
  cum += h.counts.back();
  const std::string braces = labels.empty() ? "" : "{" + labels + "}";
  out += fmt::format("{}_bucket{{{}{}le=\"+Inf\"}} {}\n{}_sum{} {}\n{}_count{} {}\n", name,
                     labels, sep, cum, name, braces, h.sum, name, braces, h.count);
}

server_metrics::server_metrics()
    : ttft_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0,
             7.5, 10.0, 20.0, 40.0, 80.0}),
      itl_({0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75,
            1.0, 2.5, 5.0}),
      e2e_({0.1, 0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0,
            60.0, 120.0}) {}

void server_metrics::count_response(int status) {
  std::lock_guard lock(mu_);
  ++responses_by_status_[status];
}

void server_metrics::observe_request(const std::string& finish_reason,
                                     std::int64_t num_prompt_tokens,
                                     std::int64_t num_generation_tokens, double e2e_s) {
  {
    std::lock_guard lock(mu_);
    ++requests_by_finish_[finish_reason];
    prompt_tokens_total_ += static_cast<std::uint64_t>(std::max<std::int64_t>(0, num_prompt_tokens));
    generation_tokens_total_ +=
        static_cast<std::uint64_t>(std::max<std::int64_t>(0, num_generation_tokens));
  }
  e2e_.observe(e2e_s);
}

std::string server_metrics::render(const runtime_gauges& g) const {
  std::string out;
  auto gauge = [&](const char* name, const char* help, auto v) {
    out += fmt::format("# HELP troupe:{} {}\n# TYPE troupe:{} gauge\ntroupe:{} {}\n", name, help,
                       name, name, v);
  };
  auto counter = [&](const char* name, const char* help, auto v) {
    out += fmt::format("# HELP troupe:{} {}\n# TYPE troupe:{} counter\ntroupe:{} {}\n", name,
                       help, name, name, v);
  };
  {
    std::lock_guard lock(mu_);
    out += "# HELP troupe:http_responses_total HTTP answers by status code.\n"
           "# TYPE troupe:http_responses_total counter\n";
    for (auto& [status, n] : responses_by_status_)
      out += fmt::format("troupe:http_responses_total{{status=\"{}\"}} {}\n", status, n);
    out += "# HELP troupe:request_success_total Finished generation requests by finish reason.\n"
           "# TYPE troupe:request_success_total counter\n";
    for (auto& [reason, n] : requests_by_finish_)
      out += fmt::format("troupe:request_success_total{{finished_reason=\"{}\"}} {}\n", reason, n);
    counter("prompt_tokens_total", "Prompt tokens of finished requests.", prompt_tokens_total_);
    counter("generation_tokens_total", "Generated tokens of finished requests.",
            generation_tokens_total_);
  }
  gauge("num_requests_waiting", "Sequences waiting to be scheduled.", g.num_waiting_seqs);
  gauge("num_requests_running", "Sequences running (holding KV blocks).", g.num_running_seqs);
  gauge("kv_blocks_total", "KV cache blocks in the pool.", g.num_kv_blocks_total);
  gauge("kv_blocks_used", "KV cache blocks referenced by sequences.", g.num_kv_blocks_used);
  gauge("kv_blocks_free", "KV cache blocks not referenced by any sequence.",
        g.num_kv_blocks_total - g.num_kv_blocks_used);
  gauge("kv_blocks_cached", "Free KV cache blocks holding reusable prefix content.",
        g.num_kv_blocks_cached);
  gauge("kv_cache_usage_perc", "Fraction of KV cache blocks in use.",
        g.num_kv_blocks_total > 0 ? static_cast<double>(g.num_kv_blocks_used) /
                                        static_cast<double>(g.num_kv_blocks_total)
                                  : 0.0);
  counter("num_preemptions_total", "Sequences preempted (recomputed later).",
          g.num_preemptions_total);
  counter("num_steps_total", "Scheduler steps run.", g.num_steps_total);
  counter("prompt_tokens_computed_total", "Prompt tokens computed (recompute counts again).",
          g.num_prompt_tokens_computed_total);
  counter("prefix_cache_hit_tokens_total", "Prompt tokens whose K/V came from the prefix cache.",
          g.num_prefix_cache_hit_tokens_total);
  counter("executor_replays_total", "Sequences replayed after an executor restart.",
          g.num_executor_replays_total);
  counter("spec_decode_num_draft_tokens_total",
          "Speculative decoding: draft tokens sent for verification.",
          g.num_spec_decode_draft_tokens_total);
  counter("spec_decode_num_accepted_tokens_total",
          "Speculative decoding: draft tokens the model accepted.",
          g.num_spec_decode_accepted_tokens_total);
  if (!g.batch_num_seqs_buckets.empty()) {
    out += "# HELP troupe:batch_num_seqs Sequences per scheduler step.\n"
           "# TYPE troupe:batch_num_seqs histogram\n";
    std::uint64_t cum = 0;
    for (std::size_t i = 0; i < g.batch_num_seqs_buckets.size(); ++i) {
      cum += g.batch_num_seqs_buckets[i];
      if (i + 1 == g.batch_num_seqs_buckets.size())
        out += fmt::format("troupe:batch_num_seqs_bucket{{le=\"+Inf\"}} {}\n", cum);
      else
        out += fmt::format("troupe:batch_num_seqs_bucket{{le=\"{}\"}} {}\n", 1u << i, cum);
    }
    out += fmt::format("troupe:batch_num_seqs_count {}\n", cum);
  }
  auto histogram = [&](const char* name, const char* help, const histogram_snapshot& h) {
    if (h.counts.empty()) return;
    out += fmt::format("# HELP troupe:{} {}\n# TYPE troupe:{} histogram\n", name, help, name);
    render_histogram(out, std::string("troupe:") + name, "", h);
  };
  histogram("step_plan_build_seconds", "Scheduler time to build one step plan.",
            g.step_plan_build_s);
  histogram("step_round_trip_seconds",
            "Scheduler-observed step round trip: plan sent to result received.",
            g.step_round_trip_s);
  if (!g.step_forward_s.empty()) {
    out += "# HELP troupe:step_forward_seconds Executor forward pass per step, by pipeline "
           "stage.\n# TYPE troupe:step_forward_seconds histogram\n";
    for (std::size_t k = 0; k < g.step_forward_s.size(); ++k)
      render_histogram(out, "troupe:step_forward_seconds", fmt::format("stage=\"{}\"", k),
                       g.step_forward_s[k]);
  }
  histogram("step_sample_seconds", "Last executor stage's sampling time per step.",
            g.step_sample_s);
  histogram("step_num_tokens", "Tokens computed per scheduler step.", g.step_num_tokens);
  ttft_.render(out, "troupe:time_to_first_token_seconds", "Time to first token.");
  itl_.render(out, "troupe:inter_token_latency_seconds", "Time between output tokens.");
  e2e_.render(out, "troupe:e2e_request_latency_seconds", "End-to-end request latency.");
  return out;
}

}  // namespace troupe::net
