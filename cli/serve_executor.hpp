// serve_executor: the production step_executor of `troupe serve` -- one CPU stage running the
// whole llama model (engine::llama_model over paged K/V) and the sampler -- and the factory the
// supervisor calls to (re)create it with fresh K/V pages.
//
// Per-sequence state (sampling params, prompt + output token history for penalties and the
// sampler's draw index) follows the step_plan contract: created on is_new (from
// history_token_ids), extended with each step's tokens, dropped on freed_seq_ids.
// Threading: run_step is called by the executor actor's own thread, one step at a time; the
// kernel thread pool is owned by the executor.
#pragma once

#include "actors/supervisor_actor.hpp"
#include "cli/serve_config.hpp"
#include "memory/llama_model_file.hpp"
#include "troupe/result.hpp"

namespace troupe::cli {

// REQUIRES: `model` outlives every executor the factory makes. Errors: the K/V pool for
// cfg.scheduler.num_kv_blocks cannot be allocated (checked once here, with the size).
result<actors::executor_factory> make_executor_factory(const llama_model_file& model,
                                                       const serve_config& cfg);

}  // namespace troupe::cli
