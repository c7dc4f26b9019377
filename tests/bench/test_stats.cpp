// The statistics of troupe bench against hand-computed values with vLLM's definitions
// (benchmark_serving.py calculate_metrics) and numpy.percentile's linear interpolation.
#include <catch2/catch.hpp>

#include "bench/stats.hpp"

using namespace troupe::bench;

namespace {
request_record ok(double ttft, double latency, int64_t in, int64_t out, std::vector<double> itl = {}) {
  request_record r;
  r.success = true;
  r.ttft_s = ttft;
  r.latency_s = latency;
  r.prompt_tokens = in;
  r.output_tokens = out;
  r.itl_s = std::move(itl);
  return r;
}
request_record failed(std::string why) {
  request_record r;
  r.error = std::move(why);
  return r;
}
}  // namespace

TEST_CASE("percentile interpolates linearly between closest ranks like numpy", "[bench][stats]") {
  CHECK(percentile({1, 2, 3, 4}, 50) == Approx(2.5));
  CHECK(percentile({4, 1, 3, 2}, 0) == Approx(1));      // order of input does not matter
  CHECK(percentile({4, 1, 3, 2}, 100) == Approx(4));
  CHECK(percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 90) == Approx(9.1));   // numpy: 9.1
  CHECK(percentile({1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, 99) == Approx(9.91));  // numpy: 9.91
  CHECK(percentile({7}, 99) == Approx(7));
  CHECK(percentile({}, 50) == 0);
}

TEST_CASE("summaries are in milliseconds with numpy's population std", "[bench][stats]") {
  const auto s = summarize_ms({0.001, 0.002, 0.003, 0.004});
  CHECK(s.n == 4);
  CHECK(s.mean_ms == Approx(2.5));
  CHECK(s.std_ms == Approx(1.118034).epsilon(1e-5));  // sqrt(1.25)
  CHECK(s.p50_ms == Approx(2.5));
  CHECK(s.max_ms == Approx(4));
  CHECK(summarize_ms({}).n == 0);
}

TEST_CASE("TPOT excludes the first token and needs two tokens", "[bench][stats]") {
  // 11 tokens: first at 100 ms, last at 1100 ms -> 10 gaps of 100 ms.
  CHECK(*tpot_s(ok(0.1, 1.1, 5, 11)) == Approx(0.1));
  CHECK_FALSE(tpot_s(ok(0.1, 0.1, 5, 1)).has_value());
  CHECK_FALSE(tpot_s(failed("x")).has_value());
}

TEST_CASE("throughputs count successful requests only; failures are counted and shown",
          "[bench][stats]") {
  std::vector<request_record> rs = {ok(0.1, 1.1, 100, 11, {0.1, 0.1}), ok(0.3, 0.3, 50, 1),
                                    failed("HTTP 503: busy"), failed("HTTP 503: busy"),
                                    failed("connect: refused")};
  const auto m = compute_metrics(rs, 2.0, {});
  CHECK(m.num_requests == 5);
  CHECK(m.completed == 2);
  CHECK(m.failed == 3);
  CHECK(m.total_input_tokens == 150);
  CHECK(m.total_output_tokens == 12);
  CHECK(m.request_throughput == Approx(1.0));
  CHECK(m.output_throughput == Approx(6.0));
  CHECK(m.total_token_throughput == Approx(81.0));
  CHECK(m.ttft.n == 2);
  CHECK(m.ttft.mean_ms == Approx(200));
  CHECK(m.tpot.n == 1);  // the one-token request has no TPOT sample
  CHECK(m.tpot.mean_ms == Approx(100));
  CHECK(m.itl.n == 2);   // ITLs of all requests pooled
  CHECK(m.e2e.p50_ms == Approx(700));
  CHECK(m.request_goodput == 0);  // no SLO given
  REQUIRE(m.first_errors.size() == 2);  // distinct messages only
  CHECK(m.first_errors[0] == "HTTP 503: busy");
}

TEST_CASE("goodput counts requests meeting every SLO; a one-token request has TPOT 0",
          "[bench][stats]") {
  std::vector<request_record> rs = {
      ok(0.150, 0.150 + 9 * 0.040, 10, 10),  // TTFT 150 ms, TPOT 40 ms: good
      ok(0.250, 0.250 + 9 * 0.010, 10, 10),  // TTFT 250 ms: misses the TTFT SLO
      ok(0.100, 0.100 + 9 * 0.060, 10, 10),  // TPOT 60 ms: misses the TPOT SLO
      ok(0.100, 0.100, 10, 1),               // one token: TPOT 0, good
      failed("timeout"),                     // never good
  };
  slo goal;
  goal.ttft_ms = 200;
  goal.tpot_ms = 50;
  const auto m = compute_metrics(rs, 4.0, goal);
  CHECK(m.good == 2);
  CHECK(m.request_goodput == Approx(0.5));

  slo only_ttft;
  only_ttft.ttft_ms = 200;
  CHECK(compute_metrics(rs, 4.0, only_ttft).good == 3);
  slo e2e;
  e2e.e2e_ms = 500;
  CHECK(compute_metrics(rs, 4.0, e2e).good == 2);  // 510 ms, 340 ms, 640 ms, 100 ms
}
