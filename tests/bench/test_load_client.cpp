// troupe bench's HTTP/SSE client against an in-process fake OpenAI server on a loopback port.
// The fake streams `max_tokens` text events `gap_ms` apart, then a usage event and [DONE]; the
// prompt picks misbehaviours ("fail500", "nodone", "close"). Checks what a user of the numbers
// would notice: every token timed, usage honoured, keep-alive reuse, failures counted with reasons.
#include <catch2/catch.hpp>

#include <sys/resource.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <thread>

#include "bench/load_client.hpp"

using namespace troupe::bench;
namespace asio = boost::asio;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;

namespace {

int64_t int_field(const std::string& body, const std::string& key) {
  const auto at = body.find("\"" + key + "\":");
  return at == std::string::npos ? -1 : std::stoll(body.substr(at + key.size() + 3));
}

class fake_server {
 public:
  explicit fake_server(int gap_ms) : gap_ms_(gap_ms), acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    port_ = acceptor_.local_endpoint().port();
    thread_ = std::thread([this] { accept_loop(); });
  }
  ~fake_server() {
    stop_ = true;
    boost::system::error_code ec;
    tcp::socket poke(io_);
    poke.connect({asio::ip::make_address("127.0.0.1"), port_}, ec);
    thread_.join();
    for (auto& t : conns_) t.join();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::atomic<int> accepted{0};
  std::string last_body;

 private:
  void accept_loop() {
    while (!stop_) {
      tcp::socket s(io_);
      boost::system::error_code ec;
      acceptor_.accept(s, ec);
      if (ec || stop_) return;
      ++accepted;
      conns_.emplace_back([this, sock = std::move(s)]() mutable { serve(std::move(sock)); });
    }
  }
  void serve(tcp::socket s) {
    boost::beast::flat_buffer buf;
    for (;;) {
      http::request<http::string_body> req;
      boost::system::error_code ec;
      http::read(s, buf, req, ec);
      if (ec) return;
      last_body = req.body();
      const auto& body = req.body();
      const int64_t n = int_field(body, "max_tokens");
      if (body.find("fail500") != std::string::npos) {
        const std::string err = R"({"error":{"message":"engine exploded","type":"server_error"}})";
        write(s, "HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/json\r\n"
                 "Content-Length: " + std::to_string(err.size()) + "\r\n\r\n" + err);
        continue;
      }
      write(s, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n"
               "Transfer-Encoding: chunked\r\n\r\n");
      for (int64_t i = 0; i < n; ++i) {
        if (gap_ms_) std::this_thread::sleep_for(std::chrono::milliseconds(gap_ms_));
        chunk(s, R"(data: {"choices":[{"index":0,"text":" tok","finish_reason":null}]})" "\n\n");
      }
      if (body.find("close") != std::string::npos) return;  // dies mid-stream
      chunk(s, "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":7,\"completion_tokens\":" +
                   std::to_string(n) + "}}\n\n");
      if (body.find("nodone") == std::string::npos) chunk(s, "data: [DONE]\n\n");
      write(s, "0\r\n\r\n");
    }
  }
  static void write(tcp::socket& s, const std::string& bytes) {
    boost::system::error_code ec;
    asio::write(s, asio::buffer(bytes), ec);
  }
  static void chunk(tcp::socket& s, const std::string& payload) {
    char head[32];
    std::snprintf(head, sizeof head, "%zx\r\n", payload.size());
    write(s, head + payload + "\r\n");
  }
  int gap_ms_;
  asio::io_context io_;
  tcp::acceptor acceptor_;
  unsigned short port_ = 0;
  std::thread thread_;
  std::vector<std::thread> conns_;
  std::atomic<bool> stop_{false};
};

load_options options_for(const fake_server& s, size_t concurrency, size_t n) {
  load_options o;
  o.server = parse_base_url(s.url()).value();
  o.model = "fake";
  o.max_concurrency = concurrency;
  o.arrivals_s.assign(n, 0.0);
  return o;
}

std::vector<bench_request> requests(size_t n, int64_t max_tokens, const std::string& prompt = "hi") {
  bench_request r;
  r.prompt = prompt;
  r.prompt_tokens = 1;
  r.max_tokens = max_tokens;
  return std::vector<bench_request>(n, r);
}

}  // namespace

TEST_CASE("base URLs", "[bench][client]") {
  auto t = parse_base_url("http://localhost:8000/").value();
  CHECK(t.host == "localhost");
  CHECK(t.port == "8000");
  CHECK(t.path_prefix.empty());
  t = parse_base_url("http://10.0.0.1/proxy/").value();
  CHECK(t.port == "80");
  CHECK(t.path_prefix == "/proxy");
  CHECK_FALSE(parse_base_url("https://x:1").ok());
  CHECK_FALSE(parse_base_url("http://x:port").ok());
}

TEST_CASE("the request asks for a streamed, length-controlled, greedy completion", "[bench][client]") {
  load_options o;
  o.model = "m";
  bench_request r;
  r.prompt = "say \"hi\"";
  r.max_tokens = 9;
  const auto body = request_body(o, r);
  CHECK(body.find(R"("prompt":"say \"hi\"")") != std::string::npos);
  CHECK(body.find(R"("max_tokens":9)") != std::string::npos);
  CHECK(body.find(R"("stream":true)") != std::string::npos);
  CHECK(body.find(R"("include_usage":true)") != std::string::npos);
  CHECK(body.find(R"("ignore_eos":true)") != std::string::npos);
  CHECK(body.find(R"("temperature":0)") != std::string::npos);
  o.kind = api_kind::chat;
  CHECK(request_body(o, r).find(R"("messages":[{"role":"user","content":"say \"hi\""}])") !=
        std::string::npos);
}

TEST_CASE("closed loop: every token timed, usage honoured, connections kept alive",
          "[bench][client]") {
  fake_server server(5);
  auto o = options_for(server, 2, 6);
  const auto res = run_load(o, requests(6, 8));
  REQUIRE(res.records.size() == 6);
  for (const auto& r : res.records) {
    INFO(r.error);
    REQUIRE(r.success);
    CHECK(r.output_tokens == 8);      // from the usage event
    CHECK(r.prompt_tokens == 7);      // the server's count wins over the client's 1
    CHECK(r.itl_s.size() == 7);       // 8 text chunks -> 7 gaps
    // Hard bounds whatever the machine's load: the fake sleeps 5 ms before each token, so the
    // first cannot come before 5 ms nor the last before 40 ms; TTFT plus the gaps is E2E.
    CHECK(r.ttft_s >= 0.005);
    CHECK(r.latency_s >= 0.040);
    double sum = r.ttft_s;
    for (double g : r.itl_s) sum += g;
    CHECK(sum == Approx(r.latency_s).epsilon(1e-9));
  }
  CHECK(res.connections_opened == 2);  // 6 requests over 2 keep-alive connections
  CHECK(server.accepted == 2 + 0);
  // 3 rounds of 2 requests, each ~40 ms: the run cannot take less than ~120 ms.
  CHECK(res.duration_s >= 0.11);
}

TEST_CASE("open loop: requests start at their arrival times", "[bench][client]") {
  fake_server server(0);
  auto o = options_for(server, 0, 3);
  o.arrivals_s = {0.0, 0.05, 0.10};
  const auto res = run_load(o, requests(3, 2));
  for (size_t i = 0; i < 3; ++i) {
    REQUIRE(res.records[i].success);
    CHECK(res.records[i].start_s >= o.arrivals_s[i] - 0.001);  // never early
    CHECK(res.records[i].start_s < o.arrivals_s[i] + 0.25);    // and not held back (loose: loaded CI)
  }
}

TEST_CASE("failures are counted with their reason and never stop the run", "[bench][client]") {
  fake_server server(0);
  auto o = options_for(server, 1, 4);
  std::vector<bench_request> rs = requests(1, 3, "fail500");
  for (auto p : {"nodone", "ok", "close"}) rs.push_back(requests(1, 3, p)[0]);
  const auto res = run_load(o, rs);
  CHECK_FALSE(res.records[0].success);
  CHECK(res.records[0].error.find("HTTP 500") != std::string::npos);
  CHECK(res.records[0].error.find("engine exploded") != std::string::npos);
  CHECK_FALSE(res.records[1].success);
  CHECK(res.records[1].error.find("[DONE]") != std::string::npos);
  CHECK(res.records[2].success);
  CHECK_FALSE(res.records[3].success);  // connection died mid-stream
  CHECK(res.records[3].itl_s.empty());
}

TEST_CASE("an unreachable server fails every request", "[bench][client]") {
  tcp::endpoint free_ep;
  {
    asio::io_context io;
    tcp::acceptor a(io, {asio::ip::make_address("127.0.0.1"), 0});
    free_ep = a.local_endpoint();
  }  // closed again: nothing listens there now
  load_options o;
  o.server = parse_base_url("http://127.0.0.1:" + std::to_string(free_ep.port())).value();
  o.arrivals_s.assign(3, 0.0);
  o.max_concurrency = 2;
  const auto res = run_load(o, requests(3, 2));
  for (const auto& r : res.records) {
    CHECK_FALSE(r.success);
    CHECK(r.error.find("connect") != std::string::npos);
  }
}

// The client's own cost: CPU time of the calling (io) thread per streamed chunk, against a fake
// server that streams (a) without pauses, so many events share one read, and (b) 1 ms apart, so
// every event is its own read and wake-up as with a real server.
// Run: test_bench "[.overhead]" (numbers in BENCHMARKS.md).
TEST_CASE("client overhead per streamed chunk", "[.overhead]") {
  auto cpu_now = [] {
    rusage u{};
    getrusage(RUSAGE_THREAD, &u);
    return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
           static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
  };
  for (int gap_ms : {0, 1}) {
    fake_server server(gap_ms);
    const size_t n = gap_ms ? 32 : 64;
    const int64_t tokens = gap_ms ? 100 : 512;
    auto o = options_for(server, 16, n);
    const double before = cpu_now();
    const auto res = run_load(o, requests(n, tokens));
    const double cpu = cpu_now() - before;
    size_t ok = 0;
    for (const auto& r : res.records) ok += r.success;
    REQUIRE(ok == n);
    const double chunks = static_cast<double>(n * static_cast<size_t>(tokens));
    std::printf("client, server gap %d ms: %zu requests x %lld chunks at concurrency 16 in %.3f s "
                "wall; client CPU %.3f s = %.2f us per chunk\n",
                gap_ms, n, static_cast<long long>(tokens), res.duration_s, cpu, cpu / chunks * 1e6);
  }
}
