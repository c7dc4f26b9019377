// The scheduler policy's calls into its slo_planner (slo_planner.hpp has the rules): what the
// planner needs to know about the queues, gathered here so schedule() stays one readable loop.
#include <algorithm>

#include "actors/scheduler_policy.hpp"

namespace troupe::actors {

slo_planner::prefill_limiter scheduler_policy::begin_slo_plan() const {
  // A stream is decoding when its sequence has sampled and has just that token left to compute.
  // Busy ones (in another plan) count as streams waiting for tokens -- with pipeline stages a
  // big chunk in this plan delays their plan too -- but only idle ones are in this plan.
  step_shape decodes, streams;  // this plan's decodes; every decoding stream's
  // No cut either in quarantine: the plan holds one suspect request, the streams it pauses are
  // not in it, and a replay cut into many steps would only keep them paused longer.
  if (!slo_.limits_prefill() || is_quarantined())
    return slo_.begin_plan(false, decodes, streams);
  bool has_decoding_streams = false;
  for (uint64_t id : running_) {
    const sequence& s = seqs_.at(id);
    if (s.num_output_tokens() < 1 || s.num_tokens() - s.num_computed_tokens != 1) continue;
    has_decoding_streams = true;
    streams.add_chunk(s.num_computed_tokens, 1);
    if (!is_busy(id)) decodes.add_chunk(s.num_computed_tokens, 1);
  }
  // Sequences still in their prompt, and waiting requests that have a seat, decode as soon as
  // their prefill is done: the gap the cut protects is that of the batch they make. Priced at
  // the current streams alone, a part-empty batch would refill a few prompt tokens a step (32
  // streams: 17-46 % of the steps held at most 8 sequences; BENCHMARKS.md, "Where a 32-stream
  // step's time goes").
  if (has_decoding_streams) {
    for (uint64_t id : running_) {
      const sequence& s = seqs_.at(id);
      if (s.num_tokens() - s.num_computed_tokens > 1) streams.add_chunk(s.num_tokens(), 1);
    }
    auto seats = static_cast<int64_t>(cfg_.max_num_seqs) - static_cast<int64_t>(running_.size());
    for (auto it = waiting_.begin(); it != waiting_.end() && seats > 0; ++it, --seats)
      streams.add_chunk(seqs_.at(*it).num_tokens(), 1);
  }
  return slo_.begin_plan(has_decoding_streams, decodes, streams);
}

void scheduler_policy::order_waiting_for_slo() {
  if (waiting_.size() < 2) return;
  // Prefill still owed by running sequences delays every newcomer's first token.
  double backlog_s = 0;
  for (uint64_t id : running_) {
    const sequence& s = seqs_.at(id);
    const int32_t left = s.num_tokens() - s.num_computed_tokens;
    if (left > 1) backlog_s += slo_.prefill_work_s(s.num_computed_tokens, left);
  }
  // Prefix-cache hits are not looked up here (a hash per block of every waiting prompt): the
  // estimate assumes the whole prompt is computed, which errs on the late side.
  std::vector<slo_planner::candidate> candidates;
  candidates.reserve(waiting_.size());
  for (uint64_t id : waiting_) {
    const sequence& s = seqs_.at(id);
    candidates.push_back({s.request_id, 0, s.num_tokens()});
  }
  const std::vector<size_t> order = slo_.order_admission(candidates, backlog_s);
  std::deque<uint64_t> reordered;
  for (size_t i : order) reordered.push_back(waiting_[i]);
  TROUPE_ASSERT(reordered.size() == waiting_.size());
  waiting_ = std::move(reordered);
}

}  // namespace troupe::actors
