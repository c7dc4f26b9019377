// supervisor actor: builds the serving topology (scheduler + a pipeline of P executor stages,
// P = 1 by default), watches it, and restarts a dead stage OTP-style: at most max_restarts
// restarts (of any stage) within restart_window. A restart bumps the epoch, spawns a fresh
// stage in the dead one's place (fresh K/V pages; it refuses plans of older epochs), tells the
// previous stage its new next stage, and hands the scheduler stage 0 with the new epoch, so it
// voids the plans in flight and replays every sequence (recompute from prompt + emitted tokens;
// nothing streamed twice or skipped). Past the limit it tells the scheduler to fail everything
// (fail_atom), stops the other stages and restarts nothing more.
//
// Step deadline (step_timeout > 0): a stage whose step has run longer than step_timeout is
// taken as hung: it is abandoned (step_executor::abandon, then killed; its late answer is
// stale) and restarted like a dead stage, under the same intensity limit.
// Past the limit, on_give_up (if set) is called with the reason, once: troupe serve exits
// non-zero then (a crash loop is not served on).
//
// Messages
//   (topology_atom) -> scheduler_actor       the scheduler to submit to
//   (stats_atom)    -> supervisor_stats      restarts so far, for /metrics
//   (watchdog_atom)                          to itself: checks the step deadline
// Exit: an exit message (e.g. anon_send_exit(supervisor, user_shutdown)) stops the stages
// and the scheduler (which ends active requests with an `error` event) and then itself.
// If the scheduler dies, the supervisor exits with the same reason (no state to recover).
// Logs (logging/log.hpp): one `stage.restart` line per restart (stage, cause, count), one
// `stage.hung` line per abandoned step, one `supervisor.give_up` line.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/meta/type_name.hpp>
#include <caf/replies_to.hpp>
#include <caf/timespan.hpp>
#include <caf/typed_actor.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <string>

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
                     caf::replies_to<stats_atom>::with<supervisor_stats>,
                     caf::reacts_to<watchdog_atom>>;

struct supervisor_config {
  int32_t max_restarts = 3;                               // within restart_window
  caf::timespan restart_window = std::chrono::seconds(60);
  bool detach_executor = true;                            // false in deterministic tests
  caf::timespan step_timeout{0};                          // 0: no step deadline
  std::function<void(const std::string& why)> on_give_up; // on the supervisor's thread
};

// Makes a fresh step_executor (a new device context, fresh K/V pages) for each (re)start.
// Called on the supervisor's thread. Returning nullptr counts as a failed start.
using executor_factory = std::function<std::shared_ptr<step_executor>()>;

// The same for a pipeline: make_stage(k) makes stage k of num_stages (0 = the first layers).
// A stage's executor must not be in use by an older incarnation of the same stage when it is
// made (the supervisor only remakes a stage after the old one is dead).
struct pipeline_factory {
  int32_t num_stages = 1;
  std::function<std::shared_ptr<step_executor>(int32_t stage)> make_stage;
};

struct topology {
  supervisor_actor supervisor;
  scheduler_actor scheduler;
};

// Spawns scheduler, supervisor and the stages; sched_cfg.max_num_steps_in_flight is set to
// the number of stages. Thread: any. REQUIRES: validate(sched_cfg) passed, num_stages >= 1.
topology spawn_topology(caf::actor_system& sys, scheduler_config sched_cfg,
                        supervisor_config sup_cfg, pipeline_factory stages);
// One stage holding every layer.
topology spawn_topology(caf::actor_system& sys, scheduler_config sched_cfg,
                        supervisor_config sup_cfg, executor_factory make_executor);

}  // namespace troupe::actors
