// troupe tokenize --model PATH --text TEXT: ids as one JSON array. (Filled in by the tokenizer work.)
#include "cli/commands.hpp"
#include <cstdio>
namespace troupe::cli {
command add_tokenize_command(CLI::App& root) {
  auto* app = root.add_subcommand("tokenize", "print the token ids of a text");
  return {app, [] { std::fprintf(stderr, "troupe tokenize: not implemented yet\n"); return 1; }};
}
}  // namespace troupe::cli
