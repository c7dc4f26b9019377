// serve_backend: the runtime behind the OpenAI routes (frontend/openai_router.hpp) in `troupe
// serve`. It templates and tokenizes a parsed request (chat template for /v1/chat/completions),
// hands it to the one validation (frontend/request_validation.hpp: model- and server-dependent
// checks, defaults -> 400 naming the parameter), spawns one request actor per validated
// generation and answers /tokenize, /detokenize and /metrics (asking the scheduler and supervisor
// for their counters).
//
// Message content is tokenized as plain text: only the chat template's own markers become
// special tokens (engine/chat_prompt.hpp), unless the deployment trusts its clients
// (server.parse_special_tokens_in_messages). /v1/completions prompts and /tokenize prompts are
// raw prompts written by the client, tokenized with special tokens recognised, as llama-server
// and vLLM do.
//
// Threading: every serving_backend method runs on an io thread and never blocks: generation and
// /metrics go through actors; templating and tokenizing a request whose text is larger than
// inline_prompt_max_bytes run on a bounded_worker (a 4 MB prompt takes ~1 s), smaller ones
// inline (about a millisecond at most, and they never wait behind a huge one). A full worker queue
// answers 429. The runtime is attached once with set_runtime() after the model loaded; until
// then is_ready() is false. stop() before the actor system goes away.
#pragma once

#include <caf/actor_system.hpp>

#include <atomic>
#include <functional>
#include <memory>
#include <mutex>

#include "actors/fault_injector.hpp"
#include "actors/scheduler_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "frontend/bounded_worker.hpp"
#include "frontend/request_validation.hpp"
#include "engine/chat_template.hpp"
#include "frontend/openai_router.hpp"
#include "net/server_metrics.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::frontend {

struct serve_runtime {
  tokenizer tok;
  engine::chat_template chat;
  model_card card;
  server_limits limits;  // what a request must fit (validate_generation)
  actors::scheduler_actor scheduler;
  actors::supervisor_actor supervisor;
  std::int32_t max_num_waiting_requests = 0;
  std::int32_t request_timeout_s = 0;
  // true: special-token text inside chat messages becomes special tokens (trusted clients only).
  bool parse_special_tokens_in_messages = false;
  std::shared_ptr<const actors::fault_counters> faults;  // never null (zeros when off)
  std::int32_t ready_stall_ms = 5000;                    // GET /ready: 503 past this stall
};

// The bounded_worker that templates and tokenizes large requests off the io threads.
struct prompt_worker_config {
  std::int32_t num_threads = 1;
  std::int32_t max_num_waiting = 64;  // beyond this, large requests get 429
};

// Requests whose text (prompts or message contents) is at most this many bytes are tokenized
// on the io thread (~1 ms at the tokenizer's ~3.5 MB/s on this machine's Zen 4 core).
inline constexpr std::size_t inline_prompt_max_bytes = 4 * 1024;

class serve_backend : public serving_backend {
 public:
  serve_backend(caf::actor_system& sys, std::shared_ptr<net::server_metrics> metrics,
                model_card card, prompt_worker_config worker = {});

  // Makes the backend ready. Thread: any, once.
  void set_runtime(std::shared_ptr<const serve_runtime> rt);

  // SIGTERM/SIGINT: from now on new requests get 503 while the accepted ones finish. Thread: any.
  void begin_drain() { draining_ = true; }

  bool is_ready() const override;
  bool is_draining() const override { return draining_.load(); }
  model_card model() const override;
  void generate(generation_request req, std::shared_ptr<net::http_exchange> ex) override;
  void tokenize(tokenize_request req, std::shared_ptr<net::http_exchange> ex) override;
  void detokenize(detokenize_request req, std::shared_ptr<net::http_exchange> ex) override;
  void metrics(std::shared_ptr<net::http_exchange> ex) override;
  // GET /ready (cli/serve_readiness.cpp): 503 while draining, failed, or stalled with work.
  void ready(std::shared_ptr<net::http_exchange> ex) override;

  // Drops the queued large requests (their clients get 500) and joins the worker. Thread: not
  // an io thread; call before the actor system is destroyed.
  void stop();

 private:
  std::shared_ptr<const serve_runtime> runtime() const;
  void generate_now(const serve_runtime& rt, generation_request& req,
                    std::shared_ptr<net::http_exchange> ex);
  void tokenize_now(const serve_runtime& rt, const tokenize_request& req,
                    net::http_exchange& ex);
  // Runs `job` inline when `text_bytes` is small, else on the worker; 429 when its queue is full.
  void run_sized(std::size_t text_bytes, std::shared_ptr<net::http_exchange> ex,
                 std::function<void()> job);

  caf::actor_system& sys_;
  std::shared_ptr<net::server_metrics> metrics_;
  model_card card_;
  mutable std::mutex mu_;
  std::shared_ptr<const serve_runtime> rt_;
  std::atomic<std::uint64_t> next_request_id_{1};
  std::atomic<bool> draining_{false};
  bounded_worker worker_;
};

}  // namespace troupe::frontend
