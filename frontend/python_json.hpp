// python_json: JSON text as Python's json.dumps(x, ensure_ascii=False) writes it -- what the
// Hugging Face chat templates' `tojson` filter puts into a prompt (", " and ": " separators,
// keys in the given order, non-ASCII as is). Tool definitions and the arguments of fed-back tool
// calls are rendered with it, so that the prompt reads as the model saw it in training.
// Numbers are written as the client wrote them. Pure; any thread.
#pragma once

#include <simdjson.h>

#include <string>

namespace troupe::frontend {

std::string python_json_dumps(simdjson::dom::element v);

}  // namespace troupe::frontend
