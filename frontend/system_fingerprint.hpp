// system_fingerprint: the `system_fingerprint` of every completion (OpenAI: "the backend
// configuration that the model runs with"; with a fixed seed, the same fingerprint is how a
// client knows the same request may give the same tokens). Ours changes exactly when one of what
// decides the tokens changes: the troupe build (the executable's bytes), the model (the file's
// size and its first and last MiB: header, metadata, and the tail of the tensors -- cheap for a
// multi-GB file), and the arithmetic (engine/arithmetic.hpp).
// Called once at start-up by `troupe serve`; any thread.
#pragma once

#include <string>
#include <string_view>

namespace troupe::frontend {

// "fp_" + 16 hex digits. A file that cannot be read contributes its path instead (the
// fingerprint stays stable; it only says less).
std::string make_system_fingerprint(const std::string& executable_path,
                                    const std::string& model_path, std::string_view arithmetic);

}  // namespace troupe::frontend
