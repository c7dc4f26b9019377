// openai_router: maps HTTP requests to the serving backend. It owns routing (404/405), the
// parsing and validation of bodies (400 naming the parameter), the model check (404), /health
// and /v1/models; everything that needs the model or the runtime goes to the serving_backend.
// The POST routes take JSON: a body sent with another Content-Type gets 415 (none at all is
// taken as JSON, as curl -d users expect of an OpenAI server). While the backend drains, every
// route but /health and /metrics answers 503 (code shutting_down).
//
// Routes: GET /v1/models, GET /v1/models/{id} (404 model_not_found for another id),
// POST /v1/completions, POST /v1/chat/completions, POST /tokenize,
// POST /detokenize, GET /health, GET /ready, GET /metrics.
#pragma once

#include <cstdint>
#include <memory>
#include <string>

#include "net/http_server.hpp"
#include "frontend/openai_request.hpp"

namespace troupe::frontend {

using net::http_exchange;
using net::http_request;
using net::request_handler;

struct model_card {
  std::string id;          // the name clients pass as "model"
  std::int32_t max_model_len = 0;
  std::int64_t created = 0;  // unix seconds
  // Changes when the build, the model file or the arithmetic changes (system_fingerprint.hpp).
  std::string system_fingerprint;
};

// The runtime behind the routes. Every method is called on an io thread and must not block;
// the exchange must be answered exactly once (possibly later, from another thread).
class serving_backend {
 public:
  virtual ~serving_backend() = default;
  virtual bool is_ready() const = 0;  // model loaded, topology up (/health)
  // Shutting down: in-flight work drains, new work gets 503 (/health and /metrics still answer).
  virtual bool is_draining() const { return false; }
  virtual model_card model() const = 0;
  virtual void generate(generation_request req, std::shared_ptr<http_exchange> ex) = 0;
  virtual void tokenize(tokenize_request req, std::shared_ptr<http_exchange> ex) = 0;
  virtual void detokenize(detokenize_request req, std::shared_ptr<http_exchange> ex) = 0;
  virtual void metrics(std::shared_ptr<http_exchange> ex) = 0;
  // GET /ready: can this replica take traffic now (not draining, making progress)? /health
  // stays liveness. The default: 200 when is_ready() and not draining, else 503.
  virtual void ready(std::shared_ptr<http_exchange> ex);
};

// The request_handler for http_server. Holds the backend by shared_ptr; `options` is how bodies
// are parsed (server.ignore_unknown_fields).
request_handler make_openai_router(std::shared_ptr<serving_backend> backend,
                                   parse_options options = {});

// Sends e as the JSON error body with its status.
void respond_error(http_exchange& ex, const api_error& e);

}  // namespace troupe::frontend
