#include "bench/load_client.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>

#include <chrono>
#include <deque>
#include <memory>
#include <optional>

#include "net/json_writer.hpp"

namespace troupe::bench {
namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = boost::beast::http;
using tcp = asio::ip::tcp;
using clock_type = std::chrono::steady_clock;

result<server_target> parse_base_url(std::string_view url) {
  const std::string_view scheme = "http://";
  if (url.substr(0, scheme.size()) != scheme)
    return error{"base URL '" + std::string(url) + "' must start with http://"};
  std::string_view rest = url.substr(scheme.size());
  server_target t;
  const size_t slash = rest.find('/');
  std::string_view hostport = rest.substr(0, slash);
  if (slash != std::string_view::npos) t.path_prefix = std::string(rest.substr(slash));
  while (!t.path_prefix.empty() && t.path_prefix.back() == '/') t.path_prefix.pop_back();
  const size_t colon = hostport.rfind(':');
  if (colon == std::string_view::npos) {
    t.host = std::string(hostport);
    t.port = "80";
  } else {
    t.host = std::string(hostport.substr(0, colon));
    t.port = std::string(hostport.substr(colon + 1));
  }
  if (t.host.empty() || t.port.empty() ||
      t.port.find_first_not_of("0123456789") != std::string::npos)
    return error{"base URL '" + std::string(url) + "' has no valid host:port"};
  return t;
}

std::string request_body(const load_options& o, const bench_request& r) {
  net::json_writer w;
  w.begin_object();
  w.field("model", o.model);
  if (o.kind == api_kind::chat) {
    w.key("messages").begin_array().begin_object();
    w.field("role", "user").field("content", r.prompt);
    w.end_object().end_array();
  } else {
    w.field("prompt", r.prompt);
  }
  w.field("max_tokens", r.max_tokens);
  w.field("temperature", 0.0);
  w.field("stream", true);
  w.key("stream_options").begin_object().field("include_usage", true).end_object();
  if (o.ignore_eos) w.field("ignore_eos", true);
  w.end_object();
  return w.take();
}

namespace {

double seconds_between(clock_type::time_point a, clock_type::time_point b) {
  return std::chrono::duration<double>(b - a).count();
}

struct connection {
  explicit connection(asio::io_context& io) : socket(io), timer(io) {}
  tcp::socket socket;
  asio::steady_timer timer;
  beast::flat_buffer buffer;
  http::request<http::string_body> req;
  std::optional<http::response_parser<http::buffer_body>> parser;
  char body_buf[16384];
  bool is_open = false;
  bool reused = false;      // this request went out on a connection used before
  bool got_bytes = false;   // any response byte seen (no retry after that)
  bool retried = false;
  bool timed_out = false;
  uint64_t generation = 0;  // bumps per request, so a stale timeout never hits the next request
  // the request in flight
  size_t index = 0;
  clock_type::time_point start, last_chunk;
  sse_parser sse;
  bool saw_done = false;
  bool failed = false;
  int64_t chunks = 0;
  int64_t usage_prompt = -1, usage_completion = -1;
  std::string error_body;   // body of a non-200 response
};

class load_runner {
 public:
  load_runner(const load_options& o, const std::vector<bench_request>& reqs)
      : o_(o), reqs_(reqs), resolver_(io_), arrival_timer_(io_), progress_timer_(io_) {
    result_.records.resize(reqs.size());
  }

  load_result run() {
    TROUPE_ASSERT(o_.arrivals_s.size() == reqs_.size());
    boost::system::error_code ec;
    endpoints_ = resolver_.resolve(o_.server.host, o_.server.port, ec);
    t0_ = clock_type::now();
    if (ec) {
      for (auto& r : result_.records) r.error = "cannot resolve " + o_.server.host + ": " + ec.message();
      result_.duration_s = 1e-9;
      return std::move(result_);
    }
    schedule_arrivals();
    tick_progress();
    io_.run();
    result_.duration_s = std::max(seconds_between(t0_, last_finish_), 1e-9);
    if (o_.on_progress) o_.on_progress(finished_, reqs_.size());
    return std::move(result_);
  }

 private:
  void schedule_arrivals() {
    const double now_s = seconds_between(t0_, clock_type::now());
    while (next_arrival_ < reqs_.size() && o_.arrivals_s[next_arrival_] <= now_s)
      queue_.push_back(next_arrival_++);
    dispatch();
    if (next_arrival_ < reqs_.size()) {
      arrival_timer_.expires_at(t0_ + std::chrono::duration_cast<clock_type::duration>(
                                          std::chrono::duration<double>(o_.arrivals_s[next_arrival_])));
      arrival_timer_.async_wait([this](boost::system::error_code e) {
        if (!e) schedule_arrivals();
      });
    }
  }

  void tick_progress() {
    if (!o_.on_progress || finished_ == reqs_.size()) return;
    o_.on_progress(finished_, reqs_.size());
    progress_timer_.expires_after(std::chrono::milliseconds(200));
    progress_timer_.async_wait([this](boost::system::error_code e) {
      if (!e) tick_progress();
    });
  }

  void dispatch() {
    while (!queue_.empty() && (o_.max_concurrency == 0 || in_flight_ < o_.max_concurrency)) {
      const size_t idx = queue_.front();
      queue_.pop_front();
      std::shared_ptr<connection> c;
      if (!idle_.empty()) {
        c = idle_.back();
        idle_.pop_back();
      } else {
        c = std::make_shared<connection>(io_);
      }
      ++in_flight_;
      begin(c, idx, /*retry=*/false);
    }
  }

  void begin(const std::shared_ptr<connection>& c, size_t idx, bool retry) {
    c->index = idx;
    c->retried = retry;
    c->got_bytes = c->saw_done = c->failed = c->timed_out = false;
    c->chunks = 0;
    c->usage_prompt = c->usage_completion = -1;
    c->sse = sse_parser{};
    c->error_body.clear();
    c->buffer.clear();
    c->req = {http::verb::post, o_.server.path_prefix + o_.endpoint, 11};
    c->req.set(http::field::host, o_.server.host + ":" + o_.server.port);
    c->req.set(http::field::content_type, "application/json");
    c->req.set(http::field::accept, "text/event-stream");
    c->req.keep_alive(true);
    c->req.body() = request_body(o_, reqs_[idx]);
    c->req.prepare_payload();
    c->start = clock_type::now();
    c->timer.expires_after(std::chrono::duration_cast<clock_type::duration>(
        std::chrono::duration<double>(o_.request_timeout_s)));
    const uint64_t gen = ++c->generation;
    c->timer.async_wait([c, gen](boost::system::error_code e) {
      if (e || gen != c->generation) return;  // the request finished first
      c->timed_out = true;
      boost::system::error_code ignored;
      c->socket.close(ignored);
    });
    c->reused = c->is_open;
    if (c->is_open) {
      write(c);
      return;
    }
    ++result_.connections_opened;
    asio::async_connect(c->socket, endpoints_,
                        [this, c](boost::system::error_code e, const tcp::endpoint&) {
                          if (e) return fail(c, "connect: " + e.message());
                          c->is_open = true;
                          c->socket.set_option(tcp::no_delay(true));
                          write(c);
                        });
  }

  void write(const std::shared_ptr<connection>& c) {
    http::async_write(c->socket, c->req, [this, c](boost::system::error_code e, size_t) {
      if (e) return io_error(c, "write: " + e.message());
      c->parser.emplace();
      c->parser->body_limit(boost::none);
      http::async_read_header(c->socket, c->buffer, *c->parser,
                              [this, c](boost::system::error_code e2, size_t) {
                                if (e2) return io_error(c, "read header: " + e2.message());
                                c->got_bytes = true;
                                read_body(c);
                              });
    });
  }

  void read_body(const std::shared_ptr<connection>& c) {
    if (c->parser->is_done()) return finish(c);
    auto& body = c->parser->get().body();
    body.data = c->body_buf;
    body.size = sizeof(c->body_buf);
    http::async_read_some(c->socket, c->buffer, *c->parser,
                          [this, c](boost::system::error_code e, size_t) {
                            const auto now = clock_type::now();
                            if (e == http::error::need_buffer) e = {};
                            const size_t n = sizeof(c->body_buf) - c->parser->get().body().size;
                            if (n) on_body(c, std::string_view(c->body_buf, n), now);
                            if (e) return io_error(c, "read body: " + e.message());
                            read_body(c);
                          });
  }

  void on_body(const std::shared_ptr<connection>& c, std::string_view bytes,
               clock_type::time_point now) {
    if (c->parser->get().result() != http::status::ok) {
      if (c->error_body.size() < 600) c->error_body.append(bytes.substr(0, 600));
      return;
    }
    auto& rec = result_.records[c->index];
    for (const auto& payload : c->sse.feed(bytes)) {
      const auto chunk = read_chunk(payload, o_.kind);
      if (chunk.done) c->saw_done = true;
      if (!chunk.error.empty() && rec.error.empty()) rec.error = chunk.error;
      if (chunk.prompt_tokens >= 0) c->usage_prompt = chunk.prompt_tokens;
      if (chunk.completion_tokens >= 0) c->usage_completion = chunk.completion_tokens;
      if (chunk.text_bytes == 0) continue;
      if (c->chunks == 0)
        rec.ttft_s = seconds_between(c->start, now);
      else
        rec.itl_s.push_back(seconds_between(c->last_chunk, now));
      c->last_chunk = now;
      ++c->chunks;
    }
  }

  // A socket error: retry once on a fresh connection when a reused keep-alive connection turned
  // out to be closed by the server before it answered; otherwise the request fails.
  void io_error(const std::shared_ptr<connection>& c, std::string what) {
    if (c->timed_out) what = "timeout after " + std::to_string(o_.request_timeout_s) + " s";
    if (c->reused && !c->got_bytes && !c->retried && !c->timed_out) {
      close(c);
      result_.records[c->index].itl_s.clear();
      return begin(c, c->index, /*retry=*/true);
    }
    fail(c, std::move(what));
  }

  void fail(const std::shared_ptr<connection>& c, std::string what) {
    c->failed = true;
    auto& rec = result_.records[c->index];
    if (rec.error.empty()) rec.error = std::move(what);
    close(c);
    complete(c);
  }

  void finish(const std::shared_ptr<connection>& c) {
    auto& rec = result_.records[c->index];
    const auto status = c->parser->get().result_int();
    if (status != 200)
      rec.error = "HTTP " + std::to_string(status) + ": " + c->error_body;
    else if (rec.error.empty() && !c->saw_done)
      rec.error = "stream ended without data: [DONE]";
    else if (rec.error.empty() && c->chunks == 0)
      rec.error = "no generated text in the stream";
    if (!c->parser->get().keep_alive()) close(c);
    complete(c);
  }

  void complete(const std::shared_ptr<connection>& c) {
    ++c->generation;
    c->timer.cancel();
    auto& rec = result_.records[c->index];
    rec.success = rec.error.empty() && !c->failed;
    rec.start_s = seconds_between(t0_, c->start);
    if (rec.success) {
      rec.latency_s = seconds_between(c->start, c->last_chunk);
      rec.output_tokens = c->usage_completion >= 0 ? c->usage_completion : c->chunks;
      rec.prompt_tokens = c->usage_prompt >= 0 ? c->usage_prompt : reqs_[c->index].prompt_tokens;
    } else {
      rec.itl_s.clear();
    }
    last_finish_ = clock_type::now();
    ++finished_;
    --in_flight_;
    if (c->is_open) idle_.push_back(c);
    if (finished_ == reqs_.size()) {
      arrival_timer_.cancel();
      progress_timer_.cancel();
      for (auto& i : idle_) close(i);
      idle_.clear();
      return;
    }
    dispatch();
  }

  void close(const std::shared_ptr<connection>& c) {
    boost::system::error_code ignored;
    c->socket.shutdown(tcp::socket::shutdown_both, ignored);
    c->socket.close(ignored);
    c->socket = tcp::socket(io_);
    c->is_open = false;
  }

  const load_options& o_;
  const std::vector<bench_request>& reqs_;
  asio::io_context io_{1};
  tcp::resolver resolver_;
  tcp::resolver::results_type endpoints_;
  asio::steady_timer arrival_timer_, progress_timer_;
  clock_type::time_point t0_, last_finish_;
  std::deque<size_t> queue_;
  std::vector<std::shared_ptr<connection>> idle_;
  size_t next_arrival_ = 0, in_flight_ = 0, finished_ = 0;
  load_result result_;
};

}  // namespace

load_result run_load(const load_options& o, const std::vector<bench_request>& requests) {
  if (requests.empty()) return {};
  load_runner runner(o, requests);
  return runner.run();
}

}  // namespace troupe::bench
