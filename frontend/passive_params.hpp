// passive_params: the OpenAI (and vLLM) request parameters troupe does not act on. Each is
// either a documented no-op -- accepted when its value has the documented type, and ignored
// because it changes nothing here (`metadata`, `store`, `service_tier`, `prompt_cache_key`: the
// prefix cache is automatic...) -- or refused with a 400 naming it unless it holds its "off"
// value (null, "", false, ["text"]) because honouring it would change the answer (`audio`,
// `prediction`, `suffix`...). docs/PARAMETERS.md lists every parameter with its status.
// The parser (frontend/openai_request.cpp) hands each the parameter's raw JSON.
// Plain functions; callable from any thread.
#pragma once

#include <optional>
#include <string_view>

#include "frontend/openai_request.hpp"

namespace troupe::frontend {

enum class passive_kind { no_op, refused };

struct passive_param {
  std::string_view name;
  passive_kind kind;
  bool on_chat = true;
  bool on_completions = false;
};

// The entry for `name` on that endpoint, or nullptr.
const passive_param* find_passive_param(std::string_view name, endpoint_kind kind);

// Checks `raw_json` (the value as sent) for p: nothing when accepted, else the 400 naming it.
std::optional<api_error> read_passive_param(const passive_param& p, std::string_view raw_json);

}  // namespace troupe::frontend
