// speculative_sampler: verifies draft tokens against the target model's logits -- the sampling
// half of speculative decoding (the drafts come from actors/draft_proposer.hpp).
//
// A sequence computed its last sampled token t0 and k drafts d1..dk in one forward pass, with
// logits for all k + 1 positions (batch_sequence::all_logits). Row j predicts the token after
// position first_position + j. verify_drafts emits y0, y1, ... where
//   y_j = sampler.sample(row j, history = the sequence's tokens up to position first_position + j)
// and stops after the first y_j that differs from d_{j+1} (or after y_k when every draft held).
// So every emitted token is exactly the token non-speculative decoding would have sampled at
// that position, with the same draw index (sampler.hpp: a pure function of seed and index) and
// the same penalties history: greedy output and seeded sampled output are identical with
// speculation on or off, as long as the logits are (the engine is batch invariant).
//
// Why this is rejection sampling (Leviathan et al. 2023, Chen et al. 2023): prompt lookup is a
// deterministic draft, a point mass q = 1{x = d}. The textbook rule accepts d with probability
// min(1, p(d) / q(d)) = p(d) and on rejection samples the residual norm(max(p - q, 0)), which is
// p with d removed and renormalised. Drawing y ~ p (after every sampling transform: temperature,
// top-k/top-p/min-p, penalties, logit bias) and accepting iff y = d has the same law: P(accept) =
// p(d), and y given y != d is distributed as p restricted to x != d. It also couples the
// speculative draw with the plain one (same u), which is what keeps seeded sampling
// reproducible across the setting.
//
// A draft model that samples (temperature > 0) proposes from a non-degenerate q. Then
// verify_drafts_with_probs applies the general rule: accept d_j with probability
// min(1, p_j(d_j) / q_j(d_j)) (a separate uniform), else emit a token from the residual
// norm(max(p_j - q_j, 0)) and stop; when every draft held, the bonus token is a plain sample of
// row k. The emitted tokens are distributed exactly as p (Leviathan et al. 2023, Theorem 1), and
// acceptance is sum_x min(p, q) >= sum_x p q (what the coupled rule above would get for drafts
// drawn from q). The draws are pure functions of (seed, position) with their own salts, so a
// seeded request still repeats itself; but unlike the point-mass rule, its tokens differ from
// the same request run without speculation (equal in distribution, not draw for draw).
//
// Thread-safety: uses the caller's sampler (its scratch); one caller at a time.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "engine/sampler.hpp"

namespace troupe::engine {

// rows: [drafts.size() + 1, vocab] logits, row j for position first_position + j.
// tokens: the sequence's tokens with the drafts at the end: tokens[first_position] is t0 and
// tokens[first_position + 1 + j] is drafts[j]; tokens before num_prompt_tokens are the prompt.
// out: cleared, then receives the emitted tokens' sample_results (1 to drafts.size() + 1 of
// them); out.size() - 1 drafts were accepted. out keeps its capacity.
// REQUIRES: validate(p) passed; tokens.size() == first_position + 1 + drafts.size();
// first_position + 1 >= num_prompt_tokens (the drafts follow the prompt).
void verify_drafts(sampler& s, std::span<const float> rows, std::span<const int32_t> drafts,
                   const sampling_params& p, std::span<const int32_t> tokens,
                   int32_t num_prompt_tokens, int32_t first_position,
                   std::vector<sample_result>& out);

// The general rule. draft_probs: [drafts.size(), vocab] q rows, row j the distribution drafts[j]
// was drawn from. Everything else as verify_drafts.
// REQUIRES: as verify_drafts; draft_probs.size() == drafts.size() * vocab.
void verify_drafts_with_probs(sampler& s, std::span<const float> rows,
                              std::span<const int32_t> drafts, std::span<const float> draft_probs,
                              const sampling_params& p, std::span<const int32_t> tokens,
                              int32_t num_prompt_tokens, int32_t first_position,
                              std::vector<sample_result>& out);

// The uniform numbers of the general rule and of a draft model's own draws, for the token at
// draw index `index` of a request with `seed`: independent of each other and of draw_uniform's
// (each mixes the seed with its own constant first).
double draw_uniform_draft(uint64_t seed, uint64_t index);
double draw_uniform_accept(uint64_t seed, uint64_t index);
double draw_uniform_residual(uint64_t seed, uint64_t index);

}  // namespace troupe::engine
