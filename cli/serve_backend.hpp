// serve_backend: the runtime behind net/'s OpenAI routes in `troupe serve`. It tokenizes
// (chat template for /v1/chat/completions), applies the model-dependent checks (token ids in the
// vocabulary, prompt + max_tokens within max_model_len -> 400 naming the parameter), fills the
// defaults (max_tokens, seed), spawns one request actor per generation and answers /tokenize,
// /detokenize and /metrics (asking the scheduler and supervisor for their counters).
//
// Threading: every serving_backend method runs on an io thread and never blocks: generation and
// /metrics go through actors, tokenization runs inline (microseconds for a prompt). The runtime
// is attached once with set_runtime() after the model loaded; until then is_ready() is false.
#pragma once

#include <caf/actor_system.hpp>

#include <atomic>
#include <memory>
#include <mutex>

#include "actors/scheduler_actor.hpp"
#include "actors/supervisor_actor.hpp"
#include "engine/chat_template.hpp"
#include "net/openai_router.hpp"
#include "net/server_metrics.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::cli {

struct serve_runtime {
  tokenizer tok;
  engine::chat_template chat;
  net::model_card card;
  actors::scheduler_actor scheduler;
  actors::supervisor_actor supervisor;
  std::int32_t max_num_waiting_requests = 0;
  std::int32_t request_timeout_s = 0;
};

class serve_backend : public net::serving_backend {
 public:
  serve_backend(caf::actor_system& sys, std::shared_ptr<net::server_metrics> metrics,
                net::model_card card);

  // Makes the backend ready. Thread: any, once.
  void set_runtime(std::shared_ptr<const serve_runtime> rt);

  // SIGTERM/SIGINT: from now on new requests get 503 while the accepted ones finish. Thread: any.
  void begin_drain() { draining_ = true; }

  bool is_ready() const override;
  bool is_draining() const override { return draining_.load(); }
  net::model_card model() const override;
  void generate(net::generation_request req, std::shared_ptr<net::http_exchange> ex) override;
  void tokenize(net::tokenize_request req, std::shared_ptr<net::http_exchange> ex) override;
  void detokenize(net::detokenize_request req, std::shared_ptr<net::http_exchange> ex) override;
  void metrics(std::shared_ptr<net::http_exchange> ex) override;

 private:
  std::shared_ptr<const serve_runtime> runtime() const;

  caf::actor_system& sys_;
  std::shared_ptr<net::server_metrics> metrics_;
  net::model_card card_;
  mutable std::mutex mu_;
  std::shared_ptr<const serve_runtime> rt_;
  std::atomic<std::uint64_t> next_request_id_{1};
  std::atomic<bool> draining_{false};
};

}  // namespace troupe::cli
