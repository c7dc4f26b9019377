// request actor: one per HTTP generation request. It submits the tokenized request to the
// scheduler, turns the scheduler's token_events into the OpenAI response (detokenization with
// one streaming_detokenizer per choice, stop strings, usage, finish_reason, logprobs, n choices)
// and writes it to the HTTP exchange -- as SSE frames ending with `data: [DONE]` when streaming.
//
// Messages it handles
//   (token_atom, token_event)   from the scheduler (it is the request's token_sink_actor)
//   (closed_atom)               from net/: the client disconnected -> cancel the request
//   (timeout_atom)              its own deadline (request_context::timeout) -> cancel
// It sends (submit_atom, ...) once at start and (cancel_atom, id) when the client is gone, every
// choice ended on a stop string, or the deadline passed.
//
// Failure: a refused submit becomes the matching HTTP error (400 invalid_request, 429
// queue_full, 503 shutting_down/unavailable); a terminal `error` event becomes a 500 (or an
// error event in the stream). The actor quits after the scheduler's is_request_done event (or
// at once when the submit was refused), so the exchange is always answered exactly once.
// Threading: a pooled CAF actor; it never blocks (the exchange posts onto the Asio strand).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>

#include "actors/messages.hpp"
#include "actors/scheduler_actor.hpp"
#include "net/http_server.hpp"
#include "net/openai_response.hpp"
#include "net/server_metrics.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::actors {

struct request_context {
  generate_request request;            // request_id unique among active requests
  net::response_options response;      // shapes, stop strings, n, echo text
  tokenizer tok;                       // detokenization and logprob token texts
  bool skip_special_tokens = true;
  std::shared_ptr<net::http_exchange> exchange;
  std::shared_ptr<net::server_metrics> metrics;  // may be null
  scheduler_actor scheduler;
  std::chrono::milliseconds timeout{0};  // 0: none
};

// Spawns the actor; it starts by submitting. Thread: any (io threads call it).
caf::actor spawn_request_actor(caf::actor_system& sys, request_context ctx);

// Maps a refused submit to the HTTP error sent to the client.
net::api_error to_api_error(const caf::error& e, std::size_t max_waiting);

}  // namespace troupe::actors
