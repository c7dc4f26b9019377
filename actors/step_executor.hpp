// step_executor: runs one pipeline stage's share of a step_plan -- or the whole step when it is
// the only stage -- and, on the last stage, samples. The executor actor wraps one; tests use a
// fake model, production wraps the engine (engine_step_executor).
//
// Stages: a step goes through stages 0..P-1 in order. Stage 0 starts from the plan's tokens,
// every later stage from the hidden states the previous one produced for the same plan; the
// last stage returns the step_result. A single stage does it all (run_step).
//
// Contract: run_step / run_stage are called from one thread at a time (the executor actor's),
// in plan order. An error means the device/model failed; it makes the executor actor exit
// abnormally, so the supervisor restarts it and the scheduler replays the sequences
// (recompute from prompt + emitted tokens). Per-sequence state follows step_plan.hpp: created
// on is_new, dropped on freed_seq_ids -- on every stage.
#pragma once

#include <utility>

#include "actors/step_plan.hpp"
#include "troupe/result.hpp"

namespace troupe::actors {

// What one stage produced: hidden states for the next stage, or (is_final) the step's samples.
struct stage_output {
  bool is_final = false;
  hidden_states hidden;  // when !is_final
  step_result result;    // when is_final
};

class step_executor {
 public:
  virtual ~step_executor() = default;

  // The whole step: one sample per scheduled sequence with do_sample. Only for an executor that
  // is the only stage (the others return an error).
  virtual result<step_result> run_step(const step_plan& plan) = 0;

  // This stage's share of the step. `in`: the previous stage's hidden states (empty on stage
  // 0). The default serves single-stage executors: it needs an empty `in` and runs run_step.
  virtual result<stage_output> run_stage(const step_plan& plan, const hidden_states& in) {
    if (!in.data.empty()) return error{"a single-stage executor got hidden states"};
    auto r = run_step(plan);
    if (!r) return r.err();
    stage_output out;
    out.is_final = true;
    out.result = std::move(r).value();
    return out;
  }

  // The supervisor gave up on this stage while a step ran past its deadline (a hang): a step
  // that can notice (an injected hang) should return an error at once, without computing; the
  // executor is never used again. Called from another thread (the supervisor's), at most once.
  // The default does nothing: a step stuck in a kernel keeps its thread until it returns.
  virtual void abandon() {}
};

}  // namespace troupe::actors
