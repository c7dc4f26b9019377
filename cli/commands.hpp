// The troupe binary's subcommands. Each lives in its own cli/cmd_<name>.cpp and exposes one
// add_<name>_command() that registers its options on the CLI11 app and returns the function to
// run when the user picked it. main() owns parsing and exit codes; commands print their own
// errors (naming the file and the fault) and return a process exit status.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>

namespace troupe::cli {

struct command {
  CLI::App* app = nullptr;          // the subcommand, owned by the root app
  std::function<int()> run;         // runs after a successful parse; returns the exit status
};

command add_inspect_command(CLI::App& root);
command add_tokenize_command(CLI::App& root);
command add_bench_command(CLI::App& root);
command add_serve_command(CLI::App& root);
command add_generate_command(CLI::App& root);

}  // namespace troupe::cli
