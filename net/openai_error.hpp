// api_error: an OpenAI-style error, {"error":{"message","type","param","code"}}, plus the HTTP
// status it is sent with. Every failure a client can cause becomes one of these (never a 500,
// never a crash); param names the offending request field when there is one.
// Plain value type; safe to copy between threads.
#pragma once

#include <string>
#include <vector>

namespace troupe::net {

struct api_error {
  int http_status = 400;
  std::string message;
  std::string type;    // "invalid_request_error", "not_found_error", ...
  std::string param;   // empty -> null
  std::string code;    // empty -> null

  // The JSON body: {"error":{"message":...,"type":...,"param":...|null,"code":...|null}}
  std::string to_json() const;
};

// 400: a bad value for `param` (message says what is wrong and what is allowed).
api_error invalid_parameter(std::string param, std::string message);
// 400: top-level request fields nobody documents, answered as OpenAI does: "Unrecognized request
// argument supplied: foo" (several: "arguments ... foo, bar"), param and code null.
api_error unrecognized_arguments(const std::vector<std::string>& names);
// 400: the body is not JSON, or not a JSON object.
api_error invalid_json(std::string message);
// 404: the requested model is not served here.
api_error model_not_found(const std::string& model);
// 404: no such route.
api_error route_not_found(const std::string& method, const std::string& target);
// 405: the route exists but not for this method.
api_error method_not_allowed(const std::string& method, const std::string& target);
// 413: the body is larger than the configured limit.
api_error body_too_large(std::size_t limit_bytes);
// 414: the request target is longer than the server reads.
api_error uri_too_long(std::size_t limit_bytes);
// 415: a JSON endpoint got a body of another content type.
api_error unsupported_media_type(const std::string& content_type);
// 431: the header section is larger than the server reads.
api_error headers_too_large(std::size_t limit_bytes);
// 400: an HTTP/1.1 request without a Host header.
api_error missing_host();
// 429: the waiting queue is at its configured bound.
api_error queue_full(std::size_t bound);
// 503: not ready (model loading) or shutting down.
api_error unavailable(std::string message);
// 503: more connections are open than server.max_connections.
api_error too_many_connections();
// 503: the server is draining after SIGTERM/SIGINT (new requests), or cut a request at its
// shutdown deadline.
api_error shutting_down(std::string message);
// 500: a failure of ours, not the client's (e.g. an engine error); message says what broke.
api_error internal_error(std::string message);

}  // namespace troupe::net
