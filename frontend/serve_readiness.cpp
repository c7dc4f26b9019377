// GET /ready for troupe serve: readiness (can this replica take traffic now?), as opposed to
// /health (is the process alive?). 503 with the reason while the server drains, after the
// supervisor gave up, while no stage is attached, or while work has waited ready_stall_ms
// without any progress (a hung step before its deadline, a restart loop); 200 otherwise. The
// scheduler is asked through a short-lived actor so the io thread never blocks; no answer
// within a second is itself a stall.
#include <caf/all.hpp>
#include <fmt/format.h>

#include "frontend/serve_backend.hpp"
#include "net/openai_error.hpp"

namespace troupe::frontend {

namespace {

void answer_ready(caf::event_based_actor* self, std::shared_ptr<const serve_runtime> rt,
                  std::shared_ptr<net::http_exchange> ex) {
  auto unready = [ex](const std::string& why) {
    respond_error(*ex, net::unavailable(why));
  };
  self->request(rt->scheduler, std::chrono::seconds(1), actors::stats_atom::value)
      .then(
          [rt, ex, unready](actors::scheduler_stats& s) {
            if (s.is_failed) return unready("the model executor failed");
            if (s.is_draining) return unready("the server is shutting down");
            if (!s.has_executor) return unready("no model executor (starting or restarting)");
            if (s.seconds_without_progress * 1000 >= rt->ready_stall_ms)
              return unready(fmt::format("no progress for {:.1f} s with work waiting",
                                         s.seconds_without_progress));
            ex->respond(200, "text/plain", "");
          },
          [unready](caf::error&) { unready("the scheduler did not answer within 1 s"); });
}

}  // namespace

void serve_backend::ready(std::shared_ptr<net::http_exchange> ex) {
  if (is_draining()) return respond_error(*ex, net::unavailable("the server is shutting down"));
  auto rt = runtime();
  if (!rt) return respond_error(*ex, net::unavailable("the model is still loading"));
  sys_.spawn(answer_ready, rt, std::move(ex));
}

}  // namespace troupe::frontend
