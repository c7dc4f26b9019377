// step_timers: the scheduler actor's per-step histograms for /metrics (issue 5: where a step's
// time goes) -- plan building, the plan's round trip through the executor stages, each stage's
// forward pass, the last stage's sampling, and tokens per step.
//
// Cost: observing is a walk over at most ~20 fixed bounds and three adds; nothing allocates
// after construction except the first observation of a new stage index. snapshot() copies
// into a step_timer_stats (messages.hpp) for the (stats_atom) reply.
// Threading: owned by one actor (the scheduler); not thread-safe.
#pragma once

#include <cstdint>
#include <vector>

#include "actors/messages.hpp"
#include "actors/step_plan.hpp"

namespace troupe::actors {

class fixed_histogram {
 public:
  explicit fixed_histogram(const std::vector<double>& bounds);
  void observe(double v);
  histogram_data snapshot() const { return data_; }

 private:
  histogram_data data_;
};

class step_timers {
 public:
  step_timers();

  // A plan was built (and is being sent): seconds spent in the policy, tokens it computes.
  void on_plan(double build_s, int32_t num_tokens);
  // Its result came back `round_trip_s` after the send, carrying the executor's timers.
  void on_result(double round_trip_s, const step_result& r);

  step_timer_stats snapshot() const;

 private:
  fixed_histogram plan_build_s_;
  fixed_histogram round_trip_s_;
  std::vector<fixed_histogram> forward_s_;  // per stage
  fixed_histogram sample_s_;
  fixed_histogram num_tokens_;
};

}  // namespace troupe::actors
