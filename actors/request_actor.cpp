#include "actors/request_actor.hpp"

#include <caf/all.hpp>
#include <fmt/format.h>

#include "net/sse.hpp"
#include "tokenizer/streaming_detokenizer.hpp"

namespace troupe::actors {

using clock = std::chrono::steady_clock;

net::api_error to_api_error(const caf::error& e, std::size_t max_waiting) {
  auto code = to_submit_error(e);
  auto msg = submit_error_message(e);
  if (!code) return net::internal_error("the scheduler did not accept the request: " + to_string(e));
  switch (*code) {
    case submit_error::invalid_request: {
      // The scheduler's message names the parameter first ("max_tokens: ...") when it can.
      std::string param = msg.find("max_tokens") != std::string::npos ? "max_tokens"
                          : msg.find("prompt") != std::string::npos ? "prompt"
                          : msg.find(" n ") != std::string::npos   ? "n"
                                                                    : "";
      return net::invalid_parameter(param, msg);
    }
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

struct request_state {
  std::unique_ptr<request_context> ctx;  // a pointer: the tokenizer has no default constructor
  std::unique_ptr<net::openai_response> response;
  std::vector<streaming_detokenizer> detok;  // one per choice
  bool accepted = false;       // the scheduler took it (events will follow)
  bool cancel_sent = false;
  bool client_gone = false;
  bool answered = false;       // the exchange got its full answer
  clock::time_point start = clock::now();
  clock::time_point last_token{};
  bool has_first_token = false;
  std::string finish_for_metrics = "stop";
  static inline const char* name = "request_actor";
};

using request_self = caf::stateful_actor<request_state>*;

void send_cancel(request_self self) {
  auto& st = self->state;
  if (st.cancel_sent || !st.accepted) return;
  st.cancel_sent = true;
  self->send(st.ctx->scheduler, cancel_atom::value, st.ctx->request.request_id);
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
  if (st.client_gone) return;
  if (st.ctx->response.stream) {
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
  if (st.client_gone) return;
  if (st.ctx->response.stream && st.accepted) {
    // Headers (200) are out already: report in-band, as vLLM does, then end the stream.
    st.ctx->exchange->send_chunk(net::sse_event(e.to_json()));
    st.ctx->exchange->send_chunk(std::string(net::sse_done));
    st.ctx->exchange->end_stream();
  } else {
    st.ctx->exchange->respond_json(e.http_status, e.to_json());
  }
}

void on_event(request_self self, token_event& ev) {
  auto& st = self->state;
  if (ev.choice_index < 0 || ev.choice_index >= st.ctx->response.n) return;
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
  auto& detok = st.detok[static_cast<std::size_t>(ev.choice_index)];
  std::string frames;
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
    frames += st.response->add_tokens(ev.choice_index, outs);
  }
  if (ev.finish != finish_reason::none && !st.answered) {
    if (ev.finish == finish_reason::error) {
      fail(self, net::internal_error("generation failed: " + ev.error_message));
    } else {
      const char* reason = ev.finish == finish_reason::stop     ? "stop"
                           : ev.finish == finish_reason::length ? "length"
                                                                : "abort";
      if (ev.choice_index == 0) st.finish_for_metrics = reason;
      frames += st.response->finish_choice(ev.choice_index, reason, detok.finish());
    }
  }
  if (!frames.empty() && !st.client_gone && st.ctx->response.stream && !st.answered)
    st.ctx->exchange->send_chunk(std::move(frames));
  if (!st.answered && st.response->all_finished()) {
    // All choices may have ended on stop strings before the scheduler's own finish: free the
    // blocks now instead of generating text nobody will see.
    if (!ev.is_request_done) send_cancel(self);
    complete(self);
  }
  if (ev.is_request_done) {
    if (!st.answered) fail(self, net::internal_error("the request ended without a finish"));
    self->quit();
  }
}

caf::behavior request_actor(request_self self, request_context ctx) {
  auto& st = self->state;
  st.ctx = std::make_unique<request_context>(std::move(ctx));
  st.response = std::make_unique<net::openai_response>(st.ctx->response);
  for (std::int32_t i = 0; i < st.ctx->response.n; ++i)
    st.detok.emplace_back(st.ctx->tok, !st.ctx->skip_special_tokens);
  // The session calls back on an io thread; hold only a weak address so a finished exchange
  // does not keep this actor alive.
  st.ctx->exchange->on_disconnect([addr = self->address()] {
    if (auto h = caf::actor_cast<caf::actor>(addr)) caf::anon_send(h, closed_atom::value);
  });
  auto sink = caf::actor_cast<token_sink_actor>(self);
  self->request(st.ctx->scheduler, caf::infinite, submit_atom::value, st.ctx->request, sink)
      .then(
          [self](uint64_t) {
            auto& s = self->state;
            s.accepted = true;
            if (s.client_gone) return send_cancel(self);
            if (s.ctx->response.stream) {
              s.ctx->exchange->start_stream(200, net::sse_content_type);
              auto first = s.response->begin();
              if (!first.empty()) s.ctx->exchange->send_chunk(std::move(first));
            }
          },
          [self](caf::error& e) {
            fail(self, to_api_error(e, 0));
            self->quit();
          });
  if (st.ctx->timeout.count() > 0) self->delayed_send(self, st.ctx->timeout, timeout_atom::value);
  return {
      [self](token_atom, token_event& ev) { on_event(self, ev); },
      [self](closed_atom) {
        self->state.client_gone = true;
        send_cancel(self);
      },
      [self](timeout_atom) {
        auto& s = self->state;
        if (s.answered) return;
        send_cancel(self);  // the scheduler ends every choice with `cancelled` -> "abort"
      },
  };
}

}  // namespace

caf::actor spawn_request_actor(caf::actor_system& sys, request_context ctx) {
  return sys.spawn(request_actor, std::move(ctx));
}

}  // namespace troupe::actors
