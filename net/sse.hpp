// Server-Sent Events framing for OpenAI streaming: each event is one `data:` field carrying a JSON
// object, and the stream ends with `data: [DONE]`. Pure functions; any thread.
#pragma once

#include <string>
#include <string_view>

namespace troupe::net {

// One SSE event for payload. A payload with line breaks is split into several `data:` lines (the
// SSE spec joins them back with '\n'); our JSON never has raw line breaks, but text might.
std::string sse_event(std::string_view payload);

// The terminating event OpenAI clients wait for.
inline constexpr std::string_view sse_done = "data: [DONE]\n\n";

// Content-Type of an SSE response.
inline constexpr std::string_view sse_content_type = "text/event-stream";

}  // namespace troupe::net
