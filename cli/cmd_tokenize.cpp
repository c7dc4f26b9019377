// troupe tokenize --model PATH --text TEXT [--no-special]: the token ids of TEXT as one JSON
// array on stdout ("[504,3575,282]" and a newline; scripts outside the repository rely on this
// exact form). BOS/EOS are added as the model file's add_bos_token/add_eos_token say;
// --no-special reads special-token text such as "<|im_start|>" as plain text. A missing or
// malformed file, or a tokenizer we cannot run, is reported on stderr (naming the file): exit 1.
#include <cstdio>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "memory/gguf_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::cli {
namespace {

struct tokenize_options {
  std::string model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string text;
  bool no_special = false;
};

int run_tokenize(const tokenize_options& o) {
  auto file = gguf_file::open(o.model);
  if (!file) {
    std::fprintf(stderr, "troupe tokenize: %s\n", file.message().c_str());
    return 1;
  }
  auto tok = tokenizer::from_gguf(file.value());
  if (!tok) {
    std::fprintf(stderr, "troupe tokenize: %s\n", tok.message().c_str());
    return 1;
  }
  const auto ids = tok->encode(o.text, /*add_special=*/true, /*parse_special=*/!o.no_special);
  std::string out = "[";
  for (size_t i = 0; i < ids.size(); ++i) {
    if (i) out += ',';
    out += std::to_string(ids[i]);
  }
  out += "]\n";
  std::fwrite(out.data(), 1, out.size(), stdout);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

command add_tokenize_command(CLI::App& root) {
  auto opts = std::make_shared<tokenize_options>();
  auto* app = root.add_subcommand("tokenize", "print the token ids of a text as one JSON array");
  app->add_option("--model", opts->model, "GGUF model file")->capture_default_str();
  app->add_option("--text", opts->text, "the text to tokenize")->required();
  app->add_flag("--no-special", opts->no_special,
                "treat special-token text (e.g. <|im_start|>) as plain text");
  return {app, [opts] { return run_tokenize(*opts); }};
}

}  // namespace troupe::cli
