// Fuzz target: bytes on a connection -> Beast's parser -> our session's checks (limits, timeouts,
// Expect, keep-alive, pipelining) -> the OpenAI router (routing, body parsing) -> the answer.
//
// The real http_server listens on a loopback port with the real router in front of a backend
// that answers at once (a stream for "stream": true). Each input is sent on a fresh connection, which is then half-closed; the
// server must answer every request it read with a well-formed HTTP/1.1 response of a status we
// mean to send (a 500 is a bug of ours) and then close, never hang.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <boost/asio/buffer.hpp>
#include <boost/beast/http.hpp>
#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <string>
#include <string_view>
#include <thread>

#include "fuzz/fuzz_check.hpp"
#include "net/http_server.hpp"
#include "frontend/openai_router.hpp"

namespace {

using namespace troupe::net;
using namespace troupe::frontend;
namespace http = boost::beast::http;

// Answers every call at once, so each exchange ends within the input's connection.
class instant_backend final : public serving_backend {
 public:
  bool is_ready() const override { return true; }
  model_card model() const override {
    model_card card;
    card.id = "fuzz-model";
    card.max_model_len = 2048;
    return card;
  }
  void generate(generation_request req, std::shared_ptr<http_exchange> ex) override {
    if (!req.stream) return ex->respond_json(200, R"({"object":"text_completion"})");
    // The streaming path: chunked encoding, which check_responses then has to parse.
    ex->start_stream(200, "text/event-stream");
    ex->send_chunk("data: {\"choices\":[]}\n\n");
    ex->send_chunk("data: [DONE]\n\n");
    ex->end_stream();
  }
  void tokenize(tokenize_request, std::shared_ptr<http_exchange> ex) override {
    ex->respond_json(200, R"({"tokens":[]})");
  }
  void detokenize(detokenize_request, std::shared_ptr<http_exchange> ex) override {
    ex->respond_json(200, R"({"prompt":""})");
  }
  void metrics(std::shared_ptr<http_exchange> ex) override { ex->respond(200, "text/plain", ""); }
};

std::unique_ptr<http_server> g_server;

bool expected_status(unsigned s) {
  switch (s) {
    case 100: case 200: case 400: case 404: case 405: case 408: case 411: case 413: case 414:
    case 415: case 429: case 431: case 501: case 503:
      return true;
    default:
      return false;
  }
}

int connect_to_server() {
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(g_server->port());
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  for (int attempt = 0;; ++attempt) {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    FUZZ_CHECK(fd >= 0);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0) return fd;
    ::close(fd);
    // Out of ephemeral ports or a full backlog: the machine's state, not a finding.
    FUZZ_CHECK(attempt < 200);
    std::this_thread::sleep_for(std::chrono::milliseconds(50));
  }
}

// Every byte the server sends until it closes. The server must close within this deadline: the
// client has half-closed, so nothing more can arrive that it might be waiting for.
struct answer {
  std::string bytes;
  bool reset = false;  // the server reset the connection (closed with our bytes unread)
};
answer exchange(int fd, std::string_view request) {
  timeval tv{20, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  std::size_t sent = 0;
  while (sent < request.size()) {
    auto n = ::send(fd, request.data() + sent, request.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) break;  // the server closed early (e.g. after a 400): read what it said
    sent += static_cast<std::size_t>(n);
  }
  ::shutdown(fd, SHUT_WR);
  answer got;
  char buf[16384];
  for (;;) {
    auto n = ::recv(fd, buf, sizeof buf, 0);
    if (n > 0) {
      got.bytes.append(buf, static_cast<std::size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && errno == ECONNRESET) {  // closed with our unread bytes pending
      got.reset = true;
      break;
    }
    if (n < 0) {
      std::fprintf(stderr, "fuzz_http_request: no close within 20 s (errno %d)\n", errno);
      FUZZ_CHECK(false && "server neither answered nor closed a half-closed connection");
    }
    break;  // EOF
  }
  // Reset rather than TIME_WAIT, so a long run does not run out of ports.
  linger lg{1, 0};
  ::setsockopt(fd, SOL_SOCKET, SO_LINGER, &lg, sizeof lg);
  ::close(fd);
  return got;
}

// The answers must be a sequence of complete HTTP/1.1 responses with statuses we mean to send.
// Two things may cut the last one short: a reset (the kernel drops what it had not delivered),
// and, for a stream, our half-close itself -- the session reads EOF as the client going away
// and cuts its stream on purpose (http_server.hpp: a disconnect is noticed at once, so the
// request is cancelled); a chunked body cut that way is visibly incomplete to a client.
void check_responses(const answer& a) {
  std::string_view got = a.bytes;
  while (!got.empty()) {
    http::response_parser<http::string_body> parser;
    parser.eager(true);
    parser.body_limit(1u << 20);
    boost::beast::error_code ec;
    std::size_t used = 0;
    while (!parser.is_done()) {
      auto n = parser.put(boost::asio::buffer(got.data() + used, got.size() - used), ec);
      used += n;
      if (ec == http::error::need_more && used == got.size()) {
        if (a.reset || (parser.is_header_done() && parser.chunked())) return;
        std::fprintf(stderr, "fuzz_http_request: truncated response: %.*s\n",
                     static_cast<int>(got.size()), got.data());
        FUZZ_CHECK(false && "truncated response");
      }
      if (ec == http::error::need_more) {
        ec = {};
        continue;
      }
      if (ec) {
        std::fprintf(stderr, "fuzz_http_request: malformed response (%s): %.*s\n",
                     ec.message().c_str(), static_cast<int>(got.size()), got.data());
        FUZZ_CHECK(false && "malformed response");
      }
    }
    const unsigned status = parser.get().result_int();
    if (!expected_status(status))
      std::fprintf(stderr, "fuzz_http_request: unexpected status %u: %.*s\n", status,
                   static_cast<int>(got.size()), got.data());
    FUZZ_CHECK(expected_status(status));
    got.remove_prefix(used);
  }
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  http_server_config cfg;
  cfg.port = 0;
  cfg.io_threads = 1;
  cfg.max_body_bytes = 8192;  // small, so inputs reach the 413 paths
  g_server = std::make_unique<http_server>(
      cfg, make_openai_router(std::make_shared<instant_backend>()));
  if (auto st = g_server->start(); !st) {
    std::fprintf(stderr, "fuzz_http_request: %s\n", st.message().c_str());
    std::exit(2);
  }
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, std::size_t size) {
  const std::string_view request(reinterpret_cast<const char*>(data), size);
  check_responses(exchange(connect_to_server(), request));
  return 0;
}
