// A deterministic fake pipeline stage behind the step_executor interface, for tests of plans in
// flight, stage chaining and stage restarts.
//
// Like fake_step_executor (fake_model.hpp), every stage keeps real paged state of its own: the
// tokens of each computed position in a slot array indexed by (block id, offset) -- its "K/V".
// Each stage hands on, per scheduled token, a checksum of the context it reads back through the
// block table; the next stage recomputes the checksum from its own slots and fails the step if
// they differ. So a stage that lost its K/V (restarted without a replay), plans reaching the
// stages in different orders, or hidden states attached to the wrong plan all show up as
// errors. The last stage samples exactly as fake_step_executor does, so outputs compare with
// fake_reference_output.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "actors/step_executor.hpp"
#include "fake_model.hpp"

namespace troupe::actors::testing {

class fake_stage_executor : public step_executor {
 public:
  fake_stage_executor(int32_t stage, int32_t num_stages, int32_t num_blocks, int32_t block_size,
                      int32_t vocab_size)
      : stage_(stage),
        num_stages_(num_stages),
        block_size_(block_size),
        vocab_size_(vocab_size),
        slots_(static_cast<size_t>(num_blocks) * static_cast<size_t>(block_size), -1) {}

  int32_t fail_at_step = -1;  // run_stage number (0-based) that returns an error
  int32_t num_steps = 0;
  std::vector<uint64_t> step_ids;  // of the plans it ran, in order

  result<step_result> run_step(const step_plan& plan) override {
    if (num_stages_ != 1) return error{"run_step on one stage of several"};
    auto r = run_stage(plan, hidden_states{});
    if (!r) return r.err();
    return r->result;
  }

  result<stage_output> run_stage(const step_plan& plan, const hidden_states& in) override {
    if (num_steps++ == fail_at_step) return error{"fake device failure"};
    step_ids.push_back(plan.step_id);
    if ((stage_ == 0) != in.data.empty())
      return error{"stage " + std::to_string(stage_) + ": hidden states where none belong"};
    for (uint64_t id : plan.freed_seq_ids) seqs_.erase(id);
    stage_output out;
    out.is_final = stage_ + 1 == num_stages_;
    out.result.step_id = plan.step_id;
    out.hidden.row_size = 1;
    size_t row = 0;
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
      if (static_cast<int32_t>(st.history.size()) != s.first_position)
        return error{"first_position does not follow the computed tokens"};
      for (size_t i = 0; i < s.token_ids.size(); ++i, ++row) {
        const int32_t pos = s.first_position + static_cast<int32_t>(i);
        slot(s, pos) = s.token_ids[i];
        st.history.push_back(s.token_ids[i]);
        const float sum = checksum(s, pos);
        if (stage_ > 0 && (row >= in.data.size() || in.data[row] != sum))
          return error{"stage " + std::to_string(stage_) + ": hidden state of sequence " +
                       std::to_string(s.seq_id) + " position " + std::to_string(pos) +
                       " does not match this stage's K/V"};
        out.hidden.data.push_back(sum);
      }
      if (out.is_final && s.do_sample) {
        std::vector<int32_t> context;
        for (int32_t p = 0; p < static_cast<int32_t>(st.history.size()); ++p)
          context.push_back(slot(s, p));
        sampled_token t;
        t.seq_id = s.seq_id;
        t.sample.token = fake_next_token(st.seed, context, vocab_size_);
        t.sample.logprob = -0.5f;
        out.result.samples.push_back(t);
      }
    }
    if (stage_ > 0 && row != in.data.size())
      return error{"hidden states have more rows than the plan has tokens"};
    out.hidden.num_rows = static_cast<int64_t>(out.hidden.data.size());
    if (out.is_final) out.hidden = {};
    return out;
  }

 private:
  struct seq_state {
    uint64_t seed = 0;
    std::vector<int32_t> history;
  };
  int32_t& slot(const scheduled_seq& s, int32_t pos) {
    auto b = static_cast<size_t>(s.block_table.at(static_cast<size_t>(pos / block_size_)));
    return slots_.at(b * static_cast<size_t>(block_size_) + static_cast<size_t>(pos % block_size_));
  }
  // The context up to `pos` as this stage's slots hold it, folded into an exactly
  // representable float.
  float checksum(const scheduled_seq& s, int32_t pos) {
    uint64_t h = 1469598103934665603ull;
    for (int32_t p = 0; p <= pos; ++p) h = (h ^ static_cast<uint64_t>(slot(s, p) + 2)) * 1099511628211ull;
    return static_cast<float>(h % 16777213u);
  }

  int32_t stage_;
  int32_t num_stages_;
  int32_t block_size_;
  int32_t vocab_size_;
  std::vector<int32_t> slots_;
  std::map<uint64_t, seq_state> seqs_;
};

}  // namespace troupe::actors::testing
