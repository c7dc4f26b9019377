// The request actor under CAF's deterministic test scheduler (no threads, no sleeps): a fake
// scheduler records submits and cancels, the test plays the scheduler's token events, and a
// recording http_exchange captures the HTTP answer the actor produces -- the non-streaming JSON
// body, SSE frames ending with `data: [DONE]`, stop strings never emitted, exactly one answer,
// cancel when the client goes away, and prompt batches indexed prompt * n + choice.
#include <catch2/catch.hpp>

#include <caf/all.hpp>
#include <caf/scheduler/test_coordinator.hpp>
#include <simdjson.h>

#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "actors/request_actor.hpp"
#include "memory/gguf_file.hpp"
#include "net/http_server.hpp"

using namespace troupe;
using namespace troupe::actors;

namespace {

// The model's tokenizer (token texts may point into the file's mapping: the file stays open).
const tokenizer& default_tokenizer() {
  static const auto file = [] {
    auto f = gguf_file::open(TROUPE_DEFAULT_MODEL);
    INFO("cannot open " << TROUPE_DEFAULT_MODEL << " (run `make model`)");
    REQUIRE(f.ok());
    return std::move(f.value());
  }();
  static const tokenizer tok = [] {
    auto t = tokenizer::from_gguf(file);
    REQUIRE(t.ok());
    return std::move(t.value());
  }();
  return tok;
}

// Records everything the actor writes; answering twice or writing after the end is counted,
// not hidden.
class recording_exchange final : public net::http_exchange {
 public:
  int num_answers = 0;  // respond() + start_stream() calls: must end at 1
  int status = 0;
  std::string content_type;
  std::string body;                 // respond()
  std::vector<std::string> chunks;  // send_chunk(), streaming
  bool ended = false;
  int num_writes_after_end = 0;

  void respond(int st, std::string_view type, std::string b) override {
    ++num_answers;
    if (ended) ++num_writes_after_end;
    status = st;
    content_type = type;
    body = std::move(b);
    ended = true;
  }
  void start_stream(int st, std::string_view type) override {
    ++num_answers;
    status = st;
    content_type = type;
  }
  void send_chunk(std::string data) override {
    if (ended || num_answers == 0) ++num_writes_after_end;
    chunks.push_back(std::move(data));
  }
  void end_stream() override {
    if (ended) ++num_writes_after_end;
    ended = true;
  }
  void on_disconnect(std::function<void()> cb) override { on_disconnect_ = std::move(cb); }
  bool is_disconnected() const override { return disconnected_; }

  // What the session does when the peer goes away.
  void disconnect() {
    disconnected_ = true;
    if (auto cb = std::exchange(on_disconnect_, {})) cb();
  }
  std::string sse() const {
    std::string s;
    for (const auto& c : chunks) s += c;
    return s;
  }

 private:
  std::function<void()> on_disconnect_;
  bool disconnected_ = false;
};

// The scheduler side as the request actor sees it.
struct scheduler_log {
  std::vector<generate_request> submits;
  std::vector<token_sink_actor> sinks;
  std::vector<uint64_t> cancels;
  std::map<std::size_t, caf::error> refusals;  // submit number -> the error it gets
};

// Untyped on purpose: it answers only what a request actor sends (submit, cancel), so the test
// does not break when the scheduler's interface grows; actor_cast gives the typed handle.
caf::behavior fake_scheduler(caf::event_based_actor*, std::shared_ptr<scheduler_log> log) {
  return {
      [=](submit_atom, const generate_request& r,
          const token_sink_actor& sink) -> caf::result<uint64_t> {
        const std::size_t k = log->submits.size();
        log->submits.push_back(r);
        log->sinks.push_back(sink);
        if (auto it = log->refusals.find(k); it != log->refusals.end()) return it->second;
        return r.request_id;
      },
      [=](cancel_atom, uint64_t id) { log->cancels.push_back(id); },
  };
}

struct fixture {
  caf::actor_system_config cfg;
  std::unique_ptr<caf::actor_system> sys;
  caf::scheduler::test_coordinator* sched = nullptr;
  std::shared_ptr<scheduler_log> log = std::make_shared<scheduler_log>();
  caf::actor scheduler;
  caf::actor request;  // the actor under test
  std::shared_ptr<recording_exchange> ex = std::make_shared<recording_exchange>();
  std::shared_ptr<bool> actor_down = std::make_shared<bool>(false);

  fixture() {
    cfg.set("scheduler.policy", caf::atom("testing"));
    sys = std::make_unique<caf::actor_system>(cfg);
    sched = &dynamic_cast<caf::scheduler::test_coordinator&>(sys->scheduler());
    scheduler = sys->spawn(fake_scheduler, log);
    sched->run();
  }
  ~fixture() {
    // A failed check may leave the request actor waiting: stop it, or ~actor_system would wait.
    if (request) caf::anon_send_exit(request, caf::exit_reason::user_shutdown);
    caf::anon_send_exit(scheduler, caf::exit_reason::user_shutdown);
    sched->run();
  }

  // A completions (or chat) request of `prompts.size()` prompts with n choices each; the
  // request ids are 100, 101, ...
  request_context context(std::size_t num_prompts = 1, int32_t n = 1, bool stream = false) {
    request_context ctx{.requests = {},
                        .response = {},
                        .tok = default_tokenizer(),
                        .skip_special_tokens = true,
                        .exchange = ex,
                        .metrics = nullptr,
                        .scheduler = caf::actor_cast<scheduler_actor>(scheduler),
                        .timeout = std::chrono::milliseconds(0)};
    for (std::size_t k = 0; k < num_prompts; ++k) {
      generate_request g;
      g.request_id = 100 + k;
      g.prompt_token_ids = {1, 2, 3};
      g.max_tokens = 16;
      g.n = n;
      ctx.requests.push_back(std::move(g));
    }
    auto& r = ctx.response;
    r.kind = net::endpoint_kind::completions;
    r.id = "cmpl-test";
    r.model = "m";
    r.created = 1;
    r.n = n;
    r.num_prompts = static_cast<int32_t>(num_prompts);
    r.stream = stream;
    r.num_prompt_tokens = static_cast<int32_t>(3 * num_prompts);
    return ctx;
  }

  void start(request_context ctx) {
    request = spawn_request_actor(*sys, std::move(ctx));
    request->attach_functor([down = actor_down] { *down = true; });  // runs when it terminates
    sched->run();
  }

  // The scheduler's event for (request id, choice): the text's tokens, and a finish.
  void send(uint64_t request_id, int32_t choice, const std::string& text,
            finish_reason finish = finish_reason::none, bool request_done = false) {
    REQUIRE(!log->sinks.empty());
    token_event ev;
    ev.request_id = request_id;
    ev.choice_index = choice;
    if (!text.empty()) ev.token_ids = default_tokenizer().encode(text, false, false);
    ev.finish = finish;
    ev.is_request_done = request_done;
    ev.num_prompt_tokens = 3;
    caf::anon_send(log->sinks.front(), token_atom::value, std::move(ev));
    sched->run();
  }
};

simdjson::dom::element parse(simdjson::dom::parser& p, const std::string& json) {
  simdjson::dom::element doc;
  INFO(json);
  REQUIRE(p.parse(json).get(doc) == simdjson::SUCCESS);
  return doc;
}

// The JSON payloads of an SSE stream; REQUIREs the framing (`data: ...\n\n`, [DONE] last).
std::vector<std::string> sse_payloads(const std::string& sse) {
  std::vector<std::string> out;
  std::size_t pos = 0;
  bool done = false;
  while (pos < sse.size()) {
    INFO(sse);
    REQUIRE(!done);
    REQUIRE(sse.compare(pos, 6, "data: ") == 0);
    auto end = sse.find("\n\n", pos);
    REQUIRE(end != std::string::npos);
    auto payload = sse.substr(pos + 6, end - pos - 6);
    if (payload == "[DONE]") done = true;
    else out.push_back(payload);
    pos = end + 2;
  }
  REQUIRE(done);
  return out;
}

std::string_view str(simdjson::dom::element e) { return std::string_view(e); }
int64_t num(simdjson::dom::element e) { return int64_t(e); }

}  // namespace

TEST_CASE("non-streaming: one JSON body with the text, finish_reason and usage",
          "[actors][request]") {
  fixture f;
  f.start(f.context());
  REQUIRE(f.log->submits.size() == 1);
  CHECK(f.log->submits[0].request_id == 100);
  CHECK(f.ex->num_answers == 0);
  f.send(100, 0, "Hello");
  f.send(100, 0, " world");
  CHECK(f.ex->num_answers == 0);  // nothing is written before the end
  f.send(100, 0, "", finish_reason::length, true);
  CHECK(f.ex->num_answers == 1);
  CHECK(f.ex->status == 200);
  CHECK(f.ex->content_type == "application/json");
  simdjson::dom::parser p;
  auto doc = parse(p, f.ex->body);
  CHECK(str(doc["object"]) == "text_completion");
  auto c = doc["choices"].at(0);
  CHECK(num(c["index"]) == 0);
  CHECK(str(c["text"]) == "Hello world");
  CHECK(str(c["finish_reason"]) == "length");
  CHECK(num(doc["usage"]["prompt_tokens"]) == 3);
  CHECK(*f.actor_down);
  CHECK(f.log->cancels.empty());
  CHECK(f.ex->num_writes_after_end == 0);
}

TEST_CASE("streaming: SSE frames in order, a finish frame, usage, then data: [DONE]",
          "[actors][request]") {
  fixture f;
  auto ctx = f.context(1, 1, true);
  ctx.response.include_usage = true;
  f.start(std::move(ctx));
  CHECK(f.ex->num_answers == 1);
  CHECK(f.ex->content_type == "text/event-stream");
  f.send(100, 0, "Hello");
  f.send(100, 0, " world");
  CHECK(!f.ex->ended);
  f.send(100, 0, "", finish_reason::stop, true);
  CHECK(f.ex->ended);
  CHECK(f.ex->num_answers == 1);
  auto frames = sse_payloads(f.ex->sse());
  simdjson::dom::parser p;
  std::string text;
  std::vector<std::string> finishes;
  for (std::size_t i = 0; i + 1 < frames.size(); ++i) {
    auto c = parse(p, frames[i])["choices"].at(0);
    text += str(c["text"]);
    if (!c["finish_reason"].is_null()) finishes.emplace_back(str(c["finish_reason"]));
  }
  CHECK(text == "Hello world");
  CHECK(finishes == std::vector<std::string>{"stop"});
  auto last = parse(p, frames.back());
  CHECK(last["choices"].get_array().size() == 0);
  CHECK(num(last["usage"]["completion_tokens"]) ==
        static_cast<int64_t>(default_tokenizer().encode("Hello world", false, false).size()));
  CHECK(*f.actor_down);
  CHECK(f.ex->num_writes_after_end == 0);
}

TEST_CASE("a stop string across tokens is never emitted and cancels the request",
          "[actors][request]") {
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    fixture f;
    auto ctx = f.context(1, 1, stream);
    ctx.response.stop = {"wor"};
    f.start(std::move(ctx));
    f.send(100, 0, "Hello w");
    f.send(100, 0, "orld and more");
    // Every choice ended on the stop string: the blocks are freed without waiting for the
    // scheduler's own finish.
    CHECK(f.log->cancels == std::vector<uint64_t>{100});
    CHECK(f.ex->num_answers == 1);
    CHECK(f.ex->ended);
    // The scheduler's answer to the cancel ends the actor and changes nothing the client saw.
    const auto before = f.ex->sse() + f.ex->body;
    f.send(100, 0, "", finish_reason::cancelled, true);
    CHECK(f.ex->sse() + f.ex->body == before);
    CHECK(*f.actor_down);
    CHECK(f.ex->num_writes_after_end == 0);
    std::string text;
    simdjson::dom::parser p;
    if (stream) {
      for (const auto& fr : sse_payloads(f.ex->sse())) {
        auto c = parse(p, fr)["choices"].at(0);
        text += str(c["text"]);
      }
    } else {
      auto c = parse(p, f.ex->body)["choices"].at(0);
      text = str(c["text"]);
      CHECK(str(c["finish_reason"]) == "stop");
    }
    CHECK(text == "Hello ");
    CHECK(text.find("wor") == std::string::npos);
  }
}

TEST_CASE("a client that disconnects gets its request cancelled and nothing more written",
          "[actors][request]") {
  fixture f;
  f.start(f.context(1, 1, true));
  f.send(100, 0, "Hello");
  const auto written = f.ex->chunks.size();
  f.ex->disconnect();  // on an io thread in the server: a closed_atom to the actor
  f.sched->run();
  CHECK(f.log->cancels == std::vector<uint64_t>{100});
  CHECK(!*f.actor_down);  // it waits for the scheduler's terminal event
  f.send(100, 0, " world");
  f.send(100, 0, "", finish_reason::cancelled, true);
  CHECK(f.ex->chunks.size() == written);
  CHECK(f.ex->num_answers == 1);
  CHECK(*f.actor_down);
}

TEST_CASE("a refused submit is answered once with the scheduler's reason as HTTP status",
          "[actors][request]") {
  fixture f;
  f.log->refusals[0] = make_error(submit_error::queue_full, "the server is busy");
  f.start(f.context(1, 1, true));
  CHECK(f.ex->num_answers == 1);
  CHECK(f.ex->status == 429);
  simdjson::dom::parser p;
  auto e = parse(p, f.ex->body)["error"];
  CHECK(str(e["message"]) == "the server is busy");
  CHECK(f.ex->chunks.empty());
  CHECK(*f.actor_down);
}

TEST_CASE("an error event ends the request with a 500, or in-band once streaming",
          "[actors][request]") {
  {
    fixture f;
    f.start(f.context());
    f.send(100, 0, "Hello");
    f.send(100, 0, "", finish_reason::error, true);
    CHECK(f.ex->num_answers == 1);
    CHECK(f.ex->status == 500);
    CHECK(*f.actor_down);
  }
  {
    fixture f;
    f.start(f.context(1, 1, true));
    f.send(100, 0, "Hello");
    f.send(100, 0, "", finish_reason::error, true);
    CHECK(f.ex->num_answers == 1);
    CHECK(f.ex->status == 200);
    CHECK(f.ex->ended);
    CHECK(f.ex->sse().find("data: {\"error\":") != std::string::npos);
    CHECK(std::string_view(f.ex->sse()).ends_with("data: [DONE]\n\n"));
    CHECK(*f.actor_down);
  }
}

TEST_CASE("a prompt batch: one submit per prompt, choices indexed prompt * n + choice",
          "[actors][request]") {
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    fixture f;
    f.start(f.context(2, 2, stream));
    REQUIRE(f.log->submits.size() == 2);
    CHECK(f.log->submits[0].request_id == 100);
    CHECK(f.log->submits[1].request_id == 101);
    f.send(101, 1, "B1");
    f.send(100, 0, "A0");
    f.send(101, 0, "B0", finish_reason::length);
    f.send(100, 1, "A1", finish_reason::length);
    f.send(100, 0, "", finish_reason::length, true);  // prompt 0 done; prompt 1 still runs
    CHECK(!f.ex->ended);
    CHECK(!*f.actor_down);
    f.send(101, 1, "", finish_reason::stop, true);
    CHECK(f.ex->ended);
    CHECK(f.ex->num_answers == 1);
    CHECK(*f.actor_down);
    std::map<int64_t, std::string> text, finish;
    simdjson::dom::parser p;
    auto collect = [&](simdjson::dom::element choices) {
      for (auto c : choices.get_array()) {
        text[num(c["index"])] += str(c["text"]);
        if (!c["finish_reason"].is_null()) finish[num(c["index"])] = str(c["finish_reason"]);
      }
    };
    if (stream) {
      for (const auto& fr : sse_payloads(f.ex->sse())) collect(parse(p, fr)["choices"]);
    } else {
      auto doc = parse(p, f.ex->body);
      collect(doc["choices"]);
      CHECK(num(doc["usage"]["prompt_tokens"]) == 6);
    }
    CHECK(text == std::map<int64_t, std::string>{{0, "A0"}, {1, "A1"}, {2, "B0"}, {3, "B1"}});
    CHECK(finish == std::map<int64_t, std::string>{
                        {0, "length"}, {1, "length"}, {2, "length"}, {3, "stop"}});
  }
}

TEST_CASE("a batch with one refused prompt fails as a whole and cancels the accepted ones",
          "[actors][request]") {
  fixture f;
  f.log->refusals[1] = make_error(submit_error::queue_full, "the server is busy");
  f.start(f.context(2, 1, true));
  CHECK(f.ex->num_answers == 1);
  CHECK(f.ex->status == 429);  // the stream never started
  CHECK(f.ex->chunks.empty());
  CHECK(f.log->cancels == std::vector<uint64_t>{100});
  CHECK(!*f.actor_down);  // prompt 0 was accepted: its terminal event is still due
  f.send(100, 0, "", finish_reason::cancelled, true);
  CHECK(*f.actor_down);
  CHECK(f.ex->num_answers == 1);
  CHECK(f.ex->num_writes_after_end == 0);
}

TEST_CASE("echo + logprobs: the prompt's logprobs from choice 0's first event come first",
          "[actors][request]") {
  fixture f;
  auto ctx = f.context();
  const auto prompt = default_tokenizer().encode("Hello big world", false, false);
  REQUIRE(prompt.size() >= 2);
  ctx.requests[0].prompt_token_ids = prompt;
  ctx.response.echo = true;
  ctx.response.prompt_texts = {"Hello big world"};
  ctx.response.logprobs = true;
  ctx.response.top_logprobs = 1;
  f.start(std::move(ctx));
  token_event ev;
  ev.request_id = 100;
  ev.token_ids = default_tokenizer().encode("!", false, false);
  ev.logprobs.resize(ev.token_ids.size());
  for (std::size_t i = 1; i < prompt.size(); ++i) {
    engine::sample_result lp;
    lp.token = prompt[i];
    lp.logprob = -static_cast<float>(i);
    lp.top = {{prompt[i], lp.logprob}};
    ev.prompt_logprobs.push_back(lp);
  }
  ev.finish = finish_reason::length;
  ev.is_request_done = true;
  caf::anon_send(f.log->sinks.front(), token_atom::value, std::move(ev));
  f.sched->run();
  REQUIRE(f.ex->num_answers == 1);
  simdjson::dom::parser p;
  auto c = parse(p, f.ex->body)["choices"].at(0);
  CHECK(str(c["text"]) == "Hello big world!");
  auto lp = c["logprobs"];
  auto tokens = lp["tokens"].get_array();
  REQUIRE(tokens.size() == prompt.size() + 1);
  std::string joined;
  for (auto t : tokens) joined += str(t);
  CHECK(joined == "Hello big world!");
  auto values = lp["token_logprobs"].get_array();
  CHECK(values.at(0).is_null());
  CHECK(lp["top_logprobs"].get_array().at(0).is_null());
  for (std::size_t i = 1; i < prompt.size(); ++i)
    CHECK(double(values.at(i)) == -static_cast<double>(i));
  CHECK(num(lp["text_offset"].get_array().at(0)) == 0);
}

TEST_CASE("the deadline cancels the request; the client gets the text so far with abort",
          "[actors][request]") {
  fixture f;
  auto ctx = f.context(2, 1, false);
  ctx.timeout = std::chrono::seconds(5);
  f.start(std::move(ctx));
  f.send(100, 0, "Hello");
  f.sched->advance_time(std::chrono::seconds(4));
  f.sched->run();
  CHECK(f.log->cancels.empty());
  f.sched->advance_time(std::chrono::seconds(1));
  f.sched->run();
  CHECK(f.log->cancels == std::vector<uint64_t>{100, 101});  // every prompt of the batch
  CHECK(f.ex->num_answers == 0);  // the scheduler's terminal events come first
  f.send(100, 0, "", finish_reason::cancelled, true);
  f.send(101, 0, "", finish_reason::cancelled, true);
  REQUIRE(f.ex->num_answers == 1);
  CHECK(f.ex->status == 200);
  simdjson::dom::parser p;
  auto doc = parse(p, f.ex->body);
  CHECK(str(doc["choices"].at(0)["text"]) == "Hello");
  CHECK(str(doc["choices"].at(0)["finish_reason"]) == "abort");
  CHECK(str(doc["choices"].at(1)["finish_reason"]) == "abort");
  CHECK(*f.actor_down);
}

TEST_CASE("a request the server cuts at shutdown ends with an error, not finish_reason abort",
          "[actors][request]") {
  for (bool stream : {false, true}) {
    INFO("stream " << stream);
    fixture f;
    f.start(f.context(1, 1, stream));
    f.send(100, 0, "Hello");
    // The scheduler's abort_atom at the shutdown deadline: a cancel nobody here asked for.
    f.send(100, 0, "", finish_reason::cancelled, true);
    REQUIRE(f.ex->num_answers == 1);
    CHECK(*f.actor_down);
    simdjson::dom::parser p;
    if (stream) {
      auto frames = sse_payloads(f.ex->sse());  // REQUIREs [DONE] last
      REQUIRE(!frames.empty());
      CHECK(str(parse(p, frames.back())["error"]["code"]) == "shutting_down");
      CHECK(f.ex->sse().find("\"finish_reason\":\"abort\"") == std::string::npos);
    } else {
      CHECK(f.ex->status == 503);
      CHECK(str(parse(p, f.ex->body)["error"]["code"]) == "shutting_down");
    }
  }
}
