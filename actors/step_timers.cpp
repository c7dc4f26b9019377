#include "actors/step_timers.hpp"

namespace troupe::actors {

namespace {

// From 10 us (plan building) to 10 s (a long prefill on a slow stage).
const std::vector<double>& time_bounds() {
  static const std::vector<double> b{1e-5,  2.5e-5, 5e-5, 1e-4, 2.5e-4, 5e-4, 1e-3,
                                     2.5e-3, 5e-3,  1e-2, 2.5e-2, 5e-2, 0.1,  0.25,
                                     0.5,   1.0,   2.5,  5.0,  10.0};
  return b;
}

// 1, 2, 4, ..., 8192 tokens.
const std::vector<double>& token_bounds() {
  static const std::vector<double> b = [] {
    std::vector<double> v;
    for (int i = 0; i <= 13; ++i) v.push_back(static_cast<double>(1 << i));
    return v;
  }();
  return b;
}

}  // namespace

fixed_histogram::fixed_histogram(const std::vector<double>& bounds) {
  data_.bounds = bounds;
  data_.counts.assign(bounds.size() + 1, 0);
}

void fixed_histogram::observe(double v) {
  size_t i = 0;
  while (i < data_.bounds.size() && v > data_.bounds[i]) ++i;
  ++data_.counts[i];
  data_.sum += v;
  ++data_.count;
}

step_timers::step_timers()
    : plan_build_s_(time_bounds()),
      round_trip_s_(time_bounds()),
      sample_s_(time_bounds()),
      num_tokens_(token_bounds()) {}

void step_timers::on_plan(double build_s, int32_t num_tokens) {
  plan_build_s_.observe(build_s);
  num_tokens_.observe(static_cast<double>(num_tokens));
}

void step_timers::on_result(double round_trip_s, const step_result& r) {
  round_trip_s_.observe(round_trip_s);
  // Executors that do not measure (test fakes) report nothing; don't count zeros for them.
  if (r.stage_forward_ns.empty()) return;
  while (forward_s_.size() < r.stage_forward_ns.size()) forward_s_.emplace_back(time_bounds());
  for (size_t k = 0; k < r.stage_forward_ns.size(); ++k)
    forward_s_[k].observe(static_cast<double>(r.stage_forward_ns[k]) * 1e-9);
  sample_s_.observe(static_cast<double>(r.sample_ns) * 1e-9);
}

step_timer_stats step_timers::snapshot() const {
  step_timer_stats s;
  s.plan_build_s = plan_build_s_.snapshot();
  s.round_trip_s = round_trip_s_.snapshot();
  for (const auto& h : forward_s_) s.forward_s.push_back(h.snapshot());
  s.sample_s = sample_s_.snapshot();
  s.num_tokens = num_tokens_.snapshot();
  return s;
}

}  // namespace troupe::actors
