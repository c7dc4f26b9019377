// supervisor actor: builds the serving topology (scheduler + one executor), watches it, and
// restarts a dead executor OTP-style: at most max_restarts restarts within restart_window; on
// each restart the scheduler gets the new executor and replays what the old one held
// (recompute from prompt + emitted tokens; nothing streamed twice or skipped). Past the limit
// it tells the scheduler to fail everything (fail_atom) and stops restarting.
//
// Messages
//   (topology_atom) -> scheduler_actor       the scheduler to submit to
//   (stats_atom)    -> supervisor_stats      restarts so far, for /metrics
// Exit: an exit message (e.g. anon_send_exit(supervisor, user_shutdown)) stops the executor
// and the scheduler (which ends active requests with an `error` event) and then itself.
// If the scheduler dies, the supervisor exits with the same reason (no state to recover).
// Restarts are logged on stderr ("troupe: executor ... restarting (k/max)").
#pragma once

#include <caf/actor_system.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>

#include "actors/atoms.hpp"
#include "actors/scheduler_actor.hpp"
#include "actors/step_executor.hpp"

namespace troupe::actors {

struct supervisor_stats {
  uint64_t num_executor_restarts_total = 0;
  bool is_executor_failed = false;  // restart limit exceeded
};

template <class Inspector>
typename Inspector::result_type inspect(Inspector& f, supervisor_stats& x) {
  return f(caf::meta::type_name("supervisor_stats"), x.num_executor_restarts_total,
           x.is_executor_failed);
}

using supervisor_actor =
    caf::typed_actor<caf::replies_to<topology_atom>::with<scheduler_actor>,
                     caf::replies_to<stats_atom>::with<supervisor_stats>>;

struct supervisor_config {
  int32_t max_restarts = 3;                               // within restart_window
  caf::timespan restart_window = std::chrono::seconds(60);
  bool detach_executor = true;                            // false in deterministic tests
};

// Makes a fresh step_executor (a new device context, fresh K/V pages) for each (re)start.
// Called on the supervisor's thread. Returning nullptr counts as a failed start.
using executor_factory = std::function<std::shared_ptr<step_executor>()>;

struct topology {
  supervisor_actor supervisor;
  scheduler_actor scheduler;
};

// Spawns scheduler, supervisor and the first executor. Thread: any.
// REQUIRES: validate(sched_cfg) passed.
topology spawn_topology(caf::actor_system& sys, scheduler_config sched_cfg,
                        supervisor_config sup_cfg, executor_factory make_executor);

}  // namespace troupe::actors
