// http_server + openai_router against a fake backend, driven by a Beast client over loopback.
#include <catch2/catch.hpp>

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <future>
#include <thread>

#include "frontend/openai_router.hpp"
#include "net/sse.hpp"

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;
using namespace troupe::net;
using namespace troupe::frontend;
using namespace std::chrono_literals;

namespace {

struct fake_backend : serving_backend {
  bool ready = true;
  bool draining = false;
  std::promise<void> disconnected;
  std::shared_ptr<http_exchange> held;
  std::vector<std::thread> threads;
  void join() {
    for (auto& t : threads) t.join();
    threads.clear();
    held.reset();
  }

  bool is_ready() const override { return ready; }
  bool is_draining() const override { return draining; }
  model_card model() const override { return {"fake", 128, 1}; }
  void generate(generation_request req, std::shared_ptr<http_exchange> ex) override {
    const std::string prompt = req.prompts.empty() ? "" : req.prompts[0].text;
    if (prompt == "hold") {  // keeps the exchange open until the client leaves
      ex->on_disconnect([this] { disconnected.set_value(); });
      held = std::move(ex);
      return;
    }
    if (prompt == "drop") return;  // a buggy backend: the server must still answer
    if (req.stream) {
      // Answer from another thread, as the request actor does.
      threads.emplace_back([ex] {
        ex->start_stream(200, sse_content_type);
        for (int i = 0; i < 3; ++i) ex->send_chunk(sse_event("{\"i\":" + std::to_string(i) + "}"));
        ex->send_chunk(std::string(sse_done));
        ex->end_stream();
      });
      return;
    }
    ex->respond_json(200, "{\"echo\":\"" + prompt + "\"}");
  }
  void tokenize(tokenize_request, std::shared_ptr<http_exchange> ex) override {
    ex->respond_json(200, "{}");
  }
  void detokenize(detokenize_request, std::shared_ptr<http_exchange> ex) override {
    ex->respond_json(200, "{}");
  }
  void metrics(std::shared_ptr<http_exchange> ex) override {
    ex->respond(200, "text/plain", "m 1\n");
  }
};

struct fixture {
  std::shared_ptr<fake_backend> backend = std::make_shared<fake_backend>();
  std::atomic<int> num_responses{0};
  http_server server;
  explicit fixture(std::size_t max_body = 1 << 20)
      : server(http_server_config{"127.0.0.1", 0, 1, max_body, 5, 5},
               make_openai_router(backend), [this](int) { ++num_responses; }) {
    auto st = server.start();
    REQUIRE(st.ok());
  }
  // Exchanges must not outlive the server: the backend lets go of them first.
  ~fixture() { backend->join(); }
};

struct client {
  asio::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buf;
  explicit client(std::uint16_t port) {
    stream.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port});
  }
  http::response<http::string_body> send(http::verb verb, const std::string& target,
                                         const std::string& body = "") {
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, "localhost");
    req.set(http::field::content_type, "application/json");
    req.body() = body;
    req.prepare_payload();
    http::write(stream, req);
    http::response<http::string_body> res;
    http::read(stream, buf, res);
    return res;
  }
};

}  // namespace

TEST_CASE("routes answer, with OpenAI-shaped 404/405/400 errors, on one keep-alive connection") {
  fixture f;
  client c(f.server.port());
  auto health = c.send(http::verb::get, "/health");
  CHECK(health.result_int() == 200);

  auto models = c.send(http::verb::get, "/v1/models");
  CHECK(models.result_int() == 200);
  CHECK(models.body().find(R"("id":"fake")") != std::string::npos);
  CHECK(models.body().find(R"("max_model_len":128)") != std::string::npos);
  CHECK(models.body().find(R"("root":"fake")") != std::string::npos);  // never a path

  auto nf = c.send(http::verb::get, "/v2/nothing");
  CHECK(nf.result_int() == 404);
  CHECK(nf.body().find(R"("error":{)") != std::string::npos);

  auto na = c.send(http::verb::get, "/v1/completions");
  CHECK(na.result_int() == 405);

  auto bad = c.send(http::verb::post, "/v1/completions", "{not json");
  CHECK(bad.result_int() == 400);
  CHECK(bad.body().find(R"("type":"invalid_request_error")") != std::string::npos);

  auto param = c.send(http::verb::post, "/v1/completions", R"({"prompt":"x","temperature":9})");
  CHECK(param.result_int() == 400);
  CHECK(param.body().find(R"("param":"temperature")") != std::string::npos);

  auto model = c.send(http::verb::post, "/v1/completions", R"({"prompt":"x","model":"gpt-9"})");
  CHECK(model.result_int() == 404);
  CHECK(model.body().find(R"("code":"model_not_found")") != std::string::npos);

  auto ok = c.send(http::verb::post, "/v1/completions?x=1", R"({"prompt":"hi","model":"fake"})");
  CHECK(ok.result_int() == 200);
  CHECK(ok.body() == R"({"echo":"hi"})");
  CHECK(f.num_responses == 8);
}

TEST_CASE("/health is 503 and generation refused until the backend is ready") {
  fixture f;
  f.backend->ready = false;
  client c(f.server.port());
  CHECK(c.send(http::verb::get, "/health").result_int() == 503);
  CHECK(c.send(http::verb::post, "/v1/completions", R"({"prompt":"x"})").result_int() == 503);
}

TEST_CASE("a body over the limit gets 413 and the connection closes") {
  fixture f(1024);
  client c(f.server.port());
  auto res = c.send(http::verb::post, "/v1/completions", std::string(4096, 'x'));
  CHECK(res.result_int() == 413);
  CHECK(res.body().find(R"("code":"request_too_large")") != std::string::npos);
  CHECK(!res.keep_alive());
}

TEST_CASE("a stream from another thread arrives as chunked SSE ending with [DONE]") {
  fixture f;
  client c(f.server.port());
  auto res = c.send(http::verb::post, "/v1/completions", R"({"prompt":"s","stream":true})");
  CHECK(res.result_int() == 200);
  CHECK(res[http::field::content_type] == "text/event-stream");
  CHECK(res.body() == "data: {\"i\":0}\n\ndata: {\"i\":1}\n\ndata: {\"i\":2}\n\ndata: [DONE]\n\n");
  // The connection stays usable after a stream.
  CHECK(c.send(http::verb::get, "/health").result_int() == 200);
}

TEST_CASE("a client leaving while its request is open fires on_disconnect") {
  fixture f;
  auto gone = f.backend->disconnected.get_future();
  {
    client c(f.server.port());
    http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
    req.set(http::field::host, "localhost");  // HTTP/1.1 without Host is a 400
    req.body() = R"({"prompt":"hold"})";
    req.prepare_payload();
    http::write(c.stream, req);
    std::this_thread::sleep_for(50ms);  // let the server hand the exchange to the backend
  }  // closes the socket
  REQUIRE(gone.wait_for(5s) == std::future_status::ready);
  CHECK(f.backend->held->is_disconnected());
  CHECK(f.server.num_open_exchanges() == 0);
}

TEST_CASE("an exchange dropped without an answer becomes a 500, not a hang") {
  fixture f;
  client c(f.server.port());
  auto res = c.send(http::verb::post, "/v1/completions", R"({"prompt":"drop"})");
  CHECK(res.result_int() == 500);
}

TEST_CASE("stop_accepting refuses new connections") {
  fixture f;
  auto port = f.server.port();
  f.server.stop_accepting();
  asio::io_context ioc;
  tcp::socket s(ioc);
  beast::error_code ec;
  s.connect(tcp::endpoint{asio::ip::make_address("127.0.0.1"), port}, ec);
  CHECK(ec);
}

TEST_CASE("a JSON route refuses another content type with 415; none at all is taken as JSON") {
  fixture f;
  client c(f.server.port());
  http::request<http::string_body> req{http::verb::post, "/v1/completions", 11};
  req.set(http::field::host, "localhost");
  req.set(http::field::content_type, "text/plain");
  req.body() = R"({"prompt":"hi"})";
  req.prepare_payload();
  http::write(c.stream, req);
  http::response<http::string_body> res;
  http::read(c.stream, c.buf, res);
  CHECK(res.result_int() == 415);
  CHECK(res.body().find(R"("code":"unsupported_media_type")") != std::string::npos);
  req.erase(http::field::content_type);
  http::write(c.stream, req);
  http::response<http::string_body> ok;
  http::read(c.stream, c.buf, ok);
  CHECK(ok.result_int() == 200);
}

TEST_CASE("while the backend drains, new requests get 503 with Retry-After; /health answers") {
  fixture f;
  f.backend->draining = true;
  f.server.begin_drain();
  client c(f.server.port());
  auto res = c.send(http::verb::post, "/v1/completions", R"({"prompt":"hi"})");
  CHECK(res.result_int() == 503);
  CHECK(res.body().find(R"("code":"shutting_down")") != std::string::npos);
  CHECK(res[http::field::retry_after] == "1");
  CHECK(!res.keep_alive());  // draining answers end their connection
  client c2(f.server.port());
  CHECK(c2.send(http::verb::get, "/health").result_int() == 200);
}
