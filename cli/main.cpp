// troupe: one binary, many subcommands (inspect, tokenize; generate, serve, bench, worker later).
#include <cstdio>
#include <vector>

#include "cli/commands.hpp"

int main(int argc, char** argv) {
  CLI::App root{"troupe: an actor-based LLM serving runtime"};
  root.require_subcommand(1);
  std::vector<troupe::cli::command> commands = {
      troupe::cli::add_inspect_command(root),
      troupe::cli::add_tokenize_command(root),
      troupe::cli::add_bench_command(root),
      troupe::cli::add_serve_command(root),
      troupe::cli::add_generate_command(root),
  };
  try {
    root.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return root.exit(e);
  }
  for (auto& c : commands)
    if (c.app->parsed()) return c.run();
  return 2;
}
