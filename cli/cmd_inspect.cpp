// troupe inspect FILE [--json]: what a GGUF file holds. (Filled in by the GGUF work.)
#include "cli/commands.hpp"
#include <cstdio>
namespace troupe::cli {
command add_inspect_command(CLI::App& root) {
  auto* app = root.add_subcommand("inspect", "describe a GGUF model file");
  return {app, [] { std::fprintf(stderr, "troupe inspect: not implemented yet\n"); return 1; }};
}
}  // namespace troupe::cli
