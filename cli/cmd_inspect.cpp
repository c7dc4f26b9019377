// troupe inspect FILE [--json]: what a GGUF file holds -- architecture, hyperparameters,
// tokenizer, metadata and a tensor table. Works on any valid GGUF (runnable or not); a file that
// is not valid GGUF gets its error (file name and fault) on stderr and exit status 1.
#include <cstdio>
#include <memory>
#include <string>

#include <fmt/format.h>

#include "cli/commands.hpp"
#include "cli/inspect_json.hpp"
#include "memory/gguf_file.hpp"
#include "memory/gguf_summary.hpp"

namespace troupe::cli {
namespace {

struct inspect_options {
  std::string path;
  bool json = false;
};

std::string human_bytes(uint64_t n) {
  if (n < 1024) return fmt::format("{} B", n);
  if (n < 1024 * 1024) return fmt::format("{:.1f} KiB", n / 1024.0);
  if (n < uint64_t{1} << 30) return fmt::format("{:.1f} MiB", n / (1024.0 * 1024.0));
  return fmt::format("{:.2f} GiB", n / (1024.0 * 1024.0 * 1024.0));
}

// A one-line rendering of a metadata value: long strings are cut, control characters escaped.
std::string short_value(const gguf_value& v) {
  if (const auto* a = v.as_array())
    return fmt::format("[{} x {}]", a->elements.size(), gguf_value_type_name(a->elem_type));
  if (auto s = v.as_string()) {
    constexpr size_t k_max = 60;
    const std::string q = json_quote(s->substr(0, k_max));
    return s->size() > k_max ? fmt::format("{}... ({} bytes)", q, s->size()) : q;
  }
  if (auto b = v.as_bool()) return *b ? "true" : "false";
  if (auto f = v.as_float())  // a float32 prints in float precision: 1e-05, not 9.99...e-06
    return v.type == gguf_value_type::float32 ? fmt::format("{}", static_cast<float>(*f))
                                              : fmt::format("{}", *f);
  if (auto u = v.as_uint()) return fmt::format("{}", *u);
  if (auto i = v.as_int()) return fmt::format("{}", *i);
  return "?";
}

template <class T>
std::string opt(const std::optional<T>& v) {
  if (!v) return "-";
  if constexpr (std::is_same_v<T, std::string>) return json_quote(*v);
  else if constexpr (std::is_same_v<T, bool>) return *v ? "true" : "false";
  else return fmt::format("{}", *v);
}

void print_text(const gguf_file& f, const gguf_summary& s) {
  fmt::print("file          {} ({} bytes, GGUF v{}, alignment {})\n", f.path(), f.file_size(),
             f.version(), f.alignment());
  fmt::print("architecture  {}\n", s.architecture.value_or("-"));
  fmt::print("name          {}\n", s.name ? json_quote(*s.name) : "-");
  if (const auto& h = s.llama) {
    fmt::print("runnable      yes (llama)\n");
    fmt::print("hparams       n_vocab {}  n_ctx_train {}  n_embd {}  n_layer {}  n_ff {}\n"
               "              n_head {}  n_head_kv {}  head_dim {}  n_rot {}  rms_eps {}  "
               "rope_freq_base {}\n",
               h->n_vocab, h->n_ctx_train, h->n_embd, h->n_layer, h->n_ff, h->n_head,
               h->n_head_kv, h->head_dim, h->n_rot, h->rms_eps, h->rope_freq_base);
  } else {
    fmt::print("runnable      no: {}\n", s.llama_error);
  }
  const auto& t = s.tokenizer;
  fmt::print("tokenizer     model {}  pre {}  vocab {}  merges {}\n", opt(t.model), opt(t.pre),
             opt(t.n_tokens), opt(t.n_merges));
  fmt::print("              bos {} {}  eos {} {}  add_bos {}  add_eos {}\n", opt(t.bos_id),
             opt(t.bos_text), opt(t.eos_id), opt(t.eos_text), opt(t.add_bos), opt(t.add_eos));
  fmt::print("chat template {}\n",
             t.chat_template_bytes ? fmt::format("yes ({} bytes)", *t.chat_template_bytes) : "no");

  fmt::print("\nmetadata ({} keys)\n", f.metadata().size());
  for (const auto& kv : f.metadata())
    fmt::print("  {:<44} {:<8} {}\n", kv.key, gguf_value_type_name(kv.value.type),
               short_value(kv.value));

  fmt::print("\ntensors ({}, {})\n", f.tensors().size(), human_bytes(s.tensor_bytes));
  fmt::print("  {:<36} {:<5} {:<22} {:>12}\n", "name", "type", "shape", "bytes");
  for (const auto& ti : f.tensors()) {
    std::string shape = "[";
    for (uint32_t i = 0; i < ti.n_dims; ++i) shape += fmt::format("{}{}", i ? ", " : "", ti.ne[i]);
    fmt::print("  {:<36} {:<5} {:<22} {:>12}\n", ti.name, ggml_type_name(ti.type), shape + "]",
               ti.n_bytes);
  }
}

int run_inspect(const inspect_options& o) {
  // List files with types troupe cannot run too; the summary says why they are not runnable.
  auto f = gguf_file::open(o.path, gguf_open_options{.allow_unsupported_types = true});
  if (!f) {
    std::fprintf(stderr, "troupe inspect: %s\n", f.message().c_str());
    return 1;
  }
  const gguf_summary s = summarize_gguf(*f);
  if (o.json)
    fmt::print("{}\n", inspect_json(*f, s));
  else
    print_text(*f, s);
  return std::fflush(stdout) == 0 ? 0 : 1;
}

}  // namespace

command add_inspect_command(CLI::App& root) {
  auto opts = std::make_shared<inspect_options>();
  auto* app = root.add_subcommand("inspect", "describe a GGUF model file");
  app->add_option("file", opts->path, "path to a .gguf file")->required();
  app->add_flag("--json", opts->json, "print one JSON object instead of text");
  return {app, [opts] { return run_inspect(*opts); }};
}

}  // namespace troupe::cli
