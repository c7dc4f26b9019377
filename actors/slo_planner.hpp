// slo_planner: the scheduler policy's latency targets (scheduler.slo_ttft_ms / slo_tpot_ms) --
// how much prefill a step may carry so that running streams keep their inter-token target, and
// in which order waiting requests are admitted so that as many as possible meet their TTFT.
// scheduler_policy owns one and asks it while building each plan; it keeps the request arrival
// times, the step cost model (step_cost_model.hpp) and the shapes of the plans in flight, so
// that each step's measured time (step_result) trains the model.
//
// Chunk sizing, relative (max_decode_gap_factor > 0, troupe serve's default): while any running
// sequence is decoding, a plan's predicted time -- its decodes plus its prefill chunks -- stays
// within max_decode_gap_factor times the predicted step of every decoding stream alone (those
// busy in another plan included, so that with pipeline stages a prefill-only plan is bounded
// too). A stream's gap therefore grows by at most that factor while a long prompt is admitted
// -- over its own step at the time, which itself grows with the stream's context, 1.5-2.5x over
// a 2,000-token prompt among four streams (ARCHITECTURE.md) -- and prefill keeps (factor - 1)
// times the decodes' time, which grows with the batch. The streams priced are the decoding ones
// plus the sequences still in their prompt and the waiting requests that have a seat
// (scheduler_policy_slo.cpp): they decode next, so the gap protected is that of the batch they
// make; priced at the decoding streams alone, a part-empty batch refilled a few prompt tokens a
// step (at 32 streams 17-46 % of the steps held at most 8 sequences; BENCHMARKS.md).
//
// Chunk sizing, absolute (slo_tpot_ms > 0): while any running sequence is decoding (its stream
// waits for the next token), a plan's prefill chunks are cut so that the plan's predicted time
// -- its decodes plus the chunks so far -- stays within slo_tpot_ms. So that prompts never starve,
// prefill always gets at least as much time as the plan's decodes (and one token): when the
// decodes alone take more than half the target, the plan may take twice their predicted time.
// The target is lost for that step anyway, and a smaller share would empty the batch (a closed
// loop at 32 streams needs ~15 prompt tokens a step to refill it) and delay every first token.
// The rules are in time, not tokens, so they scale with the model and the machine; with both
// set, the tighter budget holds. Without running decodes a chunk is not cut: nobody waits
// between tokens, and one big chunk is fastest.
//
// Admission order (slo_ttft_ms > 0), recomputed before each admission:
//   1. sequences whose request already streams (preempted or replayed ones), in queue order;
//   2. requests waiting longer than starvation_factor * slo_ttft_ms, oldest first -- so no
//      request waits behind newer ones forever, whatever its prompt;
//   3. the rest by Moore-Hodgson: in deadline order (arrival + slo_ttft_ms; ties: shorter
//      prompt, then arrival), each taking its predicted prefill time after the backlog; when a
//      request would finish past its deadline, the longest request kept so far is moved out.
//      This maximizes the number of on-time requests for a single machine processing one job at
//      a time (Moore 1968), which prefill approximately is. The kept ones go in deadline order;
//   4. then the moved-out ones ("hopeless": they miss their TTFT anyway), in arrival order.
// With equal deadlines this is first come, first served, until the queue is long enough that
// some requests cannot make it; then the ones that still can go first.
//
// Thread-safety: none; one owner (the scheduler policy). Time: the clock given (steady_clock by
// default; tests pass a fake one).
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <vector>

#include "actors/messages.hpp"
#include "actors/step_cost_model.hpp"
#include "actors/step_plan.hpp"

namespace troupe::actors {

class slo_planner {
 public:
  using clock_fn = std::function<int64_t()>;  // nanoseconds, monotonic
  static constexpr int64_t starvation_factor = 4;

  // 0 = no target / no relative cut.
  slo_planner(int32_t slo_ttft_ms, int32_t slo_tpot_ms, double max_decode_gap_factor = 0);

  bool has_ttft_target() const { return slo_ttft_ns_ > 0; }
  bool has_tpot_target() const { return slo_tpot_s_ > 0; }
  // Whether prefill chunks are ever cut for decoding streams (a TPOT target or a gap factor).
  bool limits_prefill() const { return has_tpot_target() || max_decode_gap_factor_ > 0; }
  void set_clock(clock_fn now_ns) { now_ns_ = std::move(now_ns); }
  int64_t now_ns() const { return now_ns_(); }
  step_cost_model& cost_model() { return cost_; }
  const step_cost_model& cost_model() const { return cost_; }

  // Requests: arrival (add_request), and the events sent (first token, end).
  void on_arrival(uint64_t request_id);
  void on_events(const std::vector<token_event>& events);
  bool has_started(uint64_t request_id) const;

  // Steps: a plan was sent; its result came back (the measured time trains the cost model; a
  // result without timers, as from test fakes, trains nothing); plans were voided (replay).
  void on_plan(const step_plan& plan);
  void on_step_result(const step_result& result);
  void forget_plans() { plan_shapes_.clear(); }

  // One plan's prefill allowance. `decodes` is the shape of the decodes the plan will carry,
  // `streams` that of every decoding stream (this plan's and those busy in others); `is_active`
  // says whether prefill is limited at all (limits_prefill() and streams decoding).
  class prefill_limiter {
   public:
    prefill_limiter(const slo_planner& p, bool is_active, step_shape decodes, step_shape streams);
    // How many of `num_new` prefill tokens at first_position this plan may still take (0: none;
    // the first call of a plan answers at least 1).
    int32_t limit(int64_t first_position, int32_t num_new) const;
    // Tokens were scheduled beyond the decodes given at the start (a prefill chunk, drafts).
    void add(int64_t first_position, int32_t num_new);

   private:
    const slo_planner* planner_;
    bool is_active_;
    step_shape shape_;
    double budget_s_ = 0;  // the plan's predicted time may reach this
    mutable bool has_granted_ = false;  // limit() answered once: the one-token floor is used
  };
  prefill_limiter begin_plan(bool has_decoding_streams, step_shape decodes,
                             step_shape streams) const {
    return prefill_limiter(*this, limits_prefill() && has_decoding_streams, decodes, streams);
  }

  // A waiting sequence, for admission ordering.
  struct candidate {
    uint64_t request_id = 0;
    int64_t num_cached_tokens = 0;    // positions already computed (prefix hits)
    int64_t num_tokens = 0;           // tokens to reach its first sample
  };
  // The order to admit `waiting` in (indices into it), by the rule above; `backlog_s` is the
  // predicted prefill time of running sequences that still prefill. REQUIRES: has_ttft_target().
  std::vector<size_t> order_admission(const std::vector<candidate>& waiting,
                                      double backlog_s) const;
  // Predicted seconds of prefill work: tokens at [first_position, first_position + n), without
  // the per-step fixed cost (the steps run anyway for the decodes).
  double prefill_work_s(int64_t first_position, int64_t num_tokens) const;

 private:
  struct request_times {
    int64_t arrival_ns = 0;
    bool started = false;
  };
  int64_t slo_ttft_ns_;
  double slo_tpot_s_;
  double max_decode_gap_factor_;
  clock_fn now_ns_;
  step_cost_model cost_;
  std::map<uint64_t, request_times> requests_;
  std::map<uint64_t, step_shape> plan_shapes_;  // by step id, while in flight
};

}  // namespace troupe::actors
