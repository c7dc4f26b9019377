// The load generator's HTTP side: streams requests to an OpenAI-compatible server and times every
// generated chunk as it arrives.
//
// One io thread (the caller's, inside run_load) drives every connection with Boost.Beast/Asio:
// requests become eligible at their arrival offset, and at most max_concurrency are in flight;
// each in-flight request owns one keep-alive connection, taken from an idle pool or opened on
// demand, so a closed loop at concurrency N holds N connections for the whole run. A reused
// connection that the server had closed is reopened and the request retried once, with its clock
// restarted (that wait is the client's, not the server's).
//
// Requests are always `stream: true` with `stream_options.include_usage`, `ignore_eos: true` and
// `max_tokens`, greedy (temperature 0), so the output length is the one asked for. A request fails
// (record.success = false, record.error says why) on: connection or socket errors, a non-200
// status (the body is quoted), an error event in the stream, no generated text, the stream ending
// without `data: [DONE]`, or the per-request timeout. Failures never abort the run.
//
// Timing: start = just before connecting/writing; a chunk's time = when its bytes were read. When
// the server reports usage, its token counts replace the client's (chunk count, client prompt
// count). A chat stream's first role-only delta carries no text and is not counted as a token
// (vLLM counts it for TTFT; we don't, to time real tokens).
#pragma once

#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "bench/sse_parser.hpp"
#include "bench/stats.hpp"
#include "bench/workload.hpp"
#include "troupe/result.hpp"

namespace troupe::bench {

struct server_target {
  std::string host;
  std::string port;
  std::string path_prefix;  // e.g. "" or "/proxy"
};

// "http://host[:port][/prefix]" (no https). Errors name the URL.
result<server_target> parse_base_url(std::string_view url);

struct load_options {
  server_target server;
  std::string endpoint = "/v1/completions";  // appended to path_prefix
  api_kind kind = api_kind::completions;
  std::string model;
  size_t max_concurrency = 1;        // 0 = unbounded
  std::vector<double> arrivals_s;    // one offset per request (arrival_times)
  double request_timeout_s = 600;
  bool ignore_eos = true;
  // Called on the io thread about 5 times a second and once at the end: (finished, total).
  std::function<void(size_t, size_t)> on_progress;
};

struct load_result {
  std::vector<request_record> records;  // in request order
  double duration_s = 0;                // first start -> last finish
  size_t connections_opened = 0;
};

// The JSON body sent for one request (exposed for tests).
std::string request_body(const load_options& o, const bench_request& r);

// Runs every request to completion (or failure) and returns. REQUIRES: arrivals_s.size() ==
// requests.size(). Name resolution failure fails every request with that message.
load_result run_load(const load_options& o, const std::vector<bench_request>& requests);

}  // namespace troupe::bench
