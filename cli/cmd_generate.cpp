// troupe generate --model PATH --prompt TEXT [--chat] [--chat-template NAME] [--system TEXT]
//   [--max-tokens N] [--temperature T] [--top-p P] [--top-k K] [--min-p P] [--seed S]
//   [--threads N] [--ignore-eos]
//
// Prints ONLY the generated text on stdout, streamed and flushed as it is produced, so the output
// can be piped and compared; timing goes to stderr. Scripts outside the repository rely on this.
//
// Defaults: temperature 0, i.e. greedy and deterministic (llama.cpp's CLI defaults to 0.8; we
// prefer output that is reproducible without a seed -- pass --temperature to sample). With a
// temperature and no --seed, a random seed is drawn and printed on stderr so a run can be
// repeated. --chat renders the prompt as one user message with the model's chat template
// (tokenizer.chat_template); a template troupe cannot render is an error unless --chat-template
// names a family. Errors (file, template, parameters) go to stderr with exit status 1.
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "cli/commands.hpp"
#include "engine/chat_template.hpp"
#include "engine/fast_weights.hpp"
#include "engine/generator.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::cli {
namespace {

struct generate_options {
  std::string model = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string prompt;
  bool chat = false;
  std::string chat_template;  // a family name; empty = detect from the file
  std::string system;         // --chat only: a system message before the user's
  int max_tokens = 256;
  float temperature = 0.0f;
  float top_p = 1.0f;
  int top_k = 0;
  float min_p = 0.0f;
  long long seed = -1;        // < 0: random
  int threads = 0;            // 0: all cores
  bool ignore_eos = false;    // keep generating past end-of-generation tokens (benchmarks)
  std::string arithmetic = "fast";  // engine/arithmetic.hpp
};

int fail(const std::string& message) {
  std::fprintf(stderr, "troupe generate: %s\n", message.c_str());
  return 1;
}

// The prompt text to tokenize: the user's text, or the chat template applied to it.
result<std::string> build_prompt(const generate_options& o, const gguf_file& file,
                                 const tokenizer& tok) {
  if (!o.chat) return o.prompt;
  std::string template_text;
  if (const gguf_value* v = file.find("tokenizer.chat_template"))
    if (auto s = v->as_string()) template_text = std::string(*s);
  auto special = [&](int32_t id) {
    return id >= 0 ? tok.decode(std::span<const int32_t>(&id, 1), true) : std::string();
  };
  const std::string bos = special(tok.bos_id()), eos = special(tok.eos_id());
  std::vector<engine::chat_message> messages;
  if (!o.system.empty()) messages.push_back({"system", o.system});
  messages.push_back({"user", o.prompt});
  if (!o.chat_template.empty()) {
    auto family = engine::parse_chat_family(o.chat_template);
    if (!family.ok()) return family.err();
    return engine::chat_template::for_family(*family, template_text, bos, eos)
        .render(messages, true);
  }
  if (template_text.empty())
    return error{o.model + " has no tokenizer.chat_template; pass --chat-template NAME"};
  auto tpl = engine::chat_template::detect(template_text, bos, eos);
  if (!tpl.ok()) return tpl.err();
  return tpl->render(messages, true);
}

int run_generate(const generate_options& o) {
  engine::model_options mopts;
  if (auto a = engine::parse_arithmetic(o.arithmetic))
    mopts.mode = *a;
  else
    return fail("--arithmetic " + o.arithmetic + ": must be one of " +
                std::string(engine::arithmetic_names));
  auto model = load_llama_model(o.model);
  if (!model.ok()) return fail(model.message());
  if (mopts.mode == engine::arithmetic::fast) {
    auto packed = engine::fast_weights::pack(
        model.value(), {0, static_cast<int32_t>(model->hparams.n_layer)});
    if (!packed.ok()) return fail(o.model + ": " + packed.message());
    mopts.packed = std::move(*packed);
  }
  auto tok = tokenizer::from_gguf(model->file);
  if (!tok.ok()) return fail(tok.message());
  auto text = build_prompt(o, model->file, tok.value());
  if (!text.ok()) return fail(text.message());

  engine::generation_request req;
  // A template that already starts with the BOS text carries its own BOS: do not add another.
  const int32_t bos = tok->bos_id();
  const bool has_bos_text =
      bos >= 0 && text->starts_with(tok->decode(std::span<const int32_t>(&bos, 1), true));
  req.prompt = tok->encode(*text, /*add_special=*/!(o.chat && has_bos_text),
                           /*parse_special=*/true);
  req.max_tokens = o.max_tokens;
  req.sampling.temperature = o.temperature;
  req.sampling.top_p = o.top_p;
  req.sampling.top_k = o.top_k;
  req.sampling.min_p = o.min_p;
  req.sampling.ignore_eos = o.ignore_eos;
  if (o.seed >= 0) {
    req.sampling.seed = static_cast<uint64_t>(o.seed);
  } else {
    req.sampling.seed = engine::random_seed();
    if (!req.sampling.is_greedy())
      std::fprintf(stderr, "seed: %llu\n", static_cast<unsigned long long>(req.sampling.seed));
  }

  kernels::thread_pool pool(o.threads);
  engine::generator gen(model.value(), tok.value(), pool, std::move(mopts));
  auto res = gen.generate(req, [](std::string_view piece) {
    std::fwrite(piece.data(), 1, piece.size(), stdout);
    std::fflush(stdout);
  });
  if (!res.ok()) return fail(res.message());
  std::fputc('\n', stdout);
  std::fflush(stdout);
  const auto& r = res.value();
  std::fprintf(stderr,
               "prompt: %lld tokens in %.3f s (%.1f tok/s); decode: %lld tokens in %.3f s "
               "(%.1f tok/s); generated %zu tokens, finish: %s; threads %d\n",
               static_cast<long long>(r.prompt_tokens), r.prompt_seconds,
               r.prompt_seconds > 0 ? r.prompt_tokens / r.prompt_seconds : 0.0,
               static_cast<long long>(r.decode_steps), r.decode_seconds,
               r.decode_seconds > 0 ? r.decode_steps / r.decode_seconds : 0.0, r.tokens.size(),
               r.finish_reason.c_str(), pool.num_threads());
  return 0;
}

}  // namespace

command add_generate_command(CLI::App& root) {
  auto o = std::make_shared<generate_options>();
  auto* app = root.add_subcommand("generate", "generate text from a prompt (text on stdout)");
  app->add_option("--model", o->model, "GGUF model file")->capture_default_str();
  app->add_option("--prompt", o->prompt, "the prompt text")->required();
  app->add_flag("--chat", o->chat, "apply the model's chat template to the prompt");
  app->add_option("--arithmetic", o->arithmetic,
                  "fast (default: 16-bit activations on the matrix units), llama.cpp-exact "
                  "(llama.cpp's arithmetic bit for bit) or fp32-reference (slow yardstick)")
      ->capture_default_str();
  app->add_option("--chat-template", o->chat_template,
                  "chat template family: chatml, llama-3, llama-2, mistral, gemma, phi-3");
  app->add_option("--system", o->system, "with --chat: a system message");
  app->add_option("--max-tokens", o->max_tokens, "tokens to generate at most")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app->add_option("--temperature", o->temperature, "0 = greedy")
      ->capture_default_str()->check(CLI::NonNegativeNumber);
  app->add_option("--top-p", o->top_p, "nucleus sampling mass, (0, 1]")->capture_default_str();
  app->add_option("--top-k", o->top_k, "keep the k most likely tokens; 0 = off")
      ->capture_default_str();
  app->add_option("--min-p", o->min_p, "keep tokens with p >= min_p * p_max; 0 = off")
      ->capture_default_str();
  app->add_option("--seed", o->seed, "sampling seed (default: random, printed on stderr)");
  app->add_option("--threads", o->threads, "compute threads (default: all cores)")
      ->check(CLI::NonNegativeNumber);
  app->add_flag("--ignore-eos", o->ignore_eos,
                "never stop at end-of-generation tokens: generate exactly --max-tokens");
  return {app, [o] { return run_generate(*o); }};
}

}  // namespace troupe::cli
