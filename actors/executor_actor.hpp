// executor actor: owns one step_executor (a device, or a CPU stage) and runs the scheduler's
// step plans on it, one at a time, on its own thread (spawned detached) so compute never blocks
// CAF's worker pool.
//
// Messages
//   (step_atom, step_plan) -> step_result
//       Runs the plan; the reply carries one sample per sequence with do_sample.
//       Failure: when run_step returns an error, the actor exits with that error (reason
//       sec::runtime_error, the message in the context). The pending requester gets
//       request_receiver_down/runtime_error; the supervisor (a monitor) restarts it.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <memory>

#include "actors/atoms.hpp"
#include "actors/step_executor.hpp"
#include "actors/step_plan.hpp"

namespace troupe::actors {

using executor_actor =
    caf::typed_actor<caf::replies_to<step_atom, step_plan>::with<step_result>>;

// Spawns an executor actor owning `exec`. `detached`: its own thread (production); tests pass
// false so CAF's deterministic test scheduler runs it. Thread: any.
executor_actor spawn_executor(caf::actor_system& sys, std::shared_ptr<step_executor> exec,
                              bool detached);

}  // namespace troupe::actors
