// scheduler actor: continuous batching. Owns the waiting/running queues and the KV block pool
// (through scheduler_policy), builds one step_plan per iteration, sends it to the executor,
// turns the step_result into token_events for the request actors.
//
// Messages (all from CAF actors; plain sends from outside go through anon_send)
//   (submit_atom, generate_request, token_sink_actor) -> uint64_t (the request id)
//       Accepts the request; its events go to the sink: per choice, new tokens as they come and
//       exactly one terminal event (finish != none), then nothing. The scheduler monitors the
//       sink: if it dies, its requests are cancelled (no events are sent to it any more).
//       Failures (caf::error with category "troupe", see submit_error; no events are sent):
//         invalid_request  request id already active, no sink: a caller's bug (HTTP 500)
//       REQUIRES (asserted, abort): the values the front door validated
//         (frontend/request_validation.hpp) -- a non-empty prompt, max_tokens >= 1, 1 <= n <=
//         max_num_seqs, prompt + max_tokens within max_model_len and the block pool, token
//         ids inside the vocabulary, sampling parameters that engine::validate accepts.
//         queue_full       max_num_waiting_requests waiting           (HTTP 429)
//         shutting_down    after drain_atom                           (HTTP 503)
//         unavailable      after fail_atom: no executor              (HTTP 503)
//   (cancel_atom, uint64_t request_id)
//       Frees the request's blocks now (they are reusable in the next plan) and sends each
//       unfinished choice a terminal `cancelled` event. Unknown/finished ids: ignored.
//   (stats_atom) -> scheduler_stats
//       The policy's counters plus step_timers: plan build time and tokens per plan sent,
//       round trip (plan sent -> result received) and the executor's per-stage forward and
//       sampling times per result received (step_timers.hpp); and readiness: has_executor,
//       is_failed, is_draining, seconds_without_progress (work waiting, yet no step result,
//       new stage or arrival at an idle scheduler for that long).
//   (drain_atom) -> caf::ok_atom
//       Refuses further submits; replies once no request is active.
//   (abort_atom)
//       Cancels every active request (terminal `cancelled` events).
//   (executor_atom, executor_actor, uint64_t epoch)        from the supervisor
//       Sends plans to this executor (stage 0 of the pipeline) from now on, stamped with
//       `epoch`. If one was in use before (a restart of any stage), the sequences lost their
//       K/V: every in-flight plan is void (its result, if one still comes, is ignored), each
//       running sequence is requeued to recompute prompt + emitted tokens, and the prefix cache
//       is emptied. Tokens already streamed are never sent again. The requests of the voided
//       plans are quarantined (scheduler_policy.hpp): replayed one per plan; one that fails
//       again alone ends with an `error` event (a poison request), the others go on.
//   (fail_atom, std::string reason)        from the supervisor
//       No executor any more: every active request ends with a terminal `error` event carrying
//       the reason; later submits get `unavailable`.
// On exit (e.g. the supervisor shuts the topology down), active requests get a terminal `error`.
//
// Threading: an ordinary pooled actor; never blocks. Up to cfg.max_num_steps_in_flight step
// plans (one per pipeline stage) are in flight at a time, over disjoint sequences.
#pragma once

#include <caf/actor_system.hpp>
#include <caf/atom.hpp>
#include <caf/error.hpp>
#include <caf/make_message.hpp>
#include <caf/replies_to.hpp>
#include <caf/typed_actor.hpp>

#include <cstdint>
#include <optional>
#include <string>

#include "actors/atoms.hpp"
#include "actors/executor_actor.hpp"
#include "actors/messages.hpp"
#include "actors/scheduler_config.hpp"

namespace troupe::actors {

// What a request actor must accept to receive its events.
using token_sink_actor = caf::typed_actor<caf::reacts_to<token_atom, token_event>>;

using scheduler_actor = caf::typed_actor<
    caf::replies_to<submit_atom, generate_request, token_sink_actor>::with<uint64_t>,
    caf::reacts_to<cancel_atom, uint64_t>,
    caf::replies_to<stats_atom>::with<scheduler_stats>,
    caf::replies_to<drain_atom>::with<caf::ok_atom>,
    caf::reacts_to<abort_atom>,
    caf::reacts_to<executor_atom, executor_actor, uint64_t>,
    caf::reacts_to<fail_atom, std::string>>;

// A refused submit travels as caf::error: category "troupe", code = the submit_error value
// (messages.hpp), context = a human-readable message naming the parameter.
inline caf::error make_error(submit_error code, std::string message) {
  return caf::error{static_cast<uint8_t>(code), caf::atom("troupe"),
                    caf::make_message(std::move(message))};
}

// The submit_error in `e`, if it is one of ours.
inline std::optional<submit_error> to_submit_error(const caf::error& e) {
  if (!e || e.category() != caf::atom("troupe")) return std::nullopt;
  return static_cast<submit_error>(e.code());
}

// The message a make_error() carried ("" if none).
inline std::string submit_error_message(const caf::error& e) {
  if (e.context().match_elements<std::string>()) return e.context().get_as<std::string>(0);
  return {};
}

// Spawns the scheduler. It holds work until it receives (executor_atom, executor). Thread: any.
// REQUIRES: validate(cfg) passed.
scheduler_actor spawn_scheduler(caf::actor_system& sys, scheduler_config cfg);

}  // namespace troupe::actors
