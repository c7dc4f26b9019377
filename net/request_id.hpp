// request_id: the id that ties a request's log lines to what its client sees (the
// `x-request-id` response header, as nginx, Envoy and vLLM's front ends use it).
//
// A client-sent x-request-id is kept when it is sane -- 1..64 bytes of [A-Za-z0-9._:-] -- so a
// caller can follow its own id through our logs; anything else (too long, spaces, quotes,
// control bytes: header or log injection) is replaced by a fresh id. Fresh ids are 32 hex
// digits (128 random bits), unique without coordination between threads.
//
// Thread-safety: any thread.
#pragma once

#include <string>
#include <string_view>

namespace troupe::net {

inline constexpr std::size_t max_request_id_bytes = 64;

bool is_sane_request_id(std::string_view id);

// `sent` (the client's header; "" when absent) if sane, else a fresh id.
std::string accept_or_make_request_id(std::string_view sent);

std::string make_request_id();

}  // namespace troupe::net
