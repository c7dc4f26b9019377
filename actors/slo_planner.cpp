#include "actors/slo_planner.hpp"

#include <algorithm>
#include <chrono>
#include <limits>
#include <queue>
#include <tuple>

#include "logging/log.hpp"
#include "troupe/result.hpp"

namespace troupe::actors {

slo_planner::slo_planner(int32_t slo_ttft_ms, int32_t slo_tpot_ms, double max_decode_gap_factor)
    : slo_ttft_ns_(int64_t{slo_ttft_ms} * 1'000'000),
      slo_tpot_s_(slo_tpot_ms / 1e3),
      max_decode_gap_factor_(max_decode_gap_factor),
      now_ns_([] {
        return std::chrono::duration_cast<std::chrono::nanoseconds>(
                   std::chrono::steady_clock::now().time_since_epoch())
            .count();
      }) {
  TROUPE_ASSERT(slo_ttft_ms >= 0 && slo_tpot_ms >= 0 && max_decode_gap_factor >= 0);
}

void slo_planner::on_arrival(uint64_t request_id) {
  requests_[request_id] = request_times{now_ns(), false};
}

void slo_planner::on_events(const std::vector<token_event>& events) {
  for (const token_event& ev : events) {
    if (ev.is_request_done) {
      requests_.erase(ev.request_id);
      continue;
    }
    auto it = requests_.find(ev.request_id);
    if (it != requests_.end()) it->second.started = true;
  }
}

bool slo_planner::has_started(uint64_t request_id) const {
  auto it = requests_.find(request_id);
  return it != requests_.end() && it->second.started;
}

void slo_planner::on_plan(const step_plan& plan) {
  step_shape s;
  for (const scheduled_seq& q : plan.seqs)
    s.add_chunk(q.first_position, static_cast<int64_t>(q.token_ids.size()));
  plan_shapes_[plan.step_id] = s;
}

void slo_planner::on_step_result(const step_result& result) {
  auto it = plan_shapes_.find(result.step_id);
  if (it == plan_shapes_.end()) return;
  const step_shape s = it->second;
  plan_shapes_.erase(it);
  // The compute a sequence of this plan waits for: every stage's forward pass and the sampling
  // (with P stages a stream's gap is at least that; queueing behind other plans comes on top).
  int64_t ns = result.sample_ns;
  for (int64_t f : result.stage_forward_ns) ns += f;
  if (result.stage_forward_ns.empty() || ns <= 0) return;  // an executor that does not measure
  // How well the model predicted this step, before it learns from it (--log-level debug;
  // tools/step_shapes measures shapes offline).
  if (logging::current_level() == logging::level::debug)
    logging::debug("step.cost", {{"step_id", result.step_id},
                                 {"num_tokens", s.num_tokens},
                                 {"attention_pairs", s.attention_pairs},
                                 {"kv_positions", s.kv_positions},
                                 {"predicted_ms", cost_.predict_s(s) * 1e3},
                                 {"measured_ms", static_cast<double>(ns) * 1e-6}});
  cost_.observe(s, static_cast<double>(ns) * 1e-9);
}

slo_planner::prefill_limiter::prefill_limiter(const slo_planner& p, bool is_active,
                                              step_shape decodes, step_shape streams)
    : planner_(&p), is_active_(is_active), shape_(decodes) {
  if (!is_active_) return;
  budget_s_ = std::numeric_limits<double>::infinity();
  if (p.has_tpot_target()) {
    // Prefill always gets at least as much time as the decodes: when they alone take more than
    // half the target, the plan may take twice their time (the target is lost for this step
    // anyway, and starving prefill would only empty the batch and delay every first token).
    const double decodes_s = decodes.num_tokens > 0 ? p.cost_.predict_s(decodes) : 0;
    budget_s_ = std::max(p.slo_tpot_s_, 2 * decodes_s);
  }
  // Relative to the streams' own step, so their gap grows by at most the factor.
  if (p.max_decode_gap_factor_ > 0 && streams.num_tokens > 0)
    budget_s_ = std::min(budget_s_, p.max_decode_gap_factor_ * p.cost_.predict_s(streams));
}

int32_t slo_planner::prefill_limiter::limit(int64_t first_position, int32_t num_new) const {
  if (!is_active_ || num_new <= 0) return num_new;
  const int64_t fits =
      planner_->cost_.max_chunk_tokens(shape_, first_position, num_new, budget_s_);
  // At least one prompt token a plan, so a prompt always progresses -- even when a decode's
  // speculative drafts (counted through add()) took the whole budget.
  const bool is_first = !has_granted_;
  has_granted_ = true;
  return static_cast<int32_t>(std::max<int64_t>(fits, is_first ? 1 : 0));
}

void slo_planner::prefill_limiter::add(int64_t first_position, int32_t num_new) {
  shape_.add_chunk(first_position, num_new);
}

double slo_planner::prefill_work_s(int64_t first_position, int64_t num_tokens) const {
  if (num_tokens <= 0) return 0;
  return cost_.predict_prefill_s(first_position, num_tokens) - cost_.fit().fixed_s;
}

std::vector<size_t> slo_planner::order_admission(const std::vector<candidate>& waiting,
                                                 double backlog_s) const {
  TROUPE_ASSERT(has_ttft_target());
  const int64_t now = now_ns();
  auto arrival = [&](const candidate& c) {
    auto it = requests_.find(c.request_id);
    return it == requests_.end() ? now : it->second.arrival_ns;
  };
  std::vector<size_t> started, starved, rest;
  for (size_t i = 0; i < waiting.size(); ++i) {
    if (has_started(waiting[i].request_id))
      started.push_back(i);
    else if (now - arrival(waiting[i]) > starvation_factor * slo_ttft_ns_)
      starved.push_back(i);
    else
      rest.push_back(i);
  }
  auto by_arrival = [&](size_t a, size_t b) {
    return std::make_tuple(arrival(waiting[a]), waiting[a].request_id, a) <
           std::make_tuple(arrival(waiting[b]), waiting[b].request_id, b);
  };
  std::stable_sort(starved.begin(), starved.end(), by_arrival);

  // Moore-Hodgson over the rest, in deadline order (arrival + the same target for all, so
  // arrival order; a shorter prompt first on equal deadlines).
  std::stable_sort(rest.begin(), rest.end(), [&](size_t a, size_t b) {
    return std::make_tuple(arrival(waiting[a]), waiting[a].num_tokens, waiting[a].request_id) <
           std::make_tuple(arrival(waiting[b]), waiting[b].num_tokens, waiting[b].request_id);
  });
  std::vector<double> work(waiting.size(), 0.0);
  for (size_t i : rest)
    work[i] = prefill_work_s(waiting[i].num_cached_tokens,
                             waiting[i].num_tokens - waiting[i].num_cached_tokens);
  std::vector<bool> is_late(waiting.size(), false);
  std::priority_queue<std::pair<double, size_t>> kept;  // longest work on top
  double finish_s = backlog_s;                          // seconds from now
  for (size_t i : rest) {
    kept.push({work[i], i});
    finish_s += work[i];
    const double deadline_s = static_cast<double>(arrival(waiting[i]) + slo_ttft_ns_ - now) * 1e-9;
    if (finish_s > deadline_s) {
      const auto [w, longest] = kept.top();
      kept.pop();
      finish_s -= w;
      is_late[longest] = true;
    }
  }
  std::vector<size_t> order = started;
  order.insert(order.end(), starved.begin(), starved.end());
  for (size_t i : rest)
    if (!is_late[i]) order.push_back(i);
  std::vector<size_t> late;
  for (size_t i : rest)
    if (is_late[i]) late.push_back(i);
  std::stable_sort(late.begin(), late.end(), by_arrival);
  order.insert(order.end(), late.begin(), late.end());
  return order;
}

}  // namespace troupe::actors
