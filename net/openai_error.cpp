#include "net/openai_error.hpp"

#include <fmt/format.h>

#include "net/json_writer.hpp"

namespace troupe::net {

std::string api_error::to_json() const {
  json_writer w;
  w.begin_object().key("error").begin_object();
  w.field("message", message).field("type", type);
  w.key("param");
  if (param.empty()) w.null(); else w.value(param);
  w.key("code");
  if (code.empty()) w.null(); else w.value(code);
  w.end_object().end_object();
  return w.take();
}

api_error invalid_parameter(std::string param, std::string message) {
  return {400, std::move(message), "invalid_request_error", std::move(param), "invalid_value"};
}

api_error unrecognized_arguments(const std::vector<std::string>& names) {
  // Joined by hand: fmt::join trips GCC 12's -Wstringop-overflow at -O3 (a false positive).
  std::string msg = names.size() > 1 ? "Unrecognized request arguments supplied: "
                                     : "Unrecognized request argument supplied: ";
  for (std::size_t i = 0; i < names.size(); ++i) msg += (i ? ", " : "") + names[i];
  return {400, std::move(msg), "invalid_request_error", "", ""};
}

api_error invalid_json(std::string message) {
  return {400, "invalid JSON body: " + message, "invalid_request_error", "", "invalid_json"};
}

api_error model_not_found(const std::string& model) {
  return {404, fmt::format("The model `{}` does not exist.", model), "invalid_request_error",
          "model", "model_not_found"};
}

api_error route_not_found(const std::string& method, const std::string& target) {
  return {404, fmt::format("no route for {} {}", method, target), "not_found_error", "",
          "not_found"};
}

api_error method_not_allowed(const std::string& method, const std::string& target) {
  return {405, fmt::format("method {} is not allowed for {}", method, target),
          "invalid_request_error", "", "method_not_allowed"};
}

api_error body_too_large(std::size_t limit_bytes) {
  return {413, fmt::format("request body exceeds the limit of {} bytes", limit_bytes),
          "invalid_request_error", "", "request_too_large"};
}

api_error uri_too_long(std::size_t limit_bytes) {
  return {414, fmt::format("the request target (URI) exceeds the limit of {} bytes", limit_bytes),
          "invalid_request_error", "", "uri_too_long"};
}

api_error unsupported_media_type(const std::string& content_type) {
  return {415,
          fmt::format("Content-Type '{}' is not supported here; send the body as "
                      "application/json",
                      content_type),
          "invalid_request_error", "", "unsupported_media_type"};
}

api_error headers_too_large(std::size_t limit_bytes) {
  return {431, fmt::format("the request's header section exceeds the limit of {} bytes",
                           limit_bytes),
          "invalid_request_error", "", "headers_too_large"};
}

api_error missing_host() {
  return {400, "an HTTP/1.1 request must have a Host header", "invalid_request_error", "",
          "missing_host"};
}

api_error queue_full(std::size_t bound) {
  return {429, fmt::format("the server's queue is full ({} requests waiting); retry later", bound),
          "rate_limit_error", "", "queue_full"};
}

api_error unavailable(std::string message) {
  return {503, std::move(message), "server_error", "", "unavailable"};
}

api_error too_many_connections() {
  return {503, "too many open connections; retry later", "server_error", "",
          "too_many_connections"};
}

api_error shutting_down(std::string message) {
  return {503, std::move(message), "server_error", "", "shutting_down"};
}

api_error internal_error(std::string message) {
  return {500, std::move(message), "server_error", "", "internal_error"};
}

}  // namespace troupe::net
