// Every CAF atom of troupe, in one place (CAF 0.17: atom_constant, at most 10 characters,
// unique across the project). Send `x_atom::value`. A new atom is added here, never locally.
#pragma once

#include <caf/atom.hpp>

namespace troupe::actors {

// request actor -> scheduler: admit a generate_request (reply: the request id, or an error).
using submit_atom = caf::atom_constant<caf::atom("submit")>;
// request actor -> scheduler: cancel a request by id (client gone, timeout, stop string seen).
using cancel_atom = caf::atom_constant<caf::atom("cancel")>;
// scheduler -> request actor: a token_event (new tokens and/or the finish of one choice).
using token_atom = caf::atom_constant<caf::atom("token")>;
// anyone -> scheduler or supervisor: reply with counters for /metrics.
using stats_atom = caf::atom_constant<caf::atom("stats")>;
// server -> scheduler: refuse new submits; reply once no request is active (graceful shutdown).
using drain_atom = caf::atom_constant<caf::atom("drain")>;
// server -> scheduler: cancel every active request now (shutdown deadline passed).
using abort_atom = caf::atom_constant<caf::atom("abort")>;
// scheduler -> executor: run one step_plan (reply: step_result).
using step_atom = caf::atom_constant<caf::atom("step")>;
// supervisor -> scheduler: here is the (new) executor; replay what the old one held.
using executor_atom = caf::atom_constant<caf::atom("executor")>;
// supervisor -> scheduler: no executor any more (restart intensity exceeded); fail everything.
using fail_atom = caf::atom_constant<caf::atom("fail")>;
// anyone -> supervisor: reply with the scheduler handle of the topology.
using topology_atom = caf::atom_constant<caf::atom("topology")>;
// supervisor -> itself: time to check every stage's step against the step deadline.
using watchdog_atom = caf::atom_constant<caf::atom("watchdog")>;
// request actor -> itself: its deadline passed (delayed_send), cancel the request.
using timeout_atom = caf::atom_constant<caf::atom("timeout")>;
// net -> request actor: the HTTP client disconnected; cancel the request.
using closed_atom = caf::atom_constant<caf::atom("closed")>;

}  // namespace troupe::actors
