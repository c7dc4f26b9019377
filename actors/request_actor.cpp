#include "actors/request_actor.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include <utility>

#include "logging/log.hpp"
#include "net/http_server.hpp"
#include "net/openai_error.hpp"
#include "net/server_metrics.hpp"
#include "net/sse.hpp"
#include "troupe/result.hpp"
#include "tokenizer/streaming_detokenizer.hpp"

namespace troupe::actors {

using clock = std::chrono::steady_clock;

net::api_error to_api_error(const caf::error& e, std::size_t max_waiting) {
  auto code = to_submit_error(e);
  auto msg = submit_error_message(e);
  if (!code) return net::internal_error("the scheduler did not accept the request: " + to_string(e));
  switch (*code) {
    case submit_error::invalid_request:
      // The front door validated the request (frontend/request_validation.hpp); a refusal of
      // its values here is our bug, not the client's.
      return net::internal_error("the scheduler refused a validated request: " + msg);
    case submit_error::queue_full: {
      auto err = net::queue_full(max_waiting);
      if (!msg.empty()) err.message = msg;
      return err;
    }
    case submit_error::shutting_down: return net::unavailable(msg.empty() ? "shutting down" : msg);
    case submit_error::unavailable: return net::unavailable(msg.empty() ? "unavailable" : msg);
  }
  return net::internal_error(msg);
}

namespace {

// Where one prompt's scheduler request stands.
struct prompt_state {
  bool replied = false;      // the submit was answered (accepted or refused)
  bool accepted = false;     // the scheduler took it: events will follow
  bool done = false;         // its is_request_done event came
  bool cancel_sent = false;
};

struct request_state {
  std::unique_ptr<request_context> ctx;  // a pointer: the tokenizer has no default constructor
  std::unique_ptr<net::openai_response> response;
  std::vector<streaming_detokenizer> detok;  // one per choice (response index)
  std::vector<prompt_state> prompts;         // parallel to ctx->requests
  std::size_t num_accepted = 0;
  bool refused = false;        // a submit was refused: the request failed
  bool stream_started = false; // the 200 and the first frames are out
  std::string held_frames;     // frames produced before the stream could start
  bool client_gone = false;
  bool timed_out = false;
  bool answered = false;       // the exchange got its full answer
  clock::time_point start = clock::now();
  clock::time_point last_token{};
  bool has_first_token = false;
  std::string finish_for_metrics = "stop";
  static inline const char* name = "request_actor";
};

using request_self = caf::stateful_actor<request_state>*;

void send_cancel(request_self self, std::size_t k) {
  auto& st = self->state;
  auto& p = st.prompts[k];
  if (p.cancel_sent || !p.accepted || p.done) return;
  p.cancel_sent = true;
  self->send(st.ctx->scheduler, cancel_atom::value, st.ctx->requests[k].request_id);
}

void cancel_all(request_self self) {
  for (std::size_t k = 0; k < self->state.prompts.size(); ++k) send_cancel(self, k);
}

// Quits once nothing more can arrive: every submit answered, every accepted request done.
void quit_if_idle(request_self self) {
  for (const auto& p : self->state.prompts)
    if (!p.replied || (p.accepted && !p.done)) return;
  self->quit();
}

// One line per request at its end (never its text); a 429 is a shed request.
void log_end(request_self self, int status) {
  auto& st = self->state;
  const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(clock::now() - st.start);
  const char* event = status == 429 ? "request.shed" : "request.end";
  logging::info(event, {{"request_id", st.ctx->request_id},
                        {"status", status},
                        {"finish_reason", st.finish_for_metrics},
                        {"num_prompt_tokens", st.ctx->response.num_prompt_tokens},
                        {"num_completion_tokens", st.response->num_completion_tokens()},
                        {"client_gone", st.client_gone},
                        {"timed_out", st.timed_out},
                        {"duration_ms", static_cast<std::int64_t>(ms.count())}});
}

void record_metrics(request_self self) {
  auto& st = self->state;
  if (!st.ctx->metrics) return;
  auto e2e = std::chrono::duration<double>(clock::now() - st.start).count();
  st.ctx->metrics->observe_request(st.finish_for_metrics, st.ctx->response.num_prompt_tokens,
                                  st.response->num_completion_tokens(), e2e);
}

// Ends the HTTP answer once every choice has finished (or an error ended the request).
void complete(request_self self) {
  auto& st = self->state;
  if (st.answered) return;
  st.answered = true;
  record_metrics(self);
  log_end(self, 200);
  if (st.client_gone) return;
  if (st.ctx->response.stream) {
    TROUPE_ASSERT(st.stream_started);
    st.ctx->exchange->send_chunk(st.response->end_stream());
    st.ctx->exchange->end_stream();
  } else {
    st.ctx->exchange->respond_json(200, st.response->complete_body());
  }
}

void fail(request_self self, const net::api_error& e) {
  auto& st = self->state;
  if (st.answered) return;
  st.answered = true;
  st.finish_for_metrics = "error";
  record_metrics(self);
  log_end(self, e.http_status);
  if (st.client_gone) return;
  if (st.stream_started) {
    // Headers (200) are out already: report in-band, as vLLM does, then end the stream.
    st.ctx->exchange->send_chunk(net::sse_event(e.to_json()));
    st.ctx->exchange->send_chunk(std::string(net::sse_done));
    st.ctx->exchange->end_stream();
  } else {
    st.ctx->exchange->respond_json(e.http_status, e.to_json());
  }
}

// Streaming: frames go out at once after the stream started, before that they wait (events of
// an accepted prompt may come while another prompt's submit is still unanswered).
void emit(request_self self, std::string frames) {
  auto& st = self->state;
  if (frames.empty() || st.client_gone || !st.ctx->response.stream || st.answered) return;
  if (!st.stream_started) {
    st.held_frames += frames;
    return;
  }
  st.ctx->exchange->send_chunk(std::move(frames));
}

void start_stream(request_self self) {
  auto& st = self->state;
  if (st.stream_started || st.client_gone || st.answered || !st.ctx->response.stream) return;
  st.stream_started = true;
  st.ctx->exchange->start_stream(200, net::sse_content_type);
  auto first = st.response->begin() + std::exchange(st.held_frames, {});
  if (!first.empty()) st.ctx->exchange->send_chunk(std::move(first));
}

// The prompt index of a scheduler request id, or -1.
std::ptrdiff_t prompt_of(const request_state& st, uint64_t request_id) {
  const auto& reqs = st.ctx->requests;
  for (std::size_t k = 0; k < reqs.size(); ++k)
    if (reqs[k].request_id == request_id) return static_cast<std::ptrdiff_t>(k);
  return -1;
}

// Echo + logprobs: the prompt's entries from the logprobs choice 0 brings with its first event
// (entry i - 1 is token i's; the first token has none). The response takes them once.
std::string add_prompt_logprobs(request_state& st, std::ptrdiff_t k, const token_event& ev) {
  const auto& opt = st.ctx->response;
  const auto& ids = st.ctx->requests[static_cast<std::size_t>(k)].prompt_token_ids;
  if (!opt.echo || !opt.logprobs || ev.prompt_logprobs.size() + 1 != ids.size()) return {};
  std::vector<net::token_output> entries(ids.size());
  for (std::size_t i = 0; i < ids.size(); ++i) {
    auto& o = entries[i];
    o.id = ids[i];
    o.token_text = std::string(st.ctx->tok.token_piece(o.id, true));
    o.has_logprob = i > 0;
    if (i == 0) continue;
    const auto& lp = ev.prompt_logprobs[i - 1];
    o.logprob = lp.logprob;
    for (const auto& t : lp.top)
      o.top.emplace_back(std::string(st.ctx->tok.token_piece(t.token, true)), t.logprob);
  }
  return st.response->add_prompt_logprobs(static_cast<std::int32_t>(k), std::move(entries));
}

void on_event(request_self self, token_event& ev) {
  auto& st = self->state;
  const std::int32_t n = st.ctx->response.n;
  const auto k = prompt_of(st, ev.request_id);
  if (k < 0 || ev.choice_index < 0 || ev.choice_index >= n) return;
  auto& prompt = st.prompts[static_cast<std::size_t>(k)];
  if (prompt.done) return;
  const std::int32_t choice = static_cast<std::int32_t>(k) * n + ev.choice_index;
  auto now = clock::now();
  if (!ev.token_ids.empty() && st.ctx->metrics) {
    if (!st.has_first_token)
      st.ctx->metrics->observe_time_to_first_token(
          std::chrono::duration<double>(now - st.start).count());
    else
      st.ctx->metrics->observe_inter_token(
          std::chrono::duration<double>(now - st.last_token).count() /
          static_cast<double>(ev.token_ids.size()));
  }
  if (!ev.token_ids.empty()) {
    st.has_first_token = true;
    st.last_token = now;
  }
  auto& detok = st.detok[static_cast<std::size_t>(choice)];
  if (ev.choice_index == 0)
    st.response->set_num_cached_prompt_tokens(static_cast<std::int32_t>(k),
                                              ev.num_cached_prompt_tokens);
  std::string frames;
  if (ev.choice_index == 0 && !st.answered) frames += add_prompt_logprobs(st, k, ev);
  if (!ev.token_ids.empty() && !st.answered) {
    std::vector<net::token_output> outs;
    outs.reserve(ev.token_ids.size());
    for (std::size_t i = 0; i < ev.token_ids.size(); ++i) {
      net::token_output o;
      o.id = ev.token_ids[i];
      o.text = detok.push(o.id);
      if (st.ctx->response.logprobs) {
        o.token_text = std::string(st.ctx->tok.token_piece(o.id, true));
        if (i < ev.logprobs.size()) {
          o.logprob = ev.logprobs[i].logprob;
          for (const auto& t : ev.logprobs[i].top)
            o.top.emplace_back(std::string(st.ctx->tok.token_piece(t.token, true)), t.logprob);
        }
      }
      outs.push_back(std::move(o));
    }
    frames += st.response->add_tokens(choice, outs);
  }
  if (ev.finish != finish_reason::none && !st.answered) {
    if (ev.finish == finish_reason::error) {
      fail(self, net::internal_error("generation failed: " + ev.error_message));
      cancel_all(self);
    } else if (ev.finish == finish_reason::cancelled && !prompt.cancel_sent) {
      // Nobody here asked for it: the server cut the request at its shutdown deadline
      // (abort_atom). Say so as an error (an SSE error event, then [DONE]) rather than with
      // finish_reason "abort", which OpenAI clients do not know.
      fail(self, net::shutting_down("the server shut down before this request finished"));
      cancel_all(self);
    } else {
      const char* reason = ev.finish == finish_reason::stop     ? "stop"
                           : ev.finish == finish_reason::length ? "length"
                                                                : "abort";
      if (choice == 0) st.finish_for_metrics = reason;
      frames += st.response->finish_choice(choice, reason, detok.finish());
    }
  }
  emit(self, std::move(frames));
  bool prompt_finished = true;  // every choice of this prompt has its finish_reason
  for (std::int32_t c = 0; c < n && prompt_finished; ++c)
    prompt_finished = st.response->choice_finished(static_cast<std::int32_t>(k) * n + c);
  if (ev.is_request_done) {
    prompt.done = true;
  } else if (prompt_finished && !st.answered) {
    // Every choice of this prompt may have ended on stop strings before the scheduler's own
    // finish: free its blocks now instead of generating text nobody will see.
    send_cancel(self, static_cast<std::size_t>(k));
  }
  if (!st.answered && st.response->all_finished()) complete(self);
  if (prompt.done && !prompt_finished && !st.answered) {
    // The scheduler promised a terminal event per choice before is_request_done.
    fail(self, net::internal_error("the request ended without a finish"));
    cancel_all(self);
  }
  quit_if_idle(self);
}

void on_submit_reply(request_self self, std::size_t k, const caf::error* refusal) {
  auto& st = self->state;
  auto& p = st.prompts[k];
  p.replied = true;
  if (refusal) {
    // One refused prompt fails the whole request, with the status a lone request would get.
    st.refused = true;
    fail(self, to_api_error(*refusal, 0));
    cancel_all(self);
  } else {
    p.accepted = true;
    ++st.num_accepted;
    if (st.client_gone || st.timed_out || st.answered) send_cancel(self, k);
    else if (st.num_accepted == st.prompts.size()) start_stream(self);
  }
  quit_if_idle(self);
}

caf::behavior request_actor(request_self self, request_context ctx) {
  auto& st = self->state;
  st.ctx = std::make_unique<request_context>(std::move(ctx));
  TROUPE_ASSERT(!st.ctx->requests.empty());
  TROUPE_ASSERT(st.ctx->response.num_prompts == static_cast<std::int32_t>(st.ctx->requests.size()));
  st.response = std::make_unique<net::openai_response>(st.ctx->response);
  st.prompts.resize(st.ctx->requests.size());
  for (std::int32_t i = 0; i < st.ctx->response.num_choices(); ++i)
    st.detok.emplace_back(st.ctx->tok, !st.ctx->skip_special_tokens);
  // The session calls back on an io thread; hold only a weak address so a finished exchange
  // does not keep this actor alive.
  st.ctx->exchange->on_disconnect([addr = self->address()] {
    if (auto h = caf::actor_cast<caf::actor>(addr)) caf::anon_send(h, closed_atom::value);
  });
  auto sink = caf::actor_cast<token_sink_actor>(self);
  for (std::size_t k = 0; k < st.ctx->requests.size(); ++k) {
    self->request(st.ctx->scheduler, caf::infinite, submit_atom::value, st.ctx->requests[k], sink)
        .then([self, k](uint64_t) { on_submit_reply(self, k, nullptr); },
              [self, k](caf::error& e) { on_submit_reply(self, k, &e); });
  }
  if (st.ctx->timeout.count() > 0) self->delayed_send(self, st.ctx->timeout, timeout_atom::value);
  return {
      [self](token_atom, token_event& ev) { on_event(self, ev); },
      [self](closed_atom) {
        self->state.client_gone = true;
        cancel_all(self);
      },
      [self](timeout_atom) {
        if (self->state.answered) return;
        self->state.timed_out = true;
        cancel_all(self);  // the scheduler ends every choice with `cancelled` -> "abort"
      },
  };
}

}  // namespace

caf::actor spawn_request_actor(caf::actor_system& sys, request_context ctx) {
  return sys.spawn(request_actor, std::move(ctx));
}

}  // namespace troupe::actors
