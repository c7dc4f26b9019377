// executor actor: owns one step_executor (a device, or a CPU stage holding a layer range) and
// runs its share of the scheduler's step plans, one at a time, on its own thread (spawned
// detached) so compute never blocks CAF's worker pool.
//
// Pipeline: the scheduler sends each plan to stage 0. A stage that is not the last runs its
// layers and delegates (plan, hidden states) to the next stage, so the last stage's reply goes
// straight to the scheduler; a stage passes plans on in the order it got them, so every stage
// sees the plans in the scheduler's order. With one stage this is the plain request/reply.
//
// Messages
//   (step_atom, step_plan) -> step_result                     (stage 0, from the scheduler)
//   (step_atom, step_plan, hidden_states) -> step_result      (from the previous stage)
//       Runs this stage's share; the last stage replies with one sample per sequence with
//       do_sample, the others delegate to the next stage.
//       A plan whose epoch is older than the newest this stage has seen (or was started with)
//       is refused with an error reply (sec::runtime_error, "stale step plan"); the actor lives
//       on. It was made before a restart, for K/V that is gone; the scheduler has voided it.
//       Failure: when the step_executor returns an error (or a non-last stage has no next
//       stage), the actor exits with that error (reason sec::runtime_error, the message in the
//       context). The pending requester gets the error/request_receiver_down; the supervisor
//       (a monitor) restarts it.
//   (executor_atom, stage_input_actor)                         (from the supervisor)
//       The next stage to delegate to (after that stage was restarted).
#pragma once

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <atomic>
#include <cstdint>
#include <memory>

#include "actors/atoms.hpp"
#include "actors/step_executor.hpp"
#include "actors/step_plan.hpp"

namespace troupe::actors {

// What a stage needs from the next one.
using stage_input_actor = caf::typed_actor<
    caf::replies_to<step_atom, step_plan, hidden_states>::with<step_result>>;

using executor_actor =
    caf::typed_actor<caf::replies_to<step_atom, step_plan>::with<step_result>,
                     caf::replies_to<step_atom, step_plan, hidden_states>::with<step_result>,
                     caf::reacts_to<executor_atom, stage_input_actor>>;

// When the stage's current step began (steady_clock nanoseconds), 0 while it is idle: written
// by the executor's thread around each step, read by the supervisor's step deadline check
// (a detached actor stuck in a step cannot answer messages, so it is watched from outside).
struct stage_heartbeat {
  std::atomic<int64_t> busy_since_ns{0};
};

// Spawns an executor actor owning `exec`. `detached`: its own thread (production); tests pass
// false so CAF's deterministic test scheduler runs it. `next`: the next stage (nullptr for the
// last or only stage). `epoch`: plans of older epochs are refused. `heartbeat` (optional): the
// stage stamps it around every step. Thread: any.
executor_actor spawn_executor(caf::actor_system& sys, std::shared_ptr<step_executor> exec,
                              bool detached, stage_input_actor next = {},
                              uint64_t epoch = 0,
                              std::shared_ptr<stage_heartbeat> heartbeat = nullptr);

}  // namespace troupe::actors
