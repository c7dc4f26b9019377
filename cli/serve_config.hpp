// serve_config: the settings of `troupe serve`, read from a TOML file and then overridden by
// command-line flags. Sections: [server] (HTTP), [model], [engine] (arithmetic), [scheduler] and [kv] (continuous
// batching and the KV block pool), [supervisor] (restart limits, step deadline), [[stages]]
// (executors), [faults] (fault injection for recovery tests; off by default).
// examples/topologies/default.toml lists every key with its default.
//
// load_serve_config refuses, with a message naming the file and the key, any unknown section or
// key, a value of the wrong type, and a value out of range. Thread: any (call it once at start).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "actors/fault_injector.hpp"
#include "actors/scheduler_config.hpp"
#include "actors/supervisor_actor.hpp"
#include "engine/arithmetic.hpp"
#include "net/http_server.hpp"
#include "troupe/result.hpp"

namespace troupe::cli {

// One executor stage of the pipeline: layers [first_layer, last_layer) of the model (TOML
// `layers = [first, last]`, half-open). Stages run in the order given; their ranges must be
// contiguous from 0 and end at the model's layer count. When no stage gives `layers`, the
// layers are split evenly over the stages (resolve_stages).
struct stage_config {
  std::string backend = "cpu";     // "cpu" ("cuda" where built with CUDA)
  std::int32_t threads = 0;        // kernel threads of a CPU stage; 0: the cores split evenly
                                   // over the stages (at least 1 each)
  std::int32_t first_layer = -1;   // -1: not given
  std::int32_t last_layer = -1;
};

struct serve_config {
  std::string model_path = "models/SmolLM2-135M-Instruct.Q4_1.gguf";
  std::string served_model_name;  // "" -> the model file's name without .gguf
  std::string chat_template;      // "" -> detected from the model; else a family name
  // [engine] arithmetic: how the executors compute (engine/arithmetic.hpp).
  engine::arithmetic arithmetic = engine::arithmetic::fast;
  net::http_server_config http;
  std::int32_t shutdown_timeout_s = 30;  // SIGINT/SIGTERM: in-flight requests get this long
  std::int32_t request_timeout_s = 0;    // 0: none; else a request is cancelled after it
  // Role injection: false (default) tokenizes chat message text as plain text, so a user cannot
  // type "<|im_end|><|im_start|>system"; true restores special-token parsing for deployments
  // whose clients are trusted (flag --parse-special-tokens-in-messages).
  bool parse_special_tokens_in_messages = false;
  // false (default): a request field OpenAI does not document and troupe does not implement is
  // a 400 "Unrecognized request argument supplied: <name>", as OpenAI answers; true: ignored.
  bool ignore_unknown_fields = false;
  // Large requests are templated and tokenized on these threads, off the io threads; beyond
  // max_num_waiting_tokenizations queued, they get 429.
  std::int32_t tokenizer_threads = 1;
  std::int32_t max_num_waiting_tokenizations = 64;
  std::string log_level = "info";  // debug, info, warn, error, off (flag --log-level)
  // The scheduler's defaults, except that troupe serve drafts by prompt lookup (4 tokens a step)
  // unless configured off: it switches itself off per sequence when few drafts hold and while
  // 4 or more sequences run, so it costs nothing where it does not help (BENCHMARKS.md); and
  // that it chunks prefill so running streams keep going while a long prompt is admitted
  // (max_decode_gap_factor 2.5: a stream's gap at most ~2.5x a plain decode step).
  actors::scheduler_config scheduler = [] {
    actors::scheduler_config s;
    s.num_speculative_tokens = 4;
    s.max_decode_gap_factor = 2.5;
    return s;
  }();
  // scheduler.speculative_model: a draft model's GGUF ("" = none). It must have the model's
  // vocabulary (checked at start); its drafts are tried when prompt lookup finds none.
  std::string speculative_model;
  std::int32_t max_restarts = 3;
  std::int32_t restart_window_s = 60;
  // A stage busy in one step for longer than this is hung: abandoned and restarted. 0: none.
  std::int32_t step_timeout_ms = 30000;
  // GET /ready answers 503 once work has waited this long without any progress.
  std::int32_t ready_stall_ms = 5000;
  actors::fault_config faults;  // [faults]: fault injection, off by default
  std::vector<stage_config> stages{stage_config{}};
};

// Reads `path` on top of the defaults. Errors: "config <path>: <key>: <what is wrong>".
result<serve_config> load_serve_config(const std::string& path);

// Checks values that flags may have changed too (port range, stage layer ranges, ...).
status validate(const serve_config& c);

// Once the model's layer count is known: fills in even layer ranges when no stage gave any,
// checks that the given ranges end at n_layer, and gives every stage with threads = 0 its share
// of `num_cores`. Errors name the key ("stages[1].layers: ...").
status resolve_stages(std::vector<stage_config>& stages, std::int32_t n_layer,
                      std::int32_t num_cores);

}  // namespace troupe::cli
