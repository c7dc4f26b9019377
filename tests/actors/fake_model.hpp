// A deterministic fake "model" behind the step_executor interface, for scheduler tests.
//
// It keeps real paged state: every computed token is written into a physical slot array
// indexed by (block id, offset), and a sample is a function of the context read back through
// the sequence's block table -- not of what the plan claims. So a wrong block table, a shared
// block overwritten by a fork, a stale prefix-cache hit or a lost K/V after a restart changes
// the output, and the tests comparing outputs catch it. Protocol breaches (a sequence that is
// not new but unknown, history that disagrees with the slots) are returned as errors.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/step_executor.hpp"

namespace troupe::actors::testing {

// next token = f(seed, context); a small vocabulary so EOS / stop ids actually occur.
// copy_period > 0 (speculative decoding tests): four times in five the token copy_period back
// is repeated, so prompt-lookup drafts are often, but not always, right.
inline int32_t fake_next_token(uint64_t seed, const std::vector<int32_t>& context,
                               int32_t vocab_size, int32_t copy_period = 0) {
  uint64_t h = seed * 0x9E3779B97F4A7C15ull + 0x1234567ull;
  for (int32_t t : context) h = (h ^ static_cast<uint64_t>(t + 1)) * 0x100000001B3ull;
  h ^= h >> 29;
  const auto size = static_cast<int32_t>(context.size());
  if (copy_period > 0 && size >= copy_period && h % 5 != 0)
    return context[static_cast<size_t>(size - copy_period)];
  return static_cast<int32_t>(h % static_cast<uint64_t>(vocab_size));
}

class fake_step_executor : public step_executor {
 public:
  fake_step_executor(int32_t num_blocks, int32_t block_size, int32_t vocab_size)
      : block_size_(block_size),
        vocab_size_(vocab_size),
        slots_(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size), -1) {}

  int32_t fail_at_step = -1;  // run_step number (0-based) that returns an error
  int32_t num_steps = 0;
  int32_t copy_period = 0;    // fake_next_token's

  result<step_result> run_step(const step_plan& plan) override {
    if (num_steps++ == fail_at_step) return error{"fake device failure"};
    for (uint64_t id : plan.freed_seq_ids) seqs_.erase(id);
    step_result out;
    out.step_id = plan.step_id;
    for (const scheduled_seq& s : plan.seqs) {
      if (s.is_new) {
        seqs_[s.seq_id] = {s.sampling.seed, s.history_token_ids};
        for (int32_t p = 0; p < s.first_position; ++p)
          if (slot(s, p) != s.history_token_ids[static_cast<size_t>(p)])
            return error{"cached K/V disagrees with the history at position " +
                         std::to_string(p)};
      }
      auto it = seqs_.find(s.seq_id);
      if (it == seqs_.end()) return error{"unknown sequence " + std::to_string(s.seq_id)};
      auto& st = it->second;
      // Rejected drafts of the last step are dropped (engine_step_executor does the same).
      const auto num_known = static_cast<int32_t>(st.history.size());
      if (num_known > s.first_position && num_known - s.first_position <= st.num_unverified)
        st.history.resize(static_cast<size_t>(s.first_position));
      st.num_unverified = s.num_draft_tokens;
      if (static_cast<int32_t>(st.history.size()) != s.first_position)
        return error{"first_position does not follow the computed tokens"};
      for (size_t i = 0; i < s.token_ids.size(); ++i) {
        slot(s, s.first_position + static_cast<int32_t>(i)) = s.token_ids[i];
        st.history.push_back(s.token_ids[i]);
      }
      if (s.do_sample) {
        // Verification as the engine does it: the token after each position, read back
        // through the block table, stopping at the first draft that differs.
        const auto k = static_cast<int32_t>(s.num_draft_tokens);
        const auto num_context = static_cast<int32_t>(st.history.size()) - k;
        std::vector<int32_t> context;
        for (int32_t p = 0; p < num_context; ++p) context.push_back(slot(s, p));
        sampled_token t;
        t.seq_id = s.seq_id;
        t.sample.token = fake_next_token(st.seed, context, vocab_size_, copy_period);
        t.sample.logprob = -0.5f;
        int32_t last = t.sample.token;
        for (int32_t j = 0; j < k && last == s.token_ids[s.token_ids.size() - k + j]; ++j) {
          context.push_back(slot(s, num_context + j));
          engine::sample_result next;
          next.token = last = fake_next_token(st.seed, context, vocab_size_, copy_period);
          next.logprob = -0.5f;
          t.next_samples.push_back(next);
        }
        out.samples.push_back(t);
      }
    }
    return out;
  }

 private:
  struct seq_state {
    uint64_t seed = 0;
    std::vector<int32_t> history;
    int32_t num_unverified = 0;
  };
  int32_t& slot(const scheduled_seq& s, int32_t pos) {
    auto b = static_cast<size_t>(s.block_table.at(static_cast<size_t>(pos / block_size_)));
    return slots_.at(b * static_cast<size_t>(block_size_) + static_cast<size_t>(pos % block_size_));
  }

  int32_t block_size_;
  int32_t vocab_size_;
  std::vector<int32_t> slots_;
  std::map<uint64_t, seq_state> seqs_;
};

// What one request alone produces from the fake model (the "ran alone" reference).
inline std::vector<int32_t> fake_reference_output(std::vector<int32_t> prompt, uint64_t seed,
                                                  int32_t max_tokens, int32_t vocab_size,
                                                  const std::vector<int32_t>& stop_ids,
                                                  int32_t copy_period = 0) {
  std::vector<int32_t> out;
  for (int32_t i = 0; i < max_tokens; ++i) {
    int32_t t = fake_next_token(seed, prompt, vocab_size, copy_period);
    bool stop = false;
    for (int32_t s : stop_ids) stop = stop || s == t;
    if (stop) break;
    out.push_back(t);
    prompt.push_back(t);
  }
  return out;
}

}  // namespace troupe::actors::testing
