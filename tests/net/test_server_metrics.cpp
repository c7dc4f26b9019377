// /metrics text: the runtime's per-step histograms render as Prometheus histograms (cumulative
// buckets ending in +Inf, _sum, _count), the per-stage one with a stage label per stage.
#include <catch2/catch.hpp>

#include "net/server_metrics.hpp"

using namespace troupe::net;

namespace {

bool has_line(const std::string& text, const std::string& line) {
  return text.find("\n" + line + "\n") != std::string::npos;
}

histogram_snapshot two_bucket(std::uint64_t a, std::uint64_t b, std::uint64_t c, double sum) {
  return histogram_snapshot{{0.001, 0.01}, {a, b, c}, sum, a + b + c};
}

}  // namespace

TEST_CASE("step timers render as cumulative Prometheus histograms", "[net][metrics]") {
  server_metrics m;
  runtime_gauges g;
  g.step_round_trip_s = two_bucket(1, 2, 3, 0.5);
  g.step_forward_s = {two_bucket(0, 4, 0, 0.02), two_bucket(1, 1, 1, 0.25)};
  const std::string text = m.render(g);
  CHECK(has_line(text, "# TYPE troupe:step_round_trip_seconds histogram"));
  CHECK(has_line(text, "troupe:step_round_trip_seconds_bucket{le=\"0.001\"} 1"));
  CHECK(has_line(text, "troupe:step_round_trip_seconds_bucket{le=\"0.01\"} 3"));
  CHECK(has_line(text, "troupe:step_round_trip_seconds_bucket{le=\"+Inf\"} 6"));
  CHECK(has_line(text, "troupe:step_round_trip_seconds_sum 0.5"));
  CHECK(has_line(text, "troupe:step_round_trip_seconds_count 6"));
  CHECK(has_line(text, "troupe:step_forward_seconds_bucket{stage=\"0\",le=\"0.01\"} 4"));
  CHECK(has_line(text, "troupe:step_forward_seconds_bucket{stage=\"1\",le=\"+Inf\"} 3"));
  CHECK(has_line(text, "troupe:step_forward_seconds_sum{stage=\"1\"} 0.25"));
  CHECK(has_line(text, "troupe:step_forward_seconds_count{stage=\"0\"} 4"));
  // One HELP/TYPE header for all stages; nothing for histograms the runtime did not report.
  CHECK(text.find("# TYPE troupe:step_forward_seconds histogram") ==
        text.rfind("# TYPE troupe:step_forward_seconds histogram"));
  CHECK(text.find("troupe:step_sample_seconds") == std::string::npos);
}
