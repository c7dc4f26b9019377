// scheduler_policy: what a failed step does to the requests in it (the quarantine; contract in
// scheduler_policy.hpp). A stage that dies or hangs says nothing about which sequence caused
// it, so the requests of the failed plan become suspects and are replayed one request per plan:
// an innocent one recomputes and is cleared, a poison one fails again alone and is ended.
#include <algorithm>

#include "actors/scheduler_policy.hpp"
#include "logging/log.hpp"

namespace troupe::actors {

std::vector<token_event> scheduler_policy::blame_failed_plans() {
  std::set<uint64_t> blamed;
  for (const auto& [step_id, step] : in_flight_) {
    for (const scheduled_entry& e : step.entries) {
      auto it = seqs_.find(e.seq_id);
      if (it == seqs_.end()) continue;  // cancelled while the step ran
      sequence& s = it->second;
      // Cleared once it has recomputed this plan's work too (the positions that failed).
      s.suspect_until = std::max(s.suspect_until, s.num_computed_tokens + e.num_new_tokens);
      blamed.insert(s.request_id);
    }
  }
  // Alone in the failed plan(s) (quarantine keeps one plan in flight): the failure is its own.
  const bool is_alone = blamed.size() == 1;
  std::vector<token_event> events;
  for (uint64_t id : blamed) {
    request_entry& r = requests_.at(id);
    ++r.num_failed_plans;
    if (is_alone && r.num_failed_plans >= 2) {
      // request_id: the client's x-request-id (tests and direct callers may leave it empty).
      const std::string rid = r.req.log_id.empty() ? std::to_string(id) : r.req.log_id;
      logging::error("request.poison", {{"request_id", rid},
                                        {"failed_steps", r.num_failed_plans},
                                        {"num_prompt_tokens", r.req.prompt_token_ids.size()}});
      ++stats_.num_poison_requests_total;
      suspects_.erase(id);
      auto evs = end_request(id, finish_reason::error,
                             "the model failed on this request twice (once alone); it was not "
                             "retried again");
      events.insert(events.end(), std::make_move_iterator(evs.begin()),
                    std::make_move_iterator(evs.end()));
      continue;
    }
    suspects_.insert(id);
  }
  return events;
}

bool scheduler_policy::is_eligible(uint64_t seq_id) const {
  if (suspects_.empty()) return true;
  return seqs_.at(seq_id).request_id == *suspects_.begin();
}

void scheduler_policy::front_suspect() {
  // A suspect that ended meanwhile (cancelled, finished) is no longer waited for.
  std::erase_if(suspects_, [&](uint64_t id) { return requests_.count(id) == 0; });
  if (suspects_.empty()) return;
  const uint64_t id = *suspects_.begin();
  // Stable: the suspect's sequences first, in their order, then everyone else in theirs.
  std::stable_partition(waiting_.begin(), waiting_.end(),
                        [&](uint64_t v) { return seqs_.at(v).request_id == id; });
}

bool scheduler_policy::preempt_for_suspect() {
  // A cleared request's running sequences hold blocks the suspect needs; they wait instead.
  auto victim = std::find_if(running_.rbegin(), running_.rend(),
                             [&](uint64_t v) { return !is_busy(v) && !is_eligible(v); });
  if (victim == running_.rend()) return false;
  preempt(*victim);
  front_suspect();
  return true;
}

void scheduler_policy::clear_suspects(const std::vector<scheduled_entry>& entries) {
  if (suspects_.empty()) return;
  for (const scheduled_entry& e : entries) {
    auto it = seqs_.find(e.seq_id);
    if (it == seqs_.end()) continue;
    sequence& s = it->second;
    if (s.suspect_until > 0 && s.num_computed_tokens >= s.suspect_until) s.suspect_until = 0;
  }
  for (auto it = suspects_.begin(); it != suspects_.end();) {
    auto r = requests_.find(*it);
    bool is_clear = true;
    if (r != requests_.end())
      for (uint64_t sid : r->second.seq_ids) is_clear = is_clear && seqs_.at(sid).suspect_until == 0;
    if (!is_clear) {
      ++it;
      continue;
    }
    if (r != requests_.end()) r->second.num_failed_plans = 0;
    it = suspects_.erase(it);
  }
}

}  // namespace troupe::actors
