// fault_injector: makes pipeline stages fail on purpose, so that the recovery contract
// (supervisor restart, scheduler replay, poison quarantine, step deadline) can be shown in a
// running server and not only with fake stages (issue 10). Off by default; when off, nothing is
// wrapped and a step costs exactly what it did.
//
// Faults, per stage incarnation (a restarted stage counts its steps from zero again):
//   crash_every_steps = N   the stage fails its step (an error: the executor actor dies, the
//                           supervisor restarts it) after N + j clean steps, j drawn from
//                           [0, N/4] by `seed`; then again after the next such interval.
//   hang_every_steps = N    the step blocks for hang_ms before running, on the same schedule;
//                           a hang that outlives the supervisor's step deadline is abandoned
//                           (abandon() ends it at once with an error, without computing).
//   poison_token = ID       a step whose plan computes token ID (a prompt token, or any token
//                           a sequence recomputes) fails, every time: a deterministic poison
//                           request, which the scheduler retries once alone and then ends.
// Every fault is counted (num_faults_injected_total, for /metrics) and logged as one line.
//
// Thread-safety: one fault_injector is shared by the factory (supervisor thread), every stage's
// executor thread and /metrics readers: the counters are atomics, the schedule of one stage
// incarnation lives in its own wrapper.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>

#include "actors/supervisor_actor.hpp"

namespace troupe::actors {

// The [faults] section of the serve config (cli/serve_config.cpp). 0 / -1: that fault is off.
struct fault_config {
  int32_t crash_every_steps = 0;
  int32_t hang_every_steps = 0;
  int32_t hang_ms = 0;
  int32_t poison_token = -1;
  uint64_t seed = 0;
  bool is_enabled() const {
    return crash_every_steps > 0 || hang_every_steps > 0 || poison_token >= 0;
  }
};

struct fault_counters {
  std::atomic<uint64_t> num_faults_injected_total{0};
  std::atomic<uint64_t> num_stage_incarnations{0};  // seeds each incarnation's schedule
};

// Wraps every stage the factory makes in a fault-injecting step_executor. Returns `stages`
// unchanged when !cfg.is_enabled() (nothing is added to the step path). `counters` must
// outlive every executor made (share it with /metrics). Thread: any.
pipeline_factory inject_faults(pipeline_factory stages, fault_config cfg,
                               std::shared_ptr<fault_counters> counters);

}  // namespace troupe::actors
