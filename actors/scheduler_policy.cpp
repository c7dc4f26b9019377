#include "actors/scheduler_policy.hpp"

#include <algorithm>
#include <limits>
#include <unordered_map>

#include "actors/draft_proposer.hpp"
#include "troupe/result.hpp"

namespace troupe::actors {

namespace {

constexpr size_t num_batch_buckets = 9;  // <= 1, 2, 4, ..., 128, +Inf

// Speculative decoding's switch-off: once a sequence has sent this many drafts, it stops
// drafting if fewer than this share of them were accepted. A rejected draft costs a token of
// compute; below about a fifth accepted, the extra tokens cost more than the steps they save
// (measured in BENCHMARKS.md, "Speculative decoding").
constexpr int32_t min_spec_draft_tokens = 32;
constexpr int32_t min_spec_acceptance_percent = 20;

bool contains(const std::vector<int32_t>& v, int32_t x) {
  return std::find(v.begin(), v.end(), x) != v.end();
}

}  // namespace

uint64_t derive_choice_seed(uint64_t seed, int32_t choice) {
  if (choice == 0) return seed;
  // splitmix64 finaliser: distinct, well-mixed seeds per choice, still a pure function.
  uint64_t z = seed + 0x9E3779B97F4A7C15ull * static_cast<uint64_t>(choice);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

scheduler_policy::scheduler_policy(scheduler_config cfg)
    : cfg_(std::move(cfg)),
      pool_(cfg_.num_kv_blocks, cfg_.block_size),
      slo_(cfg_.slo_ttft_ms, cfg_.slo_tpot_ms, cfg_.max_decode_gap_factor) {
  TROUPE_ASSERT(validate(cfg_).ok());
  stats_.batch_num_seqs_buckets.assign(num_batch_buckets, 0);
}

int32_t scheduler_policy::blocks_for(int32_t num_tokens) const {
  return (num_tokens + cfg_.block_size - 1) / cfg_.block_size;
}

int32_t scheduler_policy::chunk_size(const sequence& s, int32_t budget) const {
  int32_t threshold = cfg_.long_prefill_token_threshold > 0 ? cfg_.long_prefill_token_threshold
                                                            : cfg_.max_num_batched_tokens;
  return std::min({s.num_tokens() - s.num_computed_tokens, threshold, budget});
}

std::vector<int32_t> scheduler_policy::propose_drafts(const sequence& s, int32_t num_new,
                                                      int32_t budget) const {
  if (cfg_.num_speculative_tokens == 0 || s.is_spec_off || s.num_output_tokens() < 1 ||
      num_new != s.num_tokens() - s.num_computed_tokens || num_new != 1 ||
      static_cast<int32_t>(running_.size()) >= cfg_.speculative_disable_by_batch_size)
    return {};
  const request_entry& r = requests_.at(s.request_id);
  if (!r.req.allow_speculation) return {};
  // Every draft accepted plus the model's own token must stay within max_tokens and the context.
  const int32_t k = std::min({cfg_.num_speculative_tokens - s.num_spec_drafts_cut,
                              budget - num_new, r.req.max_tokens - s.num_output_tokens() - 1,
                              cfg_.max_model_len - s.num_tokens() - 1});
  if (k <= 0) return {};
  std::vector<int32_t> drafts;
  if (cfg_.has_draft_model)  // the last stage proposed them (lookup first, then the model)
    drafts.assign(s.proposed_drafts.begin(),
                  s.proposed_drafts.begin() +
                      std::min<ptrdiff_t>(k, static_cast<ptrdiff_t>(s.proposed_drafts.size())));
  else
    drafts = propose_prompt_lookup_drafts(s.token_ids, cfg_.prompt_lookup_min,
                                          cfg_.prompt_lookup_max, k);
  const auto num_positions = s.num_computed_tokens + num_new + static_cast<int32_t>(drafts.size());
  const int32_t need = blocks_for(num_positions) - static_cast<int32_t>(s.block_table.size());
  // Never preempt for a guess: leave a block for every running sequence's own next token too.
  const auto headroom = static_cast<int32_t>(running_.size());
  if (!pool_.can_allocate(std::max(0, need) + headroom)) drafts.clear();
  return drafts;
}

int32_t scheduler_policy::num_draft_proposals(const sequence& s) const {
  if (!cfg_.has_draft_model || cfg_.num_speculative_tokens == 0 || s.is_spec_off ||
      static_cast<int32_t>(running_.size()) >= cfg_.speculative_disable_by_batch_size ||
      !requests_.at(s.request_id).req.allow_speculation)
    return 0;
  return cfg_.num_speculative_tokens - s.num_spec_drafts_cut;
}

bool scheduler_policy::count_accepted_drafts(sequence& s, const scheduled_entry& e,
                                             const sampled_token& t) {
  const auto num_accepted = t.next_samples.size();
  if (num_accepted > e.drafts.size()) return false;
  for (size_t j = 0; j < num_accepted; ++j) {
    const int32_t emitted = j == 0 ? t.sample.token : t.next_samples[j - 1].token;
    if (emitted != e.drafts[j]) return false;
  }
  if (e.drafts.empty()) return true;
  stats_.num_spec_draft_tokens_total += e.drafts.size();
  stats_.num_spec_accepted_tokens_total += num_accepted;
  s.num_spec_draft_tokens += static_cast<int32_t>(e.drafts.size());
  s.num_spec_accepted_tokens += static_cast<int32_t>(num_accepted);
  // Grow the draft by one after a clean sweep, else cut it to what held plus one.
  const auto held = static_cast<int32_t>(num_accepted);
  s.num_spec_drafts_cut = held == static_cast<int32_t>(e.drafts.size())
                              ? std::max(0, s.num_spec_drafts_cut - 1)
                              : cfg_.num_speculative_tokens - held - 1;
  if (s.num_spec_draft_tokens >= min_spec_draft_tokens &&
      s.num_spec_accepted_tokens * 100 < s.num_spec_draft_tokens * min_spec_acceptance_percent)
    s.is_spec_off = true;
  return true;
}

std::optional<refusal> scheduler_policy::add_request(generate_request req) {
  auto invalid = [](std::string m) { return refusal{submit_error::invalid_request, std::move(m)}; };
  // A client's request reaches here through the front door's one validation
  // (frontend/request_validation.hpp), which answers every bad value with a 400 naming it; what
  // remains are cheap checks that the caller kept that contract.
  const auto num_prompt = static_cast<int64_t>(req.prompt_token_ids.size());
  TROUPE_ASSERT(num_prompt > 0);
  TROUPE_ASSERT(req.max_tokens >= 1 && req.min_tokens >= 0);
  TROUPE_ASSERT(req.n >= 1 && req.n <= cfg_.max_num_seqs);
  TROUPE_ASSERT(num_prompt + req.max_tokens <= cfg_.max_model_len);
  TROUPE_ASSERT(blocks_for(static_cast<int32_t>(num_prompt) + req.max_tokens) <=
                cfg_.num_kv_blocks);
  if (cfg_.vocab_size > 0) {
    for (int32_t t : req.prompt_token_ids) TROUPE_ASSERT(t >= 0 && t < cfg_.vocab_size);
    for (int32_t t : req.stop_token_ids) TROUPE_ASSERT(t >= 0 && t < cfg_.vocab_size);
    TROUPE_ASSERT(engine::validate(req.sampling, cfg_.vocab_size).ok());
  }
  if (requests_.count(req.request_id) != 0)
    return invalid("request id " + std::to_string(req.request_id) + " is already active");
  if (const int32_t num_queued = num_queued_for_seats();
      num_queued >= cfg_.max_num_waiting_requests)
    return refusal{submit_error::queue_full,
                   "the server is busy: " + std::to_string(num_queued) +
                       " requests are waiting; retry later"};

  sequence s;
  s.seq_id = next_seq_id_++;
  s.request_id = req.request_id;
  s.token_ids = req.prompt_token_ids;
  s.num_prompt_tokens = static_cast<int32_t>(num_prompt);
  s.sampling = req.sampling;
  request_entry r;
  r.seq_ids.push_back(s.seq_id);
  r.choice_done.assign(static_cast<size_t>(req.n), false);
  r.req = std::move(req);
  waiting_.push_back(s.seq_id);
  uint64_t rid = r.req.request_id;
  seqs_.emplace(s.seq_id, std::move(s));
  requests_.emplace(rid, std::move(r));
  slo_.on_arrival(rid);
  return std::nullopt;
}

int32_t scheduler_policy::num_queued_for_seats() const {
  // Submits that arrive together all land in waiting_ before a step can admit any of them, so
  // counting waiting_ alone refused a request while a seat was free ("room for 6 requests, 20
  // racing requests got only 5"). The waiting requests that the free seats will take, in
  // admission order, are not queued.
  int32_t free_seats = cfg_.max_num_seqs - static_cast<int32_t>(running_.size()) - reserved_seats();
  int32_t num_queued = 0;
  for (uint64_t id : waiting_) {
    const sequence& s = seqs_.at(id);
    const request_entry& r = requests_.at(s.request_id);
    const int32_t seats = (s.choice == 0 && !r.forked) ? r.req.n : 1;
    if (num_queued == 0 && seats <= free_seats)
      free_seats -= seats;
    else
      ++num_queued;
  }
  return num_queued;
}

int32_t scheduler_policy::reserved_seats() const {
  int32_t n = 0;
  for (uint64_t id : running_) {
    const sequence& s = seqs_.at(id);
    const request_entry& r = requests_.at(s.request_id);
    if (s.choice == 0 && !r.forked) n += r.req.n - 1;
  }
  return n;
}

std::vector<int32_t> scheduler_policy::find_prefix_hits(const sequence& s,
                                                        std::vector<uint64_t>& hashes) const {
  std::vector<int32_t> hits;
  // Prompt logprobs need every prompt position computed here (the executor gathers them).
  if (!cfg_.enable_prefix_caching || s.sampling.prompt_logprobs >= 0) return hits;
  // At least one token must be computed: its logits give the next sample.
  int32_t max_blocks = (s.num_tokens() - 1) / cfg_.block_size;
  uint64_t parent = 0;
  for (int32_t b = 0; b < max_blocks; ++b) {
    std::span<const int32_t> toks(s.token_ids.data() + static_cast<size_t>(b) * cfg_.block_size,
                                  static_cast<size_t>(cfg_.block_size));
    uint64_t h = block_pool::hash_block_tokens(parent, toks);
    int32_t id = pool_.find_cached_block(h, parent, toks);
    if (id < 0) break;
    hits.push_back(id);
    hashes.push_back(h);
    parent = h;
  }
  return hits;
}

void scheduler_policy::cache_computed_blocks(sequence& s) {
  if (!cfg_.enable_prefix_caching) return;
  const int32_t num_full = s.num_computed_tokens / cfg_.block_size;
  for (auto b = static_cast<int32_t>(s.block_hashes.size()); b < num_full; ++b) {
    uint64_t parent = b == 0 ? 0 : s.block_hashes[static_cast<size_t>(b - 1)];
    std::span<const int32_t> toks(s.token_ids.data() + static_cast<size_t>(b) * cfg_.block_size,
                                  static_cast<size_t>(cfg_.block_size));
    uint64_t h = block_pool::hash_block_tokens(parent, toks);
    s.block_hashes.push_back(h);
    pool_.cache_full_block(s.block_table[static_cast<size_t>(b)], h, parent, toks);
  }
}

void scheduler_policy::release(sequence& s) {
  // Last block first: the free list is LRU, so the shared roots of prefixes outlive their tails.
  std::vector<int32_t> back(s.block_table.rbegin(), s.block_table.rend());
  pool_.free_blocks(back);
  s.block_table.clear();
  s.block_hashes.clear();
  s.num_computed_tokens = 0;
  s.is_new = true;
  s.proposed_drafts.clear();
  freed_seq_ids_.push_back(s.seq_id);
}

void scheduler_policy::preempt(uint64_t seq_id) {
  TROUPE_ASSERT(!is_busy(seq_id));
  auto it = std::find(running_.begin(), running_.end(), seq_id);
  TROUPE_ASSERT(it != running_.end());
  running_.erase(it);
  release(seqs_.at(seq_id));
  waiting_.push_front(seq_id);
  ++stats_.num_preemptions_total;
}

void scheduler_policy::erase_sequence(uint64_t seq_id) {
  auto w = std::find(waiting_.begin(), waiting_.end(), seq_id);
  if (w != waiting_.end()) waiting_.erase(w);
  auto r = std::find(running_.begin(), running_.end(), seq_id);
  if (r != running_.end()) running_.erase(r);
  seqs_.erase(seq_id);
}

scheduled_seq scheduler_policy::describe(const sequence& s, int32_t num_new,
                                         bool do_sample) const {
  scheduled_seq d;
  d.seq_id = s.seq_id;
  auto first = s.token_ids.begin() + s.num_computed_tokens;
  d.token_ids.assign(first, first + num_new);
  d.first_position = s.num_computed_tokens;
  d.block_table = s.block_table;
  d.do_sample = do_sample;
  d.is_new = s.is_new;
  if (s.is_new) {
    d.history_token_ids.assign(s.token_ids.begin(), first);
    d.num_prompt_tokens = s.num_prompt_tokens;
    d.sampling = s.sampling;
  }
  return d;
}

step_plan scheduler_policy::schedule() {
  TROUPE_ASSERT(can_schedule());
  front_suspect();  // quarantine: only its sequences enter this plan (is_eligible)
  step_plan plan;
  in_flight_step step;
  int32_t budget = cfg_.max_num_batched_tokens;
  bool preempted = false;
  // This plan's share of the idle sequences, so the other free plan slots get work too. With
  // one slot there is no share: the plan is built exactly as without pipeline stages.
  size_t max_seqs = std::numeric_limits<size_t>::max();
  if (cfg_.max_num_steps_in_flight > 1) {
    // busy_ may still name cancelled sequences until their plan returns: count, not subtract.
    const auto idle = static_cast<int64_t>(
        std::count_if(running_.begin(), running_.end(), [&](uint64_t v) { return !is_busy(v); }) +
        waiting_.size());
    const int64_t slots = cfg_.max_num_steps_in_flight - num_steps_in_flight();
    max_seqs = static_cast<size_t>(std::max<int64_t>(1, (idle + slots - 1) / slots));
  }

  auto add = [&](sequence& s, int32_t num_new, std::vector<int32_t> drafts = {}) {
    bool do_sample = s.num_computed_tokens + num_new == s.num_tokens();
    plan.seqs.push_back(describe(s, num_new, do_sample));
    const auto k = static_cast<int32_t>(drafts.size());
    if (k > 0) {
      plan.seqs.back().token_ids.insert(plan.seqs.back().token_ids.end(), drafts.begin(),
                                        drafts.end());
      plan.seqs.back().num_draft_tokens = k;
    }
    if (do_sample) plan.seqs.back().num_draft_proposals = num_draft_proposals(s);
    step.entries.push_back({s.seq_id, num_new, do_sample, std::move(drafts)});
    plan.num_scheduled_tokens += num_new + k;
    budget -= num_new + k;
  };

  // SLO: while streams decode, prefill chunks are cut to keep the TPOT target.
  slo_planner::prefill_limiter limiter = begin_slo_plan();

  // 1. Running sequences, oldest first; make room by preempting the newest idle one.
  for (size_t i = 0; i < running_.size() && budget > 0 && plan.seqs.size() < max_seqs;) {
    const uint64_t id = running_[i];
    if (is_busy(id) || !is_eligible(id)) {  // in another plan, or waiting out a quarantine
      ++i;
      continue;
    }
    sequence& s = seqs_.at(id);
    int32_t num_new = chunk_size(s, budget);
    if (s.num_tokens() - s.num_computed_tokens > 1) {  // a prefill chunk, not a decode
      num_new = limiter.limit(s.num_computed_tokens, num_new);
      if (num_new == 0) {  // no room left under the TPOT target in this plan
        ++i;
        continue;
      }
      limiter.add(s.num_computed_tokens, num_new);
    }
    TROUPE_ASSERT(num_new > 0);  // a running sequence always has a token left to compute
    std::vector<int32_t> drafts = propose_drafts(s, num_new, budget);
    const auto num_drafts = static_cast<int32_t>(drafts.size());
    // Drafts lengthen the step like a chunk does: the TPOT limiter must count them.
    if (num_drafts > 0) limiter.add(s.num_computed_tokens + num_new, num_drafts);
    const int32_t need = std::max(0, blocks_for(s.num_computed_tokens + num_new + num_drafts) -
                                         static_cast<int32_t>(s.block_table.size()));
    bool self_preempted = false;
    while (!pool_.can_allocate(need)) {
      // Sequences after i that are busy keep their blocks (their plan is writing them); s itself
      // is idle, so a victim always exists. With one plan in flight this is running_.back().
      auto newest_idle = std::find_if(running_.rbegin(), running_.rend(),
                                      [&](uint64_t v) { return !is_busy(v); });
      const uint64_t victim = *newest_idle;
      preempt(victim);
      preempted = true;
      if (victim == id) {
        self_preempted = true;
        break;
      }
    }
    if (self_preempted) break;
    auto ids = pool_.allocate(need);
    s.block_table.insert(s.block_table.end(), ids.begin(), ids.end());
    add(s, num_new, std::move(drafts));
    ++i;
  }

  // 2. Admission, only when nobody had to give up blocks this step (otherwise the newcomer
  // would take the blocks a preempted sequence needs to come back).
  if (!preempted) {
    // The order matters only to an admission this plan can still make.
    if (slo_.has_ttft_target() && budget > 0 && plan.seqs.size() < max_seqs)
      order_waiting_for_slo();
    if (is_quarantined()) front_suspect();
    int32_t reserved = reserved_seats();
    while (!waiting_.empty() && budget > 0 && plan.seqs.size() < max_seqs) {
      if (!is_eligible(waiting_.front())) break;
      sequence& s = seqs_.at(waiting_.front());
      const request_entry& r = requests_.at(s.request_id);
      const int32_t seats = (s.choice == 0 && !r.forked) ? r.req.n : 1;
      if (static_cast<int32_t>(running_.size()) + reserved + seats > cfg_.max_num_seqs) break;
      std::vector<uint64_t> hit_hashes;
      std::vector<int32_t> hits = find_prefix_hits(s, hit_hashes);
      const auto num_hits = static_cast<int32_t>(hits.size());
      const int32_t num_cached_tokens = num_hits * cfg_.block_size;
      const int32_t num_new = limiter.limit(
          num_cached_tokens,
          std::min({s.num_tokens() - num_cached_tokens,
                    cfg_.long_prefill_token_threshold > 0 ? cfg_.long_prefill_token_threshold
                                                          : cfg_.max_num_batched_tokens,
                    budget}));
      if (num_new == 0) break;  // no room left under the TPOT target in this plan
      const int32_t need = blocks_for(num_cached_tokens + num_new) - num_hits;
      // Hits that sit in the free list leave it when touched: they count against the room.
      const auto num_free_hits = static_cast<int32_t>(
          std::count_if(hits.begin(), hits.end(), [&](int32_t b) { return pool_.ref_count(b) == 0; }));
      if (!pool_.can_allocate(need + num_free_hits)) {
        if (is_quarantined() && preempt_for_suspect()) continue;
        break;
      }
      for (int32_t b : hits) pool_.touch(b);
      auto ids = pool_.allocate(need);
      s.block_table = std::move(hits);
      s.block_table.insert(s.block_table.end(), ids.begin(), ids.end());
      s.block_hashes = std::move(hit_hashes);
      s.num_computed_tokens = num_cached_tokens;
      stats_.num_prefix_cache_hit_tokens_total += static_cast<uint64_t>(num_cached_tokens);
      // What the client sees as cached_tokens: the first admission only (a preempted request's
      // recompute hitting its own blocks is not the prompt being served from cache).
      if (request_entry& re = requests_.at(s.request_id);
          s.choice == 0 && re.num_cached_prompt_tokens < 0)
        re.num_cached_prompt_tokens = std::min(num_cached_tokens, s.num_prompt_tokens);
      waiting_.pop_front();
      running_.push_back(s.seq_id);
      reserved += seats - 1;
      limiter.add(num_cached_tokens, num_new);
      add(s, num_new);
    }
  }

  if (plan.seqs.empty()) return plan;  // freed ids wait for the next real plan
  plan.step_id = next_step_id_++;
  step.step_id = plan.step_id;
  plan.freed_seq_ids = std::move(freed_seq_ids_);
  freed_seq_ids_.clear();
  for (const scheduled_entry& e : step.entries) busy_.insert(e.seq_id);
  in_flight_.emplace(plan.step_id, std::move(step));
  slo_.on_plan(plan);
  ++stats_.num_steps_total;
  size_t bucket = 0;
  while (bucket + 1 < num_batch_buckets && (size_t{1} << bucket) < plan.seqs.size()) ++bucket;
  ++stats_.batch_num_seqs_buckets[bucket];
  return plan;
}

void scheduler_policy::fork_choices(request_entry& r, const sequence& leader) {
  // Children share every block that lies wholly before the last prompt token and recompute
  // from there: writing their own tokens never touches a shared block, so no copy is needed.
  const int32_t num_shared_blocks = (leader.num_prompt_tokens - 1) / cfg_.block_size;
  TROUPE_ASSERT(static_cast<int32_t>(leader.block_table.size()) >= num_shared_blocks);
  std::vector<int32_t> shared(leader.block_table.begin(),
                              leader.block_table.begin() + num_shared_blocks);
  for (int32_t c = 1; c < r.req.n; ++c) {
    pool_.share(shared);
    sequence child;
    child.seq_id = next_seq_id_++;
    child.request_id = leader.request_id;
    child.choice = c;
    child.token_ids.assign(leader.token_ids.begin(),
                           leader.token_ids.begin() + leader.num_prompt_tokens);
    child.num_prompt_tokens = leader.num_prompt_tokens;
    child.num_computed_tokens = num_shared_blocks * cfg_.block_size;
    child.block_table = shared;
    child.block_hashes.assign(
        leader.block_hashes.begin(),
        leader.block_hashes.begin() +
            std::min<std::ptrdiff_t>(num_shared_blocks,
                                     static_cast<std::ptrdiff_t>(leader.block_hashes.size())));
    child.sampling = r.req.sampling;
    child.sampling.seed = derive_choice_seed(r.req.sampling.seed, c);
    r.seq_ids.push_back(child.seq_id);
    running_.push_back(child.seq_id);
    seqs_.emplace(child.seq_id, std::move(child));
  }
  r.forked = true;
}

void scheduler_policy::end_choice(request_entry& r, int32_t choice, uint64_t seq_id,
                                  finish_reason why, token_event& ev) {
  TROUPE_ASSERT(!r.choice_done[static_cast<size_t>(choice)]);
  if (seq_id != 0) {
    release(seqs_.at(seq_id));
    erase_sequence(seq_id);
    r.seq_ids.erase(std::find(r.seq_ids.begin(), r.seq_ids.end(), seq_id));
  }
  r.choice_done[static_cast<size_t>(choice)] = true;
  ++r.num_choices_done;
  ev.finish = why;
  ev.is_request_done = r.num_choices_done == r.req.n;
}

std::vector<token_event> scheduler_policy::on_step_result(const step_result& result) {
  std::vector<token_event> events;
  auto flight = in_flight_.find(result.step_id);
  if (flight == in_flight_.end()) return events;
  in_flight_step step = std::move(flight->second);
  in_flight_.erase(flight);
  slo_.on_step_result(result);
  for (const scheduled_entry& e : step.entries) busy_.erase(e.seq_id);
  std::unordered_map<uint64_t, const sampled_token*> samples;
  for (const auto& s : result.samples) samples[s.seq_id] = &s;

  for (const scheduled_entry& e : step.entries) {
    auto it = seqs_.find(e.seq_id);
    if (it == seqs_.end()) continue;  // cancelled while the step ran
    sequence& s = it->second;
    const int32_t before = s.num_computed_tokens;
    s.num_computed_tokens += e.num_new_tokens;
    s.is_new = false;
    if (before < s.num_prompt_tokens)
      stats_.num_prompt_tokens_total +=
          static_cast<uint64_t>(std::min(s.num_computed_tokens, s.num_prompt_tokens) - before);
    cache_computed_blocks(s);
    if (!e.do_sample) continue;

    request_entry& r = requests_.at(s.request_id);
    token_event ev;
    ev.request_id = s.request_id;
    ev.choice_index = s.choice;
    ev.num_prompt_tokens = s.num_prompt_tokens;
    ev.num_cached_prompt_tokens = std::max(0, r.num_cached_prompt_tokens);
    auto smp = samples.find(e.seq_id);
    if (smp == samples.end()) {
      ev.num_output_tokens = s.num_output_tokens();
      ev.error_message = "internal error: the executor returned no sample for a sequence";
      end_choice(r, s.choice, s.seq_id, finish_reason::error, ev);
      events.push_back(std::move(ev));
      continue;
    }
    const sampled_token& answer = *smp->second;
    if (!count_accepted_drafts(s, e, answer)) {
      ev.num_output_tokens = s.num_output_tokens();
      ev.error_message = "internal error: the executor accepted drafts that were not sent";
      end_choice(r, s.choice, s.seq_id, finish_reason::error, ev);
      events.push_back(std::move(ev));
      continue;
    }
    ev.prompt_logprobs = answer.prompt_logprobs;  // non-empty once, with choice 0's first
    s.proposed_drafts = answer.proposed_drafts;

    // One sampled token, or with drafts every token the executor emitted: each is checked as
    // if it had come alone, and the first that ends the choice ends it (later ones are dropped).
    finish_reason why = finish_reason::none;
    for (size_t j = 0; j <= answer.next_samples.size() && why == finish_reason::none; ++j) {
      if (j > 0) {  // the previous token was an accepted draft: its K/V was computed
        ++s.num_computed_tokens;
        cache_computed_blocks(s);
      }
      const engine::sample_result& sample = j == 0 ? answer.sample : answer.next_samples[j - 1];
      const int32_t t = sample.token;
      const bool may_stop = s.num_output_tokens() >= r.req.min_tokens;
      s.token_ids.push_back(t);
      if (s.choice == 0 && r.req.n > 1 && !r.forked) fork_choices(r, s);
      ev.num_output_tokens = s.num_output_tokens();

      const bool is_eos = !s.sampling.ignore_eos && contains(cfg_.eos_token_ids, t);
      if (may_stop && (is_eos || contains(r.req.stop_token_ids, t))) {
        why = finish_reason::stop;  // the stop token itself is counted but never streamed
        ev.stop_token_id = t;
      } else {
        ev.token_ids.push_back(t);
        if (s.sampling.top_logprobs >= 0) ev.logprobs.push_back(sample);
        ++stats_.num_generation_tokens_total;
        if (s.num_output_tokens() >= r.req.max_tokens || s.num_tokens() >= cfg_.max_model_len)
          why = finish_reason::length;
      }
    }
    if (why != finish_reason::none) end_choice(r, s.choice, s.seq_id, why, ev);
    events.push_back(std::move(ev));
  }
  clear_suspects(step.entries);
  slo_.on_events(events);
  for (const auto& ev : events)
    if (ev.is_request_done) requests_.erase(ev.request_id);
  return events;
}

std::vector<token_event> scheduler_policy::end_request(uint64_t request_id, finish_reason why,
                                                       const std::string& message) {
  std::vector<token_event> events;
  auto it = requests_.find(request_id);
  if (it == requests_.end()) return events;
  request_entry& r = it->second;
  for (int32_t c = 0; c < r.req.n; ++c) {
    if (r.choice_done[static_cast<size_t>(c)]) continue;
    token_event ev;
    ev.request_id = request_id;
    ev.choice_index = c;
    ev.num_prompt_tokens = static_cast<int32_t>(r.req.prompt_token_ids.size());
    ev.num_cached_prompt_tokens = std::max(0, r.num_cached_prompt_tokens);
    ev.error_message = message;
    uint64_t seq_id = 0;
    for (uint64_t id : r.seq_ids)
      if (seqs_.at(id).choice == c) seq_id = id;
    if (seq_id != 0) ev.num_output_tokens = seqs_.at(seq_id).num_output_tokens();
    end_choice(r, c, seq_id, why, ev);
    events.push_back(std::move(ev));
  }
  requests_.erase(it);
  slo_.on_events(events);
  return events;
}

std::vector<token_event> scheduler_policy::cancel_request(uint64_t request_id) {
  return end_request(request_id, finish_reason::cancelled, "");
}

std::vector<token_event> scheduler_policy::end_all(finish_reason why, const std::string& message) {
  std::vector<uint64_t> ids;
  for (const auto& [id, r] : requests_) ids.push_back(id);
  std::vector<token_event> events;
  for (uint64_t id : ids) {
    auto evs = end_request(id, why, message);
    events.insert(events.end(), std::make_move_iterator(evs.begin()),
                  std::make_move_iterator(evs.end()));
  }
  return events;
}

std::vector<token_event> scheduler_policy::abort_all() {
  return end_all(finish_reason::cancelled, "");
}

std::vector<token_event> scheduler_policy::fail_all(const std::string& reason) {
  return end_all(finish_reason::error, reason);
}

std::vector<token_event> scheduler_policy::replay_all() {
  std::vector<token_event> events = blame_failed_plans();
  std::set<uint64_t> replayed;
  for (uint64_t id : running_) replayed.insert(seqs_.at(id).request_id);
  stats_.num_requests_replayed_total += replayed.size();
  in_flight_.clear();
  busy_.clear();
  // Requeue in admission order at the front, so the oldest work resumes first.
  for (auto it = running_.rbegin(); it != running_.rend(); ++it) {
    release(seqs_.at(*it));
    waiting_.push_front(*it);
  }
  running_.clear();
  pool_.reset_prefix_cache();
  slo_.forget_plans();
  ++stats_.num_executor_replays_total;
  return events;
}

scheduler_stats scheduler_policy::stats() const {
  scheduler_stats s = stats_;
  s.num_waiting_seqs = num_waiting_seqs();
  s.num_running_seqs = num_running_seqs();
  s.num_active_requests = num_active_requests();
  s.num_kv_blocks_total = pool_.num_blocks();
  s.num_kv_blocks_used = pool_.num_used_blocks();
  s.num_kv_blocks_cached = pool_.num_cached_blocks();
  return s;
}

}  // namespace troupe::actors
