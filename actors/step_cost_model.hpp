// step_cost_model: how long a step takes, predicted from what it computes, learnt online from
// the step times the executor stages report (step_result stage_forward_ns + sample_ns).
//
// The model is linear in four features of a step (step_shape):
//     seconds ~ fixed + per_token * num_tokens + per_pair * attention_pairs
//               + per_kv_position * kv_positions
// `fixed` is what a step costs whatever it holds (reading the weights once, messages, sampling
// setup), `per_token` the matmuls of one token, `per_pair` the arithmetic of one query-key pair
// of attention (a token at position p attends to p + 1 positions), `per_kv_position` reading
// one position's K/V pages (every layer), which a sequence does once a step for its whole
// context however many of its tokens the step computes. The last feature is what the model
// lacked before (2026-12-07): a chunk of a few tokens at position 2,000 reads ~46 MB of fp16
// K/V pages for a handful of pairs, so charging attention per pair alone mispriced small chunks
// and decodes at long contexts (fit to tools/step_shapes' steps, it predicted decodes at
// 1,000-2,000 positions at 0.45x their time; with the K/V feature, 1.04x).
//
// Fitting: ridge regression toward a prior (a guess made before any step ran, measured on the
// default model on two Zen 4 cores and rounded up, so the first chunks are small rather than
// long), over exponentially forgotten observations (each new one weighs 1, the one before
// `decay` times less), so the fit follows a machine whose load changes. The ridge keeps the
// prior's proportions more than its values: what the data does not determine yet (while only
// decodes ran: how `fixed` and `per_token` share a step of always four tokens) is scaled with
// what it does, instead of one coefficient going to zero and another absorbing its cost (a
// plain ridge did: after decodes alone it fit fixed = 0, and the chunks came out half as big). Coefficients are kept
// >= 0, so the prediction never falls when a step computes more; a zero prior keeps its
// coefficient at zero.
//
// Thread-safety: none; one owner (the scheduler policy). Cost: observe() and predict_s() are a
// few dozen flops; the fit is a 4x4 solve, redone lazily on the first prediction after data came.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>

namespace troupe::actors {

// What one step computes, as far as its cost goes.
struct step_shape {
  int64_t num_tokens = 0;          // prefill chunk tokens + decode tokens
  double attention_pairs = 0;      // sum over computed tokens of the positions each attends to
  double kv_positions = 0;         // sum over sequences of the positions whose K/V they read

  // Adds one sequence's chunk of `num_new_tokens` tokens starting at position `first_position`
  // (a decode: one token).
  void add_chunk(int64_t first_position, int64_t num_new_tokens);
};

class step_cost_model {
 public:
  static constexpr size_t num_features = 4;
  struct coefficients {
    double fixed_s = 0;
    double per_token_s = 0;
    double per_pair_s = 0;         // per query-key pair
    double per_kv_position_s = 0;  // per K/V position a sequence reads in a step
  };
  // The prior: 10 ms a step, 4 ms a token, 2 us a query-key pair, 4 us a K/V position (each
  // over all layers and heads). Measured for the default 135M model on the shared 2-core Zen 4
  // at load 6-12 (2026-12-08; fits of tools/step_shapes and of the server's step.cost lines):
  // 3-8 ms a step, 1.9-3.6 ms a token, 1.5-2.4 us a pair, 5-10 us a K/V position (a
  // 2,000-token prompt alone ran ~4x faster on the quiet machine). A prior above a quiet truth
  // cuts the first chunks small rather than long; the steps correct it (while only decodes ran,
  // pairs and K/V positions are the same numbers: both are scaled as the prior splits them).
  static constexpr coefficients default_prior() { return {10e-3, 4e-3, 2e-6, 4e-6}; }

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
  using vec = std::array<double, num_features>;
  static vec features(const step_shape& s);
  void refit() const;

  coefficients prior_;
  double decay_;
  double prior_weight_;
  std::array<vec, num_features> xtx_{};  // decayed sum of x x^T
  vec xty_{};                            // decayed sum of x y
  int64_t num_observations_ = 0;
  mutable bool is_fit_stale_ = true;
  mutable coefficients fit_{};
};

}  // namespace troupe::actors
