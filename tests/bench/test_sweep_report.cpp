// The request-rate sweep's outputs (troupe bench --request-rates): one line per rate with the
// goodput, and {"sweep": [one result object per rate]} for tools/plot-goodput.
#include <catch2/catch.hpp>

#include <limits>

#include "bench/report.hpp"

using namespace troupe::bench;

namespace {

sweep_point point(double rate, size_t good) {
  sweep_point p;
  p.run.base_url = "http://127.0.0.1:8000";
  p.run.request_rate = rate;
  p.run.num_requests = 10;
  p.run.goal.ttft_ms = 1000;
  p.run.goal.tpot_ms = 50;
  p.metrics.num_requests = 10;
  p.metrics.completed = 10;
  p.metrics.good = good;
  p.metrics.duration_s = 5;
  p.metrics.request_throughput = 2;
  p.metrics.request_goodput = static_cast<double>(good) / 5;
  return p;
}

}  // namespace

TEST_CASE("the sweep table has one line per rate with goodput and the SLO", "[bench][report]") {
  const auto table = format_sweep_table({point(0.5, 10), point(4, 3),
                                         point(std::numeric_limits<double>::infinity(), 1)});
  CHECK(table.find("TTFT <= 1000 ms TPOT <= 50 ms") != std::string::npos);
  CHECK(table.find("0.50") != std::string::npos);
  CHECK(table.find("inf") != std::string::npos);
  CHECK(table.find("0.60") != std::string::npos);  // 3 good in 5 s
  CHECK(table.find("30") != std::string::npos);    // 30 % good
}

TEST_CASE("the sweep JSON holds one result object per rate, in order", "[bench][report]") {
  const auto json = format_sweep_json({point(0.5, 10), point(4, 3)}, false);
  CHECK(json.rfind("{\"sweep\":[{\"config\":", 0) == 0);
  const auto first = json.find("\"request_rate\":0.5");
  const auto second = json.find("\"request_rate\":4");
  REQUIRE(first != std::string::npos);
  REQUIRE(second != std::string::npos);
  CHECK(first < second);
  CHECK(json.find("\"request_goodput\":0.6") != std::string::npos);
  CHECK(json.find("\"requests\"") == std::string::npos);  // no per-request records asked for
  CHECK(json.back() == '}');
}
