// troupe serve [--model PATH] [--host H] [--port P] [--config FILE]: the OpenAI-compatible HTTP
// server over the actor runtime. Defaults: the default model on 127.0.0.1:8000. The config file
// (TOML, see examples/topologies/default.toml) holds server, scheduler, KV and stage settings;
// flags override it; unknown keys and bad values stop the start with a message naming them
// (exit 1). The HTTP port opens first and /health answers 503 until the model is loaded.
// SIGINT/SIGTERM: new requests get 503 (connections are still accepted), in-flight requests
// finish within shutdown_timeout_s, the rest are cut (streams get an error event), exit 0.
// Past the supervisor's restart intensity (a stage that keeps dying): the same stop, with the
// reason logged, and exit 1. [faults] keys are flags too (--faults.crash_every_steps N, ...):
// fault injection for recovery tests, off by default.
#include <caf/all.hpp>
#include <fmt/format.h>
#include <pthread.h>

#include <condition_variable>
#include <csignal>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include <unistd.h>

#include "actors/fault_injector.hpp"
#include "actors/supervisor_actor.hpp"
#include "cli/commands.hpp"
#include "frontend/serve_backend.hpp"
#include "frontend/system_fingerprint.hpp"
#include "cli/serve_config.hpp"
#include "cli/serve_executor.hpp"
#include "logging/log.hpp"
#include "engine/draft_model.hpp"
#include "memory/llama_model_file.hpp"
#include "net/http_server.hpp"
#include "tokenizer/tokenizer.hpp"

namespace troupe::cli {
namespace {

using frontend::prompt_worker_config;
using frontend::serve_backend;
using frontend::serve_runtime;

struct serve_options {
  std::optional<std::string> model;
  std::optional<std::string> host;
  std::optional<int> port;
  std::optional<std::string> arithmetic;
  bool parse_special_tokens_in_messages = false;
  std::optional<std::string> log_level;
  std::optional<std::string> speculative_model;
  std::string config;
  // [faults] keys as flags (--faults.crash_every_steps ...), over the config file.
  std::optional<std::int32_t> crash_every_steps, hang_every_steps, hang_ms, poison_token;
  std::optional<std::uint64_t> fault_seed;
};

// The supervisor gave up (restart intensity exceeded): why, for the exit message.
std::mutex give_up_mu;
std::string give_up_reason;

void say(const std::string& s) { std::fprintf(stderr, "troupe serve: %s\n", s.c_str()); }

// The speculative model: loaded, checked to share the target's vocabulary, and refused when
// drafting is off (it would never run). Errors name the file.
result<std::shared_ptr<const llama_model_file>> load_draft_model(const std::string& path,
                                                                 const llama_model_file& target,
                                                                 std::int32_t num_draft_tokens) {
  if (num_draft_tokens == 0)
    return error{fmt::format("speculative model {}: scheduler.num_speculative_tokens is 0, so it "
                             "would never run; set it to the drafts per step (e.g. 4)",
                             path)};
  auto d = load_llama_model(path);
  if (!d) return error{fmt::format("speculative model {}: {}", path, d.message())};
  if (auto st = engine::check_same_vocabulary(target, *d, path); !st) return st.err();
  return std::make_shared<const llama_model_file>(std::move(*d));
}

result<engine::chat_template> load_chat_template(const gguf_file& file, const tokenizer& tok,
                                                 const std::string& family) {
  std::string_view text;
  if (auto* v = file.find("tokenizer.chat_template"))
    if (auto s = v->as_string()) text = *s;
  auto special = [&](int32_t id) {
    return id >= 0 ? std::string(tok.token_piece(id, true)) : std::string();
  };
  if (!family.empty()) {
    auto f = engine::parse_chat_family(family);
    if (!f) return f.err();
    return engine::chat_template::for_family(*f, text, special(tok.bos_id()), special(tok.eos_id()));
  }
  if (text.empty())
    return error{"the model has no tokenizer.chat_template; set model.chat_template in the config"};
  return engine::chat_template::detect(text, special(tok.bos_id()), special(tok.eos_id()));
}

int run_serve(const serve_options& o) {
  serve_config cfg;
  if (!o.config.empty()) {
    auto loaded = load_serve_config(o.config);
    if (!loaded) {
      say(loaded.message());
      return 1;
    }
    cfg = std::move(*loaded);
  }
  if (o.model) cfg.model_path = *o.model;
  if (o.host) cfg.http.host = *o.host;
  if (o.arithmetic) {
    auto a = engine::parse_arithmetic(*o.arithmetic);
    if (!a) {
      say(fmt::format("--arithmetic {}: must be one of {}", *o.arithmetic,
                      engine::arithmetic_names));
      return 1;
    }
    cfg.arithmetic = *a;
  }
  if (o.speculative_model) cfg.speculative_model = *o.speculative_model;
  if (o.parse_special_tokens_in_messages) cfg.parse_special_tokens_in_messages = true;
  if (o.log_level) cfg.log_level = *o.log_level;
  if (logging::level lvl; logging::parse_level(cfg.log_level, lvl)) {
    logging::set_level(lvl);
  } else {
    say(fmt::format("--log-level {}: must be one of debug, info, warn, error, off", cfg.log_level));
    return 1;
  }
  if (o.crash_every_steps) cfg.faults.crash_every_steps = *o.crash_every_steps;
  if (o.hang_every_steps) cfg.faults.hang_every_steps = *o.hang_every_steps;
  if (o.hang_ms) cfg.faults.hang_ms = *o.hang_ms;
  if (o.poison_token) cfg.faults.poison_token = *o.poison_token;
  if (o.fault_seed) cfg.faults.seed = *o.fault_seed;
  if (o.port) {
    if (*o.port < 0 || *o.port > 65535) {
      say(fmt::format("--port {}: must be in [0, 65535]", *o.port));
      return 1;
    }
    cfg.http.port = static_cast<std::uint16_t>(*o.port);
  }
  if (auto st = validate(cfg); !st) {
    say(st.message());
    return 1;
  }

  // Signals are taken synchronously by this thread (sigwait); block them before any other
  // thread starts so that every thread inherits the mask.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  sigaddset(&signals, SIGUSR1);  // raised by the supervisor when it gives up
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);

  // The file (mmap) and tokenizer are cheap to open and define the model card.
  auto loaded = load_llama_model(cfg.model_path);
  if (!loaded) {
    say(loaded.message() + (std::filesystem::exists(cfg.model_path) ? "" : " (run `make model`)"));
    return 1;
  }
  auto model = std::make_shared<const llama_model_file>(std::move(*loaded));
  auto tok = tokenizer::from_gguf(model->file);
  if (!tok) {
    say(tok.message());
    return 1;
  }
  auto chat = load_chat_template(model->file, *tok, cfg.chat_template);
  if (!chat) {
    say(chat.message());
    return 1;
  }
  auto& sched = cfg.scheduler;
  std::shared_ptr<const llama_model_file> draft;
  if (!cfg.speculative_model.empty()) {
    auto d = load_draft_model(cfg.speculative_model, *model, sched.num_speculative_tokens);
    if (!d) {
      say(d.message());
      return 1;
    }
    draft = std::move(*d);
    sched.has_draft_model = true;
  }
  if (model->hparams.n_ctx_train > 0 && sched.max_model_len > model->hparams.n_ctx_train)
    sched.max_model_len = static_cast<std::int32_t>(model->hparams.n_ctx_train);
  sched.eos_token_ids.clear();  // the ids that end a generation; ignore_eos bans the same ones
  for (std::int32_t id = 0; id < tok->n_vocab(); ++id)
    if (tok->is_end_of_generation(id)) sched.eos_token_ids.push_back(id);

  frontend::model_card card;
  card.id = cfg.served_model_name.empty()
                ? std::filesystem::path(cfg.model_path).stem().string()
                : cfg.served_model_name;
  card.max_model_len = sched.max_model_len;
  card.system_fingerprint = frontend::make_system_fingerprint(
      "/proc/self/exe", cfg.model_path, engine::arithmetic_name(cfg.arithmetic));
  card.created = std::chrono::duration_cast<std::chrono::seconds>(
                     std::chrono::system_clock::now().time_since_epoch())
                     .count();

  caf::actor_system_config sys_cfg;
  // Few CAF threads: the executor computes on its own (detached) thread and kernel pool.
  sys_cfg.set("scheduler.max-threads", 2);
  // One shared queue whose idle workers block on a condition variable, instead of CAF's
  // default work stealing, whose idle workers poll their queues -- ~30 ms of 50 us sleeps
  // after every job. A step's result wakes them every 30-100 ms, so under load they never
  // stopped polling: at 32 streams 9-14 % of the server's CPU time (mostly system time), taken
  // from the two compute threads on 2 cores (BENCHMARKS.md, "Where a 32-stream step's time
  // goes"). The actors here handle a few messages per step: one queue is no bottleneck.
  sys_cfg.set("scheduler.policy", caf::atom("sharing"));
  auto metrics = std::make_shared<net::server_metrics>();
  // Declared before the actor system: the system is destroyed first, so every request actor
  // (which holds an HTTP exchange) is gone before the server and its io_context.
  std::unique_ptr<net::http_server> server;
  caf::actor_system sys{sys_cfg};
  auto backend = std::make_shared<serve_backend>(
      sys, metrics, card,
      prompt_worker_config{.num_threads = cfg.tokenizer_threads,
                           .max_num_waiting = cfg.max_num_waiting_tokenizations});
  auto router =
      frontend::make_openai_router(backend, {.ignore_unknown_fields = cfg.ignore_unknown_fields});
  server = std::make_unique<net::http_server>(cfg.http, std::move(router), [metrics](int status) {
    metrics->count_response(status);
  });
  if (auto st = server->start(); !st) {
    say(st.message());
    return 1;
  }
  say(fmt::format("listening on http://{}:{} (model {}, /health is 503 until it is loaded)",
                  cfg.http.host, server->port(), card.id));

  actors::supervisor_config sup_cfg;
  sup_cfg.max_restarts = cfg.max_restarts;
  sup_cfg.restart_window = std::chrono::seconds(cfg.restart_window_s);
  sup_cfg.step_timeout = std::chrono::milliseconds(cfg.step_timeout_ms);
  // A stage that keeps dying is not served on: stop (the requests it failed got their error
  // first) and exit non-zero, so that whatever runs the server sees it.
  sup_cfg.on_give_up = [](const std::string& why) {
    {
      std::lock_guard lock(give_up_mu);
      give_up_reason = why;
    }
    kill(getpid(), SIGUSR1);
  };
  auto factory = make_executor_factory(model, cfg, sched.eos_token_ids, draft);
  if (!factory) {
    say(factory.message());
    server->stop();
    return 1;
  }
  auto fault_counters = std::make_shared<actors::fault_counters>();
  if (cfg.faults.is_enabled())
    say(fmt::format("FAULT INJECTION ON: crash_every_steps {}, hang_every_steps {} (hang_ms {}), "
                    "poison_token {}, seed {}",
                    cfg.faults.crash_every_steps, cfg.faults.hang_every_steps, cfg.faults.hang_ms,
                    cfg.faults.poison_token, cfg.faults.seed));
  auto topo = actors::spawn_topology(
      sys, sched, sup_cfg, actors::inject_faults(std::move(*factory), cfg.faults, fault_counters));
  auto rt = std::make_shared<serve_runtime>(serve_runtime{
      .tok = *tok,
      .chat = *chat,
      .card = card,
      .limits = {.vocab_size = tok->n_vocab(),
                 .max_model_len = sched.max_model_len,
                 .max_num_seqs = sched.max_num_seqs,
                 .max_kv_tokens_per_seq =
                     static_cast<std::int64_t>(sched.num_kv_blocks) * sched.block_size},
      .scheduler = topo.scheduler,
      .supervisor = topo.supervisor,
      .max_num_waiting_requests = sched.max_num_waiting_requests,
      .request_timeout_s = cfg.request_timeout_s,
      .parse_special_tokens_in_messages = cfg.parse_special_tokens_in_messages,
      .faults = fault_counters,
      .ready_stall_ms = cfg.ready_stall_ms,
  });
  backend->set_runtime(rt);
  say(fmt::format("ready: {} ({} KV blocks of {} tokens, max_model_len {})", card.id,
                  sched.num_kv_blocks, sched.block_size, sched.max_model_len));

  int sig = 0;
  sigwait(&signals, &sig);
  const bool gave_up = sig == SIGUSR1;
  if (gave_up) {
    std::lock_guard lock(give_up_mu);
    say(fmt::format("the model executor failed too often, stopping with status 1: {}",
                    give_up_reason));
  } else {
    say(fmt::format("{}: stopping (in-flight requests get {} s)",
                    sig == SIGINT ? "SIGINT" : "SIGTERM", cfg.shutdown_timeout_s));
  }
  // If something wedges (an executor stuck in a kernel never lets the actor system finish), do
  // not hang forever: give up loudly, with a failure status, well after the deadline.
  std::mutex done_mu;
  std::condition_variable done_cv;
  bool done = false;
  std::thread watchdog([&, limit = std::chrono::seconds(cfg.shutdown_timeout_s + 15)] {
    std::unique_lock lock(done_mu);
    if (!done_cv.wait_for(lock, limit, [&] { return done; })) {
      say("shutdown did not finish in time (a stage is not answering); exiting with status 1");
      std::_Exit(1);
    }
  });
  // Keep accepting: a client connecting now gets a 503 it can act on (Retry-After, another
  // replica) instead of a refused connection; /ready turns 503 with the rest.
  backend->begin_drain();
  server->begin_drain();
  {
    caf::scoped_actor self{sys};
    bool drained = false;
    self->request(topo.scheduler, std::chrono::seconds(std::max(1, cfg.shutdown_timeout_s)),
                  actors::drain_atom::value)
        .receive([&](caf::ok_atom) { drained = true; }, [&](caf::error&) {});
    if (!drained) {
      say("deadline passed: cancelling the requests still running");
      self->send(topo.scheduler, actors::abort_atom::value);
    }
    // Let the last answers reach their clients (the exchanges write on the io thread).
    for (int i = 0; i < 200 && server->num_open_exchanges() > 0; ++i)
      std::this_thread::sleep_for(std::chrono::milliseconds(10));
    self->send_exit(topo.supervisor, caf::exit_reason::user_shutdown);
  }
  rt.reset();
  backend->set_runtime(nullptr);
  backend->stop();  // no request actor is spawned after this
  sys.await_all_actors_done();
  server->stop();
  {
    std::lock_guard lock(done_mu);
    done = true;
  }
  done_cv.notify_one();
  watchdog.join();
  say("stopped");
  return gave_up ? 1 : 0;
}

}  // namespace

command add_serve_command(CLI::App& root) {
  auto opts = std::make_shared<serve_options>();
  auto* app = root.add_subcommand("serve", "serve the OpenAI-compatible HTTP API");
  app->add_option("--model", opts->model, "GGUF model file (default: the default model)");
  app->add_option("--host", opts->host, "address to listen on (default 127.0.0.1)");
  app->add_option("--port", opts->port, "port to listen on (default 8000; 0: any free port)");
  app->add_option("--config", opts->config, "TOML config (examples/topologies/default.toml)");
  app->add_option("--faults.crash_every_steps", opts->crash_every_steps,
                  "fault injection: a stage fails its step every N steps (0: off)");
  app->add_option("--faults.hang_every_steps", opts->hang_every_steps,
                  "fault injection: a stage's step blocks for --faults.hang_ms every N steps");
  app->add_option("--faults.hang_ms", opts->hang_ms, "fault injection: how long a hang lasts");
  app->add_option("--faults.poison_token", opts->poison_token,
                  "fault injection: a step computing this token id fails (-1: off)");
  app->add_option("--faults.seed", opts->fault_seed, "fault injection: the schedule's jitter");
  app->add_flag("--parse-special-tokens-in-messages", opts->parse_special_tokens_in_messages,
                "chat message text may hold special tokens (trusted clients only; sets "
                "server.parse_special_tokens_in_messages)");
  app->add_option("--log-level", opts->log_level,
                  "debug, info (default), warn, error or off (overrides server.log_level)");
  app->add_option("--speculative-model", opts->speculative_model,
                  "a draft model's GGUF with the model's vocabulary: speculative decoding "
                  "proposes with it when prompt lookup finds nothing (overrides "
                  "scheduler.speculative_model)");
  app->add_option("--arithmetic", opts->arithmetic,
                  "fast (default), llama.cpp-exact or fp32-reference (overrides engine.arithmetic)");
  return {app, [opts] { return run_serve(*opts); }};
}

}  // namespace troupe::cli
