// step_cost_model: how long a step takes, predicted from what it computes, learnt online from
// the step times the executor stages report (step_result stage_forward_ns + sample_ns).
//
// The model is linear in three features of a step (step_shape):
//     seconds ~ fixed + per_token * num_tokens + per_context * attention_positions
// where attention_positions counts, over every computed token, the positions it attends to
// (a token at position p attends to p + 1). `fixed` is what a step costs whatever it holds
// (reading the weights once, messages, sampling setup), `per_token` the matmuls of one token,
// `per_context` one query-key pair of attention. Prefill chunks bring many tokens; decodes one
// token with a long context each.
//
// Fitting: ridge regression toward a prior (a conservative guess made before any step ran: it
// overestimates a small model on a small CPU, so the first chunks are small rather than long),
// over exponentially forgotten observations (each new one weighs 1, the one before `decay`
// times less), so the fit follows a machine whose load changes. Directions the data does not
// determine yet (e.g. per-token vs per-context cost while only decodes ran) stay near the
// prior. Coefficients are kept >= 0, so the prediction never falls when a step computes more.
//
// Thread-safety: none; one owner (the scheduler policy). Cost: observe() and predict_s() are a
// few dozen flops; the fit is a 3x3 solve, redone lazily on the first prediction after data came.
#pragma once

#include <array>
#include <cstdint>

namespace troupe::actors {

// What one step computes, as far as its cost goes.
struct step_shape {
  int64_t num_tokens = 0;           // prefill chunk tokens + decode tokens
  double attention_positions = 0;   // sum over computed tokens of the positions each attends to

  // Adds a chunk of `num_tokens` tokens starting at position `first_position`.
  void add_chunk(int64_t first_position, int64_t num_new_tokens);
};

class step_cost_model {
 public:
  struct coefficients {
    double fixed_s = 0;
    double per_token_s = 0;
    double per_context_s = 0;  // per attention position
  };
  // The prior: 10 ms a step, 4 ms a token, 1 us a query-key pair (all layers and heads). The
  // default 135M model on two quiet cores: a 2,000-token prompt alone takes ~6.2 s, i.e. about
  // 2.5 ms a token plus ~0.5 us a pair (attention is ~70 kflop a pair against ~270 Mflop of
  // matmuls a token). Other models and machines are corrected after a few steps.
  static constexpr coefficients default_prior() { return {10e-3, 4e-3, 1e-6}; }

  // prior_weight: how much the prior counts, in observations (0.1: a tenth of one, so that a
  // few steps outweigh it); decay: each observation's weight falls by this factor per newer one
  // (0.99: the last ~100 steps count).
  explicit step_cost_model(coefficients prior = default_prior(), double decay = 0.99,
                           double prior_weight = 0.1);

  // A step of shape `s` took `seconds` (> 0; others are ignored).
  void observe(const step_shape& s, double seconds);
  double predict_s(const step_shape& s) const;

  // The largest n in [0, max_tokens] such that a chunk of n tokens at first_position, added to
  // `base`, is predicted to take at most max_s. 0 when even one token does not fit.
  int64_t max_chunk_tokens(const step_shape& base, int64_t first_position, int64_t max_tokens,
                           double max_s) const;

  // Predicted seconds to prefill `num_tokens` tokens from position `first_position` in one step.
  double predict_prefill_s(int64_t first_position, int64_t num_tokens) const;

  coefficients fit() const;
  int64_t num_observations() const { return num_observations_; }

 private:
  static std::array<double, 3> features(const step_shape& s);
  void refit() const;

  coefficients prior_;
  double decay_;
  double prior_weight_;
  std::array<std::array<double, 3>, 3> xtx_{};  // decayed sum of x x^T
  std::array<double, 3> xty_{};                 // decayed sum of x y
  int64_t num_observations_ = 0;
  mutable bool is_fit_stale_ = true;
  mutable coefficients fit_{};
};

}  // namespace troupe::actors
