// http_server: HTTP/1.1 on Boost.Beast over Asio threads (never CAF threads).
//
// One acceptor; each connection is a session on its own strand. A session reads one request at
// a time, hands it to the request_handler as an http_exchange, and reads the next request once
// the exchange has been answered (keep-alive). While an exchange is open the session keeps a
// read pending on the socket, so a client that goes away is noticed at once (on_disconnect
// fires), even before the first byte is written.
//
// Limits a client cannot talk its way around (each answered by the server itself, then close):
//   body > max_body_bytes -> 413; header section > 64 KiB -> 431, of which a request line (URI)
//   > 8 KiB -> 414; HTTP/1.1 without Host -> 400; more than max_connections open -> 503.
//   A request whose header is not complete header_timeout_s after its first byte, or that
//   arrives slower than min_request_bytes_per_s (after a 2 s grace), is dropped (slowloris).
//   An answer the client stops reading is cut, and its exchange ends as a disconnect (so the
//   request is cancelled and its KV blocks freed), when no byte of it was accepted for
//   write_timeout_s, or when a stream has more than max_stream_buffer_bytes queued. 429 and 503
//   answers carry `Retry-After`.
//
// Threads: start() spawns io_threads threads that run the io_context. The handler is called on
// an io thread and must not block (post to an actor and return). http_exchange methods may be
// called from any thread (they post onto the session's strand).
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

#include "troupe/result.hpp"

namespace troupe::net {

struct http_server_config {
  std::string host = "127.0.0.1";
  std::uint16_t port = 8000;             // 0: any free port (see http_server::port())
  std::int32_t io_threads = 1;
  std::size_t max_body_bytes = 4u << 20;  // larger bodies get 413
  std::int32_t read_timeout_s = 30;       // to receive a whole request once it started
  std::int32_t keep_alive_timeout_s = 60;  // idle connection between requests
  std::int32_t header_timeout_s = 10;     // the header section, from its first byte
  std::int32_t min_request_bytes_per_s = 1024;  // mean rate of a request, after a 2 s grace
  std::int32_t max_connections = 512;     // beyond: 503 and close
  std::int32_t write_timeout_s = 10;      // an answer not read for this long is cut
  std::size_t max_stream_buffer_bytes = 256u << 10;  // a stream queued past this is cut
  // CORS: origins allowed to call from a browser ("*": any). Empty: off -- no CORS headers, and
  // OPTIONS goes to the handler like any method (the router answers 405).
  std::vector<std::string> cors_origins;
};

struct http_request {
  std::string method;  // "GET", "POST", ...
  std::string path;    // target without the query string
  std::string content_type;  // the Content-Type header, "" when absent
  std::string body;
};

// One request/response exchange. Answer exactly once: respond(), or start_stream() followed by
// send_chunk()* and end_stream(). If the last reference is dropped without an answer, the client
// gets a 500 (a bug of ours must not hang a connection). Calls after the client disconnected are
// ignored. Thread-safe. REQUIRES: released before the http_server is destroyed (the serve command
// stops the actors holding exchanges first).
// An interface: the server hands out its session-backed implementation; tests of the code that
// answers (the request actor) substitute a recording one.
class http_exchange {
 public:
  virtual ~http_exchange() = default;
  http_exchange(const http_exchange&) = delete;
  http_exchange& operator=(const http_exchange&) = delete;

  virtual void respond(int status, std::string_view content_type, std::string body) = 0;
  void respond_json(int status, std::string body) {
    respond(status, "application/json", std::move(body));
  }
  // A chunked response with this content type (e.g. text/event-stream).
  virtual void start_stream(int status, std::string_view content_type) = 0;
  virtual void send_chunk(std::string data) = 0;
  virtual void end_stream() = 0;

  // `cb` runs once, on an io thread, if the client disconnects before the exchange ended (or at
  // once if it already has). Set it before handing the exchange to another thread.
  virtual void on_disconnect(std::function<void()> cb) = 0;
  virtual bool is_disconnected() const = 0;

  // The id of this request in logs and in the answer's `x-request-id` header: the client's own
  // x-request-id when sane, else a fresh one (net/request_id.hpp). "" for exchanges that are
  // not requests (the server's own refusals, test doubles).
  const std::string& request_id() const { return request_id_; }

 protected:
  http_exchange() = default;
  explicit http_exchange(std::string request_id) : request_id_(std::move(request_id)) {}

 private:
  std::string request_id_;
};

using request_handler =
    std::function<void(http_request request, std::shared_ptr<http_exchange> exchange)>;
// Told the status of every answer (for /metrics), on whichever thread answered. Thread-safe.
using response_observer = std::function<void(int status)>;

class http_server {
 public:
  http_server(http_server_config cfg, request_handler handler, response_observer observer = {});
  ~http_server();  // stop()s
  http_server(const http_server&) = delete;
  http_server& operator=(const http_server&) = delete;

  // Binds, listens and starts the io threads. Error (naming host:port) if binding fails.
  status start();
  std::uint16_t port() const { return bound_port_; }

  // Stop accepting new connections; idle keep-alive connections are closed, open exchanges go on.
  // REQUIRES: not called on an io thread (it waits for the acceptor to close).
  void stop_accepting();
  // Graceful shutdown: new connections are still accepted (the handler answers them, e.g. 503),
  // but every answer from now on says `Connection: close` and ends its connection; an idle
  // keep-alive connection stays until its next request (answered the same way). Thread: any.
  void begin_drain();
  // Number of exchanges not yet answered in full.
  std::size_t num_open_exchanges() const;
  // Closes every connection and joins the io threads. Idempotent.
  void stop();

 private:
  struct impl;
  std::unique_ptr<impl> impl_;
  std::uint16_t bound_port_ = 0;
};

}  // namespace troupe::net
