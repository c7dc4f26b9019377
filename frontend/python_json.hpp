// python_json: JSON text as Python's json.dumps(x, ensure_ascii=False) writes it -- what the
// Hugging Face chat templates' `tojson` filter puts into a prompt (", " and ": " separators,
// keys in the given order, non-ASCII as is). Tool definitions and the arguments of fed-back tool
// calls are rendered with it, so that the prompt reads as the model saw it in training.
// Numbers are simdjson's shortest round-trip text, which matched Python's on the forms checked
// (1.0, 1e+16, 0.1, 1.5e-07, 2^64-ish integers) but is not proven equal for every double.
// Pure; any thread.
#pragma once

#include <simdjson.h>

#include <string>

namespace troupe::frontend {

std::string python_json_dumps(simdjson::dom::element v);

}  // namespace troupe::frontend
