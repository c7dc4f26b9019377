#include "frontend/openai_router.hpp"

#include "logging/log.hpp"
#include "net/json_writer.hpp"

namespace troupe::frontend {

using namespace troupe::net;

void respond_error(http_exchange& ex, const api_error& e) {
  ex.respond_json(e.http_status, e.to_json());
}

void serving_backend::ready(std::shared_ptr<http_exchange> ex) {
  if (is_draining()) return respond_error(*ex, unavailable("the server is shutting down"));
  if (!is_ready()) return respond_error(*ex, unavailable("the model is still loading"));
  ex->respond(200, "text/plain", "");
}

namespace {

// A request refused before it reaches the backend: one log line with its id (never its body).
void reject(http_exchange& ex, const api_error& e) {
  logging::info("request.rejected", {{"request_id", ex.request_id()},
                                     {"status", e.http_status},
                                     {"param", e.param},
                                     {"code", e.code}});
  respond_error(ex, e);
}

void write_model(json_writer& w, const model_card& m) {
  w.begin_object()
      .field("id", m.id)
      .field("object", "model")
      .field("created", m.created)
      .field("owned_by", "troupe")
      .field("root", m.id)  // vLLM puts the model's path here; a path is ours, not the client's
      .key("parent").null()
      .field("max_model_len", m.max_model_len)
      .end_object();
}

std::string models_json(const model_card& m) {
  json_writer w;
  w.begin_object().field("object", "list").key("data").begin_array();
  write_model(w, m);
  w.end_array().end_object();
  return w.take();
}

// GET /v1/models/{id}: the model object itself (OpenAI's retrieve).
std::string model_json(const model_card& m) {
  json_writer w;
  write_model(w, m);
  return w.take();
}

constexpr std::string_view models_prefix = "/v1/models/";

// Clients name the model by its served name; empty means "the one". The file's path is not a
// name: accepting it would confirm where the model lives on disk (issue 10).
bool is_served_model(const std::string& name, const model_card& m) {
  return name.empty() || name == m.id;
}

struct route {
  const char* path;
  const char* method;
};
constexpr route routes[] = {
    {"/v1/models", "GET"},  {"/v1/completions", "POST"}, {"/v1/chat/completions", "POST"},
    {"/tokenize", "POST"},  {"/detokenize", "POST"},     {"/health", "GET"},
    {"/metrics", "GET"},    {"/ready", "GET"},
};

// Media type of a Content-Type value ("application/json; charset=utf-8" -> "application/json"),
// lower-cased, without spaces.
std::string media_type(std::string_view content_type) {
  std::string out;
  for (char c : content_type.substr(0, content_type.find(';'))) {
    if (c == ' ' || c == '\t') continue;
    out += static_cast<char>(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
  }
  return out;
}

bool is_json_or_unstated(const std::string& content_type) {
  return content_type.empty() || media_type(content_type) == "application/json";
}

}  // namespace

request_handler make_openai_router(std::shared_ptr<serving_backend> backend,
                                   parse_options options) {
  return [backend, options](http_request req, std::shared_ptr<http_exchange> ex) {
    std::string path = req.path;
    if (path.size() > 1 && path.back() == '/') path.pop_back();
    // GET /v1/models/{id}: one route whatever the id (ids may hold '/', as "org/name" does).
    if (path.size() > models_prefix.size() && path.starts_with(models_prefix)) {
      if (req.method != "GET") return reject(*ex, method_not_allowed(req.method, req.path));
      if (backend->is_draining())
        return respond_error(*ex, shutting_down("the server is shutting down; retry later"));
      if (!backend->is_ready()) return respond_error(*ex, unavailable("the model is still loading"));
      auto card = backend->model();
      const std::string id = path.substr(models_prefix.size());
      if (id != card.id) return reject(*ex, model_not_found(id));
      return ex->respond_json(200, model_json(card));
    }
    const route* found = nullptr;
    bool path_known = false;
    for (const auto& r : routes) {
      if (path != r.path) continue;
      path_known = true;
      if (req.method == r.method) found = &r;
    }
    if (!found) {
      return reject(*ex, path_known ? method_not_allowed(req.method, req.path)
                                    : route_not_found(req.method, req.path));
    }
    const std::string_view p = found->path;
    if (p == "/ready") return backend->ready(std::move(ex));  // says draining itself
    if (backend->is_draining() && p != "/health" && p != "/metrics")
      return respond_error(*ex, shutting_down("the server is shutting down; retry later"));
    if (std::string_view{found->method} == "POST" && !is_json_or_unstated(req.content_type))
      return respond_error(*ex, unsupported_media_type(req.content_type));
    if (p == "/health") {
      if (backend->is_ready()) return ex->respond(200, "text/plain", "");
      return respond_error(*ex, unavailable("the model is still loading"));
    }
    if (p == "/metrics") return backend->metrics(std::move(ex));
    if (!backend->is_ready()) return respond_error(*ex, unavailable("the model is still loading"));
    auto card = backend->model();
    if (p == "/v1/models") return ex->respond_json(200, models_json(card));
    if (p == "/v1/completions" || p == "/v1/chat/completions") {
      auto parsed = p == "/v1/completions" ? parse_completion_request(req.body, options)
                                           : parse_chat_request(req.body, options);
      if (!parsed.ok()) return reject(*ex, parsed.error);
      if (!is_served_model(parsed.value->model, card))
        return reject(*ex, model_not_found(parsed.value->model));
      return backend->generate(std::move(*parsed.value), std::move(ex));
    }
    if (p == "/tokenize") {
      auto parsed = parse_tokenize_request(req.body);
      if (!parsed.ok()) return reject(*ex, parsed.error);
      if (!is_served_model(parsed.value->model, card))
        return reject(*ex, model_not_found(parsed.value->model));
      return backend->tokenize(std::move(*parsed.value), std::move(ex));
    }
    auto parsed = parse_detokenize_request(req.body);
    if (!parsed.ok()) return reject(*ex, parsed.error);
    if (!is_served_model(parsed.value->model, card))
      return reject(*ex, model_not_found(parsed.value->model));
    return backend->detokenize(std::move(*parsed.value), std::move(ex));
  };
}

}  // namespace troupe::frontend
