// step_executor: runs one step_plan on a model and samples. The executor actor wraps one; tests
// use a fake model, production wraps the engine (engine_step_executor).
//
// Contract: run_step is called from one thread at a time (the executor actor's), in plan order.
// It returns one sampled_token per scheduled sequence with do_sample, or an error when the
// device/model failed; an error makes the executor actor exit abnormally, so the supervisor
// restarts it and the scheduler replays the sequences (recompute from prompt + emitted tokens).
// Per-sequence state follows step_plan.hpp: created on is_new, dropped on freed_seq_ids.
#pragma once

#include "actors/step_plan.hpp"
#include "troupe/result.hpp"

namespace troupe::actors {

class step_executor {
 public:
  virtual ~step_executor() = default;
  virtual result<step_result> run_step(const step_plan& plan) = 0;
};

}  // namespace troupe::actors
