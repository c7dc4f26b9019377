// request actor: one per HTTP generation request. It submits the tokenized request to the
// scheduler -- one generate_request per prompt (a /v1/completions prompt batch has several) --
// and turns the scheduler's token_events into the OpenAI response (detokenization with one
// streaming_detokenizer per choice, stop strings, usage, finish_reason, logprobs, n choices per
// prompt, choice index = prompt index * n + choice) and writes it to the HTTP exchange -- as SSE
// frames ending with `data: [DONE]` when streaming.
//
// Messages it handles
//   (token_atom, token_event)   from the scheduler (it is the requests' token_sink_actor)
//   (closed_atom)               from net/: the client disconnected -> cancel the requests
//   (timeout_atom)              its own deadline (request_context::timeout) -> cancel
// It sends (submit_atom, ...) once per prompt at start and (cancel_atom, id) for a prompt when
// the client is gone, every choice of that prompt ended on a stop string, another prompt's
// submit was refused, or the deadline passed.
//
// Failure: a refused submit becomes the matching HTTP error (500 invalid_request, 429
// queue_full, 503 shutting_down/unavailable) and cancels the prompts already accepted; a
// terminal `error` event becomes a 500 (or an error event in the stream); a `cancelled` event
// the actor did not ask for (the scheduler's abort at the shutdown deadline) becomes a 503
// shutting_down error (in a stream: an error event, then [DONE]). A stream starts (200)
// only once every prompt was accepted. The actor quits once every submit was answered and every
// accepted request had its is_request_done event, so the exchange is answered exactly once.
// Threading: a pooled CAF actor; it never blocks (the exchange posts onto the Asio strand).
#pragma once

#include <caf/actor.hpp>
#include <caf/actor_system.hpp>

#include <chrono>
#include <memory>
#include <vector>

#include "actors/messages.hpp"
#include "actors/scheduler_actor.hpp"
#include "net/openai_response.hpp"  // response_options: the shape of the answer it writes
#include "tokenizer/tokenizer.hpp"

// The HTTP side is reached through pointers only; request_actor.cpp includes the definitions.
namespace troupe::net {
struct api_error;
class http_exchange;
class server_metrics;
}  // namespace troupe::net

namespace troupe::actors {

struct request_context {
  // One per prompt, in prompt order; request_ids unique among active requests. Each has
  // n == response.n; response.num_prompts == requests.size().
  std::vector<generate_request> requests;
  net::response_options response;      // shapes, stop strings, n, echo texts
  tokenizer tok;                       // detokenization and logprob token texts
  bool skip_special_tokens = true;
  std::shared_ptr<net::http_exchange> exchange;
  std::shared_ptr<net::server_metrics> metrics;  // may be null
  scheduler_actor scheduler;
  std::chrono::milliseconds timeout{0};  // 0: none
  std::string request_id;  // the exchange's x-request-id, on this request's log lines
};

// Spawns the actor; it starts by submitting. Thread: any (io threads call it).
caf::actor spawn_request_actor(caf::actor_system& sys, request_context ctx);

// Maps a refused submit to the HTTP error sent to the client.
net::api_error to_api_error(const caf::error& e, std::size_t max_waiting);

}  // namespace troupe::actors
