#include "net/http_server.hpp"

#include <fmt/format.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <array>
#include <condition_variable>
#include <cstdio>
#include <limits>
#include <deque>
#include <future>
#include <mutex>
#include <optional>

#include "logging/log.hpp"
#include "net/openai_error.hpp"
#include "net/request_id.hpp"

namespace troupe::net {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

namespace {

constexpr std::size_t header_limit_bytes = 64 * 1024;  // the whole header section -> 431
constexpr std::size_t target_limit_bytes = 8 * 1024;   // the request target (URI) -> 414
// A request may start slowly (TCP slow start, a client building its body); the minimum rate is
// enforced only after this, and only when two checks in a row (1 s apart) find it too slow, so
// a moment in which our own io thread was busy cannot cut a client.
constexpr auto min_rate_grace = std::chrono::seconds(2);
constexpr auto watchdog_period = std::chrono::seconds(1);
// Unsent bytes the kernel may hold for one socket. Without this the send buffer autotunes to
// megabytes on loopback and a client that stopped reading would absorb minutes of tokens
// before any write stalls; with it a stall shows within a frame or two of the client's window.
constexpr int notsent_lowat_bytes = 16 * 1024;
// Seconds a client should wait before retrying a 429 or 503.
constexpr int retry_after_s = 1;

using clock = std::chrono::steady_clock;

std::string status_line(int status) {
  auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  return fmt::format("HTTP/1.1 {} {}\r\n", status, std::string_view{reason.data(), reason.size()});
}

}  // namespace

// A Beast rate policy that limits nothing and counts the bytes read, so that the session can
// tell a slow request (slowloris) from a fast one.
class counting_rate_policy {
 public:
  std::uint64_t num_read_bytes() const { return num_read_bytes_; }

 private:
  friend class boost::beast::rate_policy_access;
  static constexpr std::size_t all = std::numeric_limits<std::size_t>::max();
  std::size_t available_read_bytes() const noexcept { return all; }
  std::size_t available_write_bytes() const noexcept { return all; }
  void transfer_read_bytes(std::size_t n) noexcept { num_read_bytes_ += n; }
  void transfer_write_bytes(std::size_t) noexcept {}
  void on_timer() noexcept {}
  std::uint64_t num_read_bytes_ = 0;
};
using counted_stream = beast::basic_stream<tcp, asio::any_io_executor, counting_rate_policy>;

class session;
// The exchange a session hands to the request handler (defined after session).
std::shared_ptr<http_exchange> make_session_exchange(std::shared_ptr<session> s,
                                                     std::string request_id,
                                                     std::string extra_headers);

// CORS (http_server_config::cors_origins): the Access-Control-Allow-Origin value for a request
// from `origin`, or "" when CORS is off, the request has no Origin, or the origin is not listed.
std::string allowed_cors_origin(const std::vector<std::string>& allowed, std::string_view origin) {
  if (allowed.empty() || origin.empty()) return {};
  for (const auto& a : allowed)
    if (a == "*" || a == origin) return a == "*" ? std::string{"*"} : std::string{origin};
  return {};
}

// What every session shares with the server (not the io_context: a handler owning the last
// reference to its own io_context would destroy it from inside its destructor).
struct server_shared {
  server_shared(http_server_config c, request_handler h, response_observer o)
      : cfg(std::move(c)), handler(std::move(h)), observer(std::move(o)) {}
  http_server_config cfg;
  request_handler handler;
  response_observer observer;
  std::atomic<std::size_t> num_open_exchanges{0};
  std::atomic<std::int64_t> num_connections{0};  // sessions admitted under max_connections
  std::atomic<bool> accepting{true};
  std::atomic<bool> draining{false};
  std::mutex sessions_mu;
  std::vector<std::weak_ptr<session>> sessions;
};

// One connection. Every member is touched only on the strand (the socket's executor), except
// on_disconnect_ (guarded by cb_mu_).
class session : public std::enable_shared_from_this<session> {
 public:
  session(tcp::socket&& socket, std::shared_ptr<server_shared> shared, bool counted)
      : shared_(std::move(shared)),
        stream_(std::move(socket)),
        watchdog_(stream_.get_executor()),
        counted_(counted) {
    const int fd = stream_.socket().native_handle();
    int lowat = notsent_lowat_bytes;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NOTSENT_LOWAT, &lowat,
                 sizeof lowat);  // best effort: without it only the bound on out_ holds
    // Every write is a whole answer or a whole SSE frame, sent the moment its token exists.
    // Nagle's algorithm would hold a frame behind an unacknowledged one for up to a round trip
    // (plus the client's delayed ACK), so a remote stream would arrive in bursts; loopback hides
    // it (its ACKs are instant).
    int nodelay = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &nodelay, sizeof nodelay);
  }
  ~session() {
    if (counted_) shared_->num_connections.fetch_sub(1);
  }

  void start() {
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->tick();
      self->do_read();
    });
  }
  // Over max_connections: answer 503 without reading the request, then close.
  void start_refusing() {
    logging::warn("connection.shed", {{"reason", "max_connections"},
                                      {"max_connections", shared_->cfg.max_connections}});
    asio::dispatch(stream_.get_executor(), [self = shared_from_this()] {
      self->tick();
      self->refuse(too_many_connections());
    });
  }

  // Queues bytes for the current exchange; `last` ends it. `bounded`: stream bytes, which count
  // against max_stream_buffer_bytes. Any thread.
  void enqueue(std::string bytes, bool last, bool bounded = false) {
    asio::post(stream_.get_executor(),
               [self = shared_from_this(), bytes = std::move(bytes), last, bounded]() mutable {
                 self->on_enqueue(std::move(bytes), last, bounded);
               });
  }

  // Whether the answer being written may leave the connection open (the client asked for
  // keep-alive and the server is not shutting down).
  bool keep_alive() const {
    return keep_alive_.load() && shared_->accepting.load() && !shared_->draining.load();
  }
  void observe(int status) const {
    if (shared_->observer) shared_->observer(status);
  }

  void set_on_disconnect(std::function<void()> cb) {
    std::unique_lock lock(cb_mu_);
    if (disconnected_) {
      lock.unlock();
      // Already gone: run it on the strand, like a normal notification.
      asio::post(stream_.get_executor(), std::move(cb));
      return;
    }
    on_disconnect_ = std::move(cb);
  }

  bool is_disconnected() const {
    std::lock_guard lock(cb_mu_);
    return disconnected_;
  }

  // Closes the connection if no exchange is open (shutdown of idle keep-alive connections).
  void close_if_idle() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] {
      if (!self->exchange_open_) self->close();
    });
  }
  void close_now() {
    asio::post(stream_.get_executor(), [self = shared_from_this()] { self->client_gone(); });
  }

 private:
  // Between requests the keep-alive timeout applies; from the first byte of a request on, the
  // header timeout (so that a trickled header cannot hold the connection for a keep-alive
  // period) and the minimum rate.
  void do_read() {
    if (closed_) return;
    parser_.emplace();
    parser_->body_limit(shared_->cfg.max_body_bytes);
    parser_->header_limit(header_limit_bytes);
    if (buffer_.size() > 0) return read_header();  // pipelined bytes already here
    stream_.expires_after(std::chrono::seconds(shared_->cfg.keep_alive_timeout_s));
    stream_.async_read_some(buffer_.prepare(4096), [self = shared_from_this()](
                                                       beast::error_code ec, std::size_t n) {
      if (ec) return self->on_read_error(ec);
      self->buffer_.commit(n);
      self->read_header();
    });
  }

  void read_header() {
    reading_request_ = true;
    num_slow_checks_ = 0;
    request_start_ = clock::now();
    request_base_bytes_ = stream_.rate_policy().num_read_bytes() - buffer_.size();
    stream_.expires_after(std::chrono::seconds(shared_->cfg.header_timeout_s));
    http::async_read_header(stream_, buffer_, *parser_,
                            [self = shared_from_this()](beast::error_code ec, std::size_t) {
                              self->on_header(ec);
                            });
  }

  void on_header(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    stream_.expires_after(std::chrono::seconds(shared_->cfg.read_timeout_s));
    auto& req = parser_->get();
    if (req.target().size() > target_limit_bytes) return refuse(uri_too_long(target_limit_bytes));
    // RFC 9112 3.2: a server MUST answer 400 to an HTTP/1.1 request without Host.
    if (req.version() >= 11 && req.find(http::field::host) == req.end())
      return refuse(missing_host());
    // curl sends `Expect: 100-continue` for larger bodies and waits for our go-ahead; refuse
    // an oversized body right here instead of reading it.
    if (auto it = req.find(http::field::expect);
        it != req.end() && beast::iequals(it->value(), "100-continue")) {
      auto len = parser_->content_length();
      if (len && *len > shared_->cfg.max_body_bytes) return on_read_error(http::error::body_limit);
      auto cont = std::make_shared<std::string>("HTTP/1.1 100 Continue\r\n\r\n");
      asio::async_write(stream_, asio::buffer(*cont),
                        [self = shared_from_this(), cont](beast::error_code wec, std::size_t) {
                          if (wec) return self->client_gone();
                          self->read_body();
                        });
      return;
    }
    read_body();
  }

  void read_body() {
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

  // Answers e and closes, discarding what the client still sends (the rest of its request).
  void refuse(const api_error& e) {
    reading_request_ = false;
    keep_alive_ = false;
    unread_body_ = true;
    answer_directly(e);
  }

  void on_read_error(beast::error_code ec) {
    reading_request_ = false;
    if (ec == http::error::body_limit) return refuse(body_too_large(shared_->cfg.max_body_bytes));
    if (ec == http::error::header_limit) {
      // Too long a request line is a URI that is too long (414); else too many headers (431).
      auto data = buffer_.cdata();
      std::string_view head{static_cast<const char*>(data.data()), data.size()};
      auto eol = head.find("\r\n");
      if (eol == std::string_view::npos || eol > target_limit_bytes)
        return refuse(uri_too_long(target_limit_bytes));
      return refuse(headers_too_large(header_limit_bytes));
    }
    if (ec == http::error::end_of_stream || ec == beast::error::timeout ||
        ec == asio::error::operation_aborted || ec == asio::error::connection_reset ||
        ec == asio::error::eof) {
      return close();
    }
    // Malformed HTTP: say so and close (we cannot find the next request boundary).
    keep_alive_ = false;
    answer_directly(api_error{400, "malformed HTTP request: " + ec.message(),
                              "invalid_request_error", "", "bad_http"});
  }

  // The server's own answers carry a fresh x-request-id too: a client reporting a 413 can
  // quote it.
  void answer_directly(const api_error& e) {
    auto ex = open_exchange(make_request_id());
    ex->respond_json(e.http_status, e.to_json());
  }

  std::shared_ptr<http_exchange> open_exchange(std::string request_id = {},
                                               std::string extra_headers = {}) {
    exchange_open_ = true;
    exchange_request_id_ = request_id;
    shared_->num_open_exchanges.fetch_add(1);
    stream_.expires_never();
    return make_session_exchange(shared_from_this(), std::move(request_id),
                                 std::move(extra_headers));
  }

  void on_read(beast::error_code ec) {
    if (ec) return on_read_error(ec);
    reading_request_ = false;
    auto msg = parser_->release();
    keep_alive_ = msg.keep_alive();
    http_request req;
    req.method = std::string(msg.method_string());
    std::string_view target{msg.target().data(), msg.target().size()};
    req.path = std::string(target.substr(0, target.find('?')));
    if (auto it = msg.find(http::field::content_type); it != msg.end())
      req.content_type = std::string(it->value());
    req.body = std::move(msg.body());
    std::string_view sent_id;
    if (auto it = msg.find("x-request-id"); it != msg.end()) sent_id = it->value();
    // CORS: an allowed origin gets its Allow-Origin on every answer, and a preflight is
    // answered here (it carries no body and needs no route).
    std::string cors_headers;
    std::string_view origin;
    if (auto it = msg.find(http::field::origin); it != msg.end()) origin = it->value();
    if (auto allow = allowed_cors_origin(shared_->cfg.cors_origins, origin); !allow.empty()) {
      cors_headers = fmt::format(
          "Access-Control-Allow-Origin: {}\r\nVary: Origin\r\n"
          "Access-Control-Expose-Headers: x-request-id\r\n",
          allow);
      if (msg.method() == http::verb::options &&
          msg.find(http::field::access_control_request_method) != msg.end()) {
        std::string_view asked = "Authorization, Content-Type, X-Request-Id";
        if (auto h = msg.find(http::field::access_control_request_headers); h != msg.end())
          asked = h->value();
        // Echoing the asked headers is safe: they are only names, in one header line (Beast
        // refuses CR/LF inside a field value).
        cors_headers += fmt::format(
            "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
            "Access-Control-Allow-Headers: {}\r\nAccess-Control-Max-Age: 600\r\n",
            asked);
        auto ex = open_exchange(accept_or_make_request_id(sent_id), std::move(cors_headers));
        watch_for_disconnect();
        return ex->respond(204, "text/plain", "");
      }
    }
    auto ex = open_exchange(accept_or_make_request_id(sent_id), std::move(cors_headers));
    watch_for_disconnect();
    try {
      shared_->handler(std::move(req), std::move(ex));
    } catch (const std::exception& e) {
      // The exchange's destructor answers 500 if the handler threw before answering.
      std::fprintf(stderr, "troupe serve: request handler threw: %s\n", e.what());
    }
  }

  // While an exchange is open nothing else is read, so a pending read only completes when the
  // client closes (EOF/reset) or sends the next request early (pipelining: keep those bytes).
  void watch_for_disconnect() {
    watching_ = true;
    stream_.socket().async_read_some(
        buffer_.prepare(4096), [self = shared_from_this()](beast::error_code ec, std::size_t n) {
          self->watching_ = false;
          if (!ec) {
            self->buffer_.commit(n);
            if (self->read_after_watch_) {
              self->read_after_watch_ = false;
              self->do_read();
            }
            return;
          }
          if (ec == asio::error::operation_aborted && self->read_after_watch_) {
            self->read_after_watch_ = false;
            self->do_read();
            return;
          }
          if (ec != asio::error::operation_aborted) self->client_gone();
        });
  }

  void on_enqueue(std::string bytes, bool last, bool bounded) {
    if (closed_ || !exchange_open_) return;
    if (bounded && num_queued_bytes_ + bytes.size() > shared_->cfg.max_stream_buffer_bytes) {
      return cut_slow_reader(fmt::format("more than {} bytes of its stream are waiting",
                                         shared_->cfg.max_stream_buffer_bytes));
    }
    num_queued_bytes_ += bytes.size();
    out_.push_back(std::move(bytes));
    if (last) exchange_ending_ = true;
    if (!writing_) {
      last_write_progress_ = clock::now();
      write_next();
    }
  }

  // One write_some at a time (not async_write of a whole buffer), so that every byte the
  // client accepts counts as progress for the write-stall timeout.
  void write_next() {
    writing_ = true;
    stream_.socket().async_write_some(
        asio::buffer(out_.front()) + front_offset_,
        [self = shared_from_this()](beast::error_code ec, std::size_t n) { self->on_write(ec, n); });
  }

  void on_write(beast::error_code ec, std::size_t n) {
    writing_ = false;
    // close() may have run between the write's completion and this handler (it empties out_).
    if (closed_) return;
    if (ec) return client_gone();
    last_write_progress_ = clock::now();
    num_queued_bytes_ -= n;
    front_offset_ += n;
    if (front_offset_ == out_.front().size()) {
      out_.pop_front();
      front_offset_ = 0;
    }
    if (!out_.empty()) return write_next();
    if (exchange_ending_) finish_exchange();
  }

  // The client stopped reading its answer: end the exchange as if it had left, so that the
  // request is cancelled and its KV blocks go back to the pool.
  void cut_slow_reader(const std::string& why) {
    logging::warn("connection.cut", {{"reason", "client_stopped_reading"}, {"detail", why},
                                     {"request_id", exchange_request_id_}});
    client_gone();
  }

  // Runs every watchdog_period while the connection is open: the minimum request rate and the
  // write-stall timeout.
  void tick() {
    if (closed_) return;
    watchdog_.expires_after(watchdog_period);
    watchdog_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec || self->closed_) return;
      self->check_progress();
      self->tick();
    });
  }

  void check_progress() {
    const auto now = clock::now();
    if (writing_ && now - last_write_progress_ >=
                        std::chrono::seconds(shared_->cfg.write_timeout_s)) {
      return cut_slow_reader(fmt::format("no byte written for {} s",
                                         shared_->cfg.write_timeout_s));
    }
    if (!reading_request_) return;
    const auto elapsed = now - request_start_;
    if (elapsed < min_rate_grace) return;
    const double seconds = std::chrono::duration<double>(elapsed).count();
    const auto received = stream_.rate_policy().num_read_bytes() - request_base_bytes_;
    const bool slow =
        static_cast<double>(received) < shared_->cfg.min_request_bytes_per_s * seconds;
    num_slow_checks_ = slow ? num_slow_checks_ + 1 : 0;
    if (num_slow_checks_ >= 2) {  // slowloris: not worth an answer
      logging::info("connection.dropped",
                    {{"reason", "request_too_slow"},
                     {"min_request_bytes_per_s", shared_->cfg.min_request_bytes_per_s}});
      close();
    }
  }

  void finish_exchange() {
    exchange_open_ = false;
    exchange_ending_ = false;
    shared_->num_open_exchanges.fetch_sub(1);
    if (unread_body_) return linger_close();
    if (!keep_alive()) return close();
    if (watching_) {
      // The disconnect watch owns the read side; stop it, then read the next request.
      read_after_watch_ = true;
      beast::error_code ignored;
      stream_.socket().cancel(ignored);
      return;
    }
    do_read();
  }

  // After refusing a body we did not read, closing at once would make the kernel reset the
  // connection (unread data) and the client might lose our 413. Half-close, then discard what
  // the client still sends for a moment before closing.
  void linger_close() {
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ignored);
    stream_.expires_after(std::chrono::seconds(2));
    discard();
  }
  void discard() {
    auto sink = std::make_shared<std::array<char, 16384>>();
    stream_.async_read_some(asio::buffer(*sink),
                            [self = shared_from_this(), sink](beast::error_code ec, std::size_t) {
                              if (ec || self->closed_) return self->close();
                              self->discard();
                            });
  }

  // The client went away (or the server is shutting down): end the open exchange, if any.
  void client_gone() {
    if (exchange_open_) {
      exchange_open_ = false;
      shared_->num_open_exchanges.fetch_sub(1);
    }
    std::function<void()> cb;
    {
      std::lock_guard lock(cb_mu_);
      disconnected_ = true;
      cb = std::move(on_disconnect_);
      on_disconnect_ = nullptr;
    }
    close();
    if (cb) cb();
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    {
      std::lock_guard lock(cb_mu_);
      disconnected_ = true;
      on_disconnect_ = nullptr;
    }
    beast::error_code ignored;
    stream_.socket().shutdown(tcp::socket::shutdown_both, ignored);
    stream_.close();  // closes the socket and cancels the timer: no work left behind
    watchdog_.cancel();
    out_.clear();
    num_queued_bytes_ = 0;
    front_offset_ = 0;
  }

  std::shared_ptr<server_shared> shared_;
  counted_stream stream_;
  asio::steady_timer watchdog_;
  const bool counted_;  // holds one of max_connections
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> out_;
  std::size_t front_offset_ = 0;      // bytes of out_.front() already written
  std::size_t num_queued_bytes_ = 0;  // bytes in out_ not yet written
  clock::time_point last_write_progress_{};
  bool reading_request_ = false;      // from a request's first byte until it is read in full
  clock::time_point request_start_{};
  std::uint64_t request_base_bytes_ = 0;  // the read counter when the request started
  int num_slow_checks_ = 0;           // consecutive checks that found the request too slow
  bool writing_ = false;
  bool exchange_open_ = false;    // handed to the handler, not yet answered in full
  std::string exchange_request_id_;  // the latest exchange's x-request-id, for log lines
  bool exchange_ending_ = false;  // the last bytes of the answer are queued
  bool watching_ = false;
  bool read_after_watch_ = false;
  bool closed_ = false;
  bool unread_body_ = false;      // a refused body is still arriving: linger before closing
  std::atomic<bool> keep_alive_{true};
  mutable std::mutex cb_mu_;
  bool disconnected_ = false;
  std::function<void()> on_disconnect_;
};

// ---- session_exchange: http_exchange over a session ----

namespace {

class session_exchange final : public http_exchange {
 public:
  session_exchange(std::shared_ptr<session> s, std::string request_id, std::string extra_headers)
      : http_exchange(std::move(request_id)),
        session_(std::move(s)),
        extra_headers_(std::move(extra_headers)) {}
  ~session_exchange() override;
  void respond(int status, std::string_view content_type, std::string body) override;
  void start_stream(int status, std::string_view content_type) override;
  void send_chunk(std::string data) override;
  void end_stream() override;
  void on_disconnect(std::function<void()> cb) override;
  bool is_disconnected() const override;

 private:
  std::shared_ptr<session> session_;
  std::string extra_headers_;  // whole "Name: value\r\n" lines (CORS), on every answer
  std::atomic<bool> answered_{false};
};

session_exchange::~session_exchange() {
  if (!answered_.exchange(true) && !session_->is_disconnected()) {
    auto e = internal_error("the server dropped this request without an answer");
    session_->enqueue(status_line(500) +
                          fmt::format("Content-Type: application/json\r\nContent-Length: {}\r\n"
                                      "x-request-id: {}\r\n{}Connection: close\r\n\r\n",
                                      e.to_json().size(),
                                      request_id().empty() ? make_request_id() : request_id(),
                                      extra_headers_) +
                          e.to_json(),
                      true);
  }
}

void session_exchange::respond(int status, std::string_view content_type, std::string body) {
  if (answered_.exchange(true)) return;
  session_->observe(status);
  std::string head = status_line(status);
  head += fmt::format("Content-Type: {}\r\nContent-Length: {}\r\n", content_type, body.size());
  if (!request_id().empty()) head += fmt::format("x-request-id: {}\r\n", request_id());
  head += extra_headers_;
  if (status == 429 || status == 503) head += fmt::format("Retry-After: {}\r\n", retry_after_s);
  if (!session_->keep_alive()) head += "Connection: close\r\n";
  head += "\r\n";
  head += body;
  session_->enqueue(std::move(head), true);
}

void session_exchange::start_stream(int status, std::string_view content_type) {
  if (answered_.exchange(true)) return;
  session_->observe(status);
  std::string head = status_line(status);
  head += fmt::format(
      "Content-Type: {}\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n",
      content_type);
  if (!request_id().empty()) head += fmt::format("x-request-id: {}\r\n", request_id());
  head += extra_headers_;
  if (!session_->keep_alive()) head += "Connection: close\r\n";
  head += "\r\n";
  session_->enqueue(std::move(head), false);
}

void session_exchange::send_chunk(std::string data) {
  if (data.empty()) return;  // an empty chunk would end the stream
  std::string framed = fmt::format("{:x}\r\n", data.size());
  framed += data;
  framed += "\r\n";
  session_->enqueue(std::move(framed), false, /*bounded=*/true);
}

void session_exchange::end_stream() { session_->enqueue("0\r\n\r\n", true); }

void session_exchange::on_disconnect(std::function<void()> cb) {
  session_->set_on_disconnect(std::move(cb));
}

bool session_exchange::is_disconnected() const { return session_->is_disconnected(); }

}  // namespace

std::shared_ptr<http_exchange> make_session_exchange(std::shared_ptr<session> s,
                                                     std::string request_id,
                                                     std::string extra_headers) {
  return std::make_shared<session_exchange>(std::move(s), std::move(request_id),
                                            std::move(extra_headers));
}

// ---- http_server ----

struct http_server::impl {
  asio::io_context ioc;                   // first: outlives the acceptor and every session
  std::shared_ptr<server_shared> shared;
  std::optional<tcp::acceptor> acceptor;
  std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  bool stopped = false;

  void accept() {
    acceptor->async_accept(asio::make_strand(ioc),
                           [this](beast::error_code ec, tcp::socket socket) {
                             if (ec) {
                               if (ec == asio::error::operation_aborted || !acceptor->is_open())
                                 return;
                               return accept();  // e.g. EMFILE: keep serving the others
                             }
                             const bool admitted = shared->num_connections.fetch_add(1) <
                                                   shared->cfg.max_connections;
                             if (!admitted) shared->num_connections.fetch_sub(1);
                             auto s = std::make_shared<session>(std::move(socket), shared,
                                                                admitted);
                             {
                               std::lock_guard lock(shared->sessions_mu);
                               std::erase_if(shared->sessions,
                                             [](auto& w) { return w.expired(); });
                               shared->sessions.push_back(s);
                             }
                             if (admitted)
                               s->start();
                             else
                               s->start_refusing();
                             accept();
                           });
  }

  template <class F>
  void for_each_session(F f) {
    std::lock_guard lock(shared->sessions_mu);
    for (auto& w : shared->sessions)
      if (auto s = w.lock()) f(*s);
  }
};

http_server::http_server(http_server_config cfg, request_handler handler,
                         response_observer observer)
    : impl_(std::make_unique<impl>()) {
  impl_->shared =
      std::make_shared<server_shared>(std::move(cfg), std::move(handler), std::move(observer));
}

http_server::~http_server() { stop(); }

status http_server::start() {
  auto& cfg = impl_->shared->cfg;
  auto& ioc = impl_->ioc;
  beast::error_code ec;
  auto addr = asio::ip::make_address(cfg.host, ec);
  if (ec) return error{fmt::format("invalid listen address '{}': {}", cfg.host, ec.message())};
  tcp::endpoint ep{addr, cfg.port};
  impl_->acceptor.emplace(asio::make_strand(ioc));
  auto& acc = *impl_->acceptor;
  auto fail = [&](const char* what) {
    return error{fmt::format("cannot {} {}:{}: {}", what, cfg.host, cfg.port, ec.message())};
  };
  if (acc.open(ep.protocol(), ec); ec) return fail("open a socket for");
  if (acc.set_option(asio::socket_base::reuse_address(true), ec); ec) return fail("configure");
  if (acc.bind(ep, ec); ec) return fail("listen on");
  if (acc.listen(asio::socket_base::max_listen_connections, ec); ec) return fail("listen on");
  bound_port_ = acc.local_endpoint().port();
  impl_->work.emplace(ioc.get_executor());
  impl_->accept();
  int n = std::max(1, cfg.io_threads);
  for (int i = 0; i < n; ++i) impl_->threads.emplace_back([&ioc] { ioc.run(); });
  return {};
}

void http_server::stop_accepting() {
  if (impl_->shared->accepting.exchange(false) == false) return;
  if (impl_->acceptor) {
    std::promise<void> closed;
    asio::post(impl_->acceptor->get_executor(), [this, &closed] {
      beast::error_code ignored;
      impl_->acceptor->close(ignored);
      closed.set_value();
    });
    if (!impl_->threads.empty()) closed.get_future().wait();
  }
  impl_->for_each_session([](session& s) { s.close_if_idle(); });
}

void http_server::begin_drain() {
  // Idle keep-alive connections stay: their next request gets the handler's answer (503) with
  // `Connection: close`, which a client handles better than a connection closed under it.
  impl_->shared->draining = true;
}

std::size_t http_server::num_open_exchanges() const {
  return impl_->shared->num_open_exchanges.load();
}

void http_server::stop() {
  if (impl_->stopped) return;
  impl_->stopped = true;
  if (impl_->threads.empty()) return;
  stop_accepting();
  impl_->for_each_session([](session& s) { s.close_now(); });
  impl_->work.reset();
  // With every socket closed (timers cancelled) run() returns once the close handlers ran; a
  // watchdog stops the loop if something still holds work after 2 s.
  std::mutex mu;
  std::condition_variable cv;
  bool joined = false;
  std::thread watchdog([&] {
    std::unique_lock lock(mu);
    if (!cv.wait_for(lock, std::chrono::seconds(2), [&] { return joined; })) impl_->ioc.stop();
  });
  for (auto& t : impl_->threads) t.join();
  {
    std::lock_guard lock(mu);
    joined = true;
  }
  cv.notify_one();
  watchdog.join();
  impl_->threads.clear();
  impl_->acceptor.reset();
}

}  // namespace troupe::net
