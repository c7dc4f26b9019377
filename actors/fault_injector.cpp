#include "actors/fault_injector.hpp"

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <random>
#include <string>

#include "logging/log.hpp"

namespace troupe::actors {

namespace {

// One stage incarnation with faults: checks the plan, then runs the real executor.
class faulty_step_executor : public step_executor {
 public:
  faulty_step_executor(std::shared_ptr<step_executor> inner, const fault_config& cfg,
                       std::shared_ptr<fault_counters> counters, int32_t stage)
      : inner_(std::move(inner)), cfg_(cfg), counters_(std::move(counters)), stage_(stage) {
    // Each incarnation draws its own jitter, reproducibly from the seed.
    const uint64_t incarnation = counters_->num_stage_incarnations.fetch_add(1);
    rng_.seed(cfg_.seed ^ (0x9e3779b97f4a7c15ull * (incarnation + 1)));
    next_crash_ = draw_interval(cfg_.crash_every_steps);
    next_hang_ = draw_interval(cfg_.hang_every_steps);
  }

  result<step_result> run_step(const step_plan& plan) override {
    if (auto st = before_step(plan); !st) return st.err();
    return inner_->run_step(plan);
  }

  result<stage_output> run_stage(const step_plan& plan, const hidden_states& in) override {
    if (auto st = before_step(plan); !st) return st.err();
    return inner_->run_stage(plan, in);
  }

  void abandon() override {
    {
      std::lock_guard lock(mu_);
      abandoned_ = true;
    }
    cv_.notify_all();
    inner_->abandon();
  }

 private:
  // N + j with j uniform in [0, N/4]: never fewer than N clean steps between two faults, so a
  // replay (which the scheduler runs one suspect request at a time) finishes before the next.
  int64_t draw_interval(int32_t every) {
    if (every <= 0) return 0;
    std::uniform_int_distribution<int64_t> jitter(0, every / 4);
    return every + jitter(rng_);
  }

  status inject(const char* kind, const std::string& why) {
    counters_->num_faults_injected_total.fetch_add(1, std::memory_order_relaxed);
    logging::warn("fault.injected", {{"fault", kind}, {"stage", stage_}, {"step", num_steps_}});
    return error{"injected fault (stage " + std::to_string(stage_) + "): " + why};
  }

  status before_step(const step_plan& plan) {
    ++num_steps_;
    if (cfg_.poison_token >= 0) {
      for (const auto& s : plan.seqs)
        for (int32_t t : s.token_ids)
          if (t == cfg_.poison_token)
            return inject("poison", "the plan computes poison token " +
                                        std::to_string(cfg_.poison_token));
    }
    if (next_crash_ > 0 && num_steps_ >= next_crash_) {
      next_crash_ = num_steps_ + draw_interval(cfg_.crash_every_steps);
      return inject("crash", "crash at step " + std::to_string(num_steps_));
    }
    if (next_hang_ > 0 && num_steps_ >= next_hang_) {
      next_hang_ = num_steps_ + draw_interval(cfg_.hang_every_steps);
      counters_->num_faults_injected_total.fetch_add(1, std::memory_order_relaxed);
      logging::warn("fault.injected", {{"fault", "hang"},
                                       {"stage", stage_},
                                       {"step", num_steps_},
                                       {"hang_ms", cfg_.hang_ms}});
      std::unique_lock lock(mu_);
      cv_.wait_for(lock, std::chrono::milliseconds(cfg_.hang_ms), [&] { return abandoned_; });
      // Abandoned: a fresh stage has taken over (and shares this one's kernel pool): compute
      // nothing more. Otherwise the hang was only a slow step.
      if (abandoned_)
        return error{"injected hang (stage " + std::to_string(stage_) +
                     "): abandoned after the step deadline"};
    }
    return {};
  }

  std::shared_ptr<step_executor> inner_;
  fault_config cfg_;
  std::shared_ptr<fault_counters> counters_;
  int32_t stage_;
  std::mt19937_64 rng_;
  int64_t num_steps_ = 0;
  int64_t next_crash_ = 0;  // 0: off
  int64_t next_hang_ = 0;
  std::mutex mu_;
  std::condition_variable cv_;
  bool abandoned_ = false;
};

}  // namespace

pipeline_factory inject_faults(pipeline_factory stages, fault_config cfg,
                               std::shared_ptr<fault_counters> counters) {
  if (!cfg.is_enabled()) return stages;
  TROUPE_ASSERT(counters != nullptr);
  auto make = std::move(stages.make_stage);
  stages.make_stage = [make = std::move(make), cfg,
                       counters](int32_t stage) -> std::shared_ptr<step_executor> {
    auto inner = make ? make(stage) : nullptr;
    if (!inner) return nullptr;
    return std::make_shared<faulty_step_executor>(std::move(inner), cfg, counters, stage);
  };
  return stages;
}

}  // namespace troupe::actors
