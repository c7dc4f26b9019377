// prompt_logprobs: the raw log-softmax of a logits row, and the gatherer that turns the logits of
// a prompt computed in chunks into one logprob per prompt token after the first -- the same
// answer whatever the chunking, handed out once, and never an incomplete one.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstdint>
#include <random>
#include <vector>

#include "actors/prompt_logprobs.hpp"

using namespace troupe;
using namespace troupe::actors;

namespace {

constexpr int64_t vocab = 11;

// Logits of position p: deterministic, distinct per position.
std::vector<float> logits_at(int32_t p) {
  std::mt19937 rng(static_cast<uint32_t>(1000 + p));
  std::normal_distribution<float> d(0.0f, 3.0f);
  std::vector<float> row(vocab);
  for (auto& v : row) v = d(rng);
  return row;
}

// Runs a prompt of `tokens` through the gatherer in chunks of the given sizes, the way the
// executor does: rows for every token when it wants them, else only the chunk's last row.
std::vector<engine::sample_result> gather(const std::vector<int32_t>& tokens,
                                          const std::vector<int32_t>& chunks, int32_t top_n) {
  const auto num_prompt = static_cast<int32_t>(tokens.size());
  prompt_logprobs_gatherer g(top_n, num_prompt, 0);
  std::vector<int32_t> so_far;
  int32_t pos = 0;
  for (int32_t len : chunks) {
    so_far.insert(so_far.end(), tokens.begin() + pos, tokens.begin() + pos + len);
    std::vector<float> rows;
    const bool all = g.wants_all_logits(pos);
    for (int32_t j = all ? 0 : len - 1; j < len; ++j) {
      auto r = logits_at(pos + j);
      rows.insert(rows.end(), r.begin(), r.end());
    }
    g.add_chunk(pos, len, rows.data(), vocab, so_far);
    pos += len;
  }
  REQUIRE(pos == num_prompt);
  return g.take(so_far.size());
}

}  // namespace

TEST_CASE("a prompt logprob is the log-softmax of the raw row, top N descending",
          "[actors][prompt_logprobs]") {
  std::vector<float> row{1.0f, 3.0f, 3.0f, -2.0f, 0.5f};
  engine::sample_result r;
  compute_prompt_logprob(row, 4, 3, r);
  double z = 0;
  for (float v : row) z += std::exp(static_cast<double>(v));
  CHECK(r.token == 4);
  CHECK(r.logprob == Approx(0.5 - std::log(z)).epsilon(1e-6));
  REQUIRE(r.top.size() == 3);
  CHECK(r.top[0].token == 1);  // a tie: the lower id first
  CHECK(r.top[1].token == 2);
  CHECK(r.top[2].token == 0);
  CHECK(r.top[0].logprob == Approx(3.0 - std::log(z)).epsilon(1e-6));
  compute_prompt_logprob(row, 0, 0, r);
  CHECK(r.top.empty());
}

TEST_CASE("the gatherer gives the same logprobs whatever the chunking",
          "[actors][prompt_logprobs]") {
  const std::vector<int32_t> prompt{3, 7, 1, 1, 9, 0, 4};
  const auto whole = gather(prompt, {7}, 2);
  REQUIRE(whole.size() == prompt.size() - 1);
  for (size_t i = 0; i < whole.size(); ++i) {
    engine::sample_result want;
    compute_prompt_logprob(logits_at(static_cast<int32_t>(i)), prompt[i + 1], 2, want);
    CHECK(whole[i].token == prompt[i + 1]);
    CHECK(whole[i].logprob == want.logprob);
    REQUIRE(whole[i].top.size() == 2);
    CHECK(whole[i].top[0].token == want.top[0].token);
  }
  for (const auto& chunks : std::vector<std::vector<int32_t>>{
           {1, 6}, {3, 4}, {6, 1}, {1, 1, 1, 1, 1, 1, 1}, {2, 2, 2, 1}}) {
    INFO("chunks of " << chunks.size());
    auto got = gather(prompt, chunks, 2);
    REQUIRE(got.size() == whole.size());
    for (size_t i = 0; i < got.size(); ++i) {
      CHECK(got[i].token == whole[i].token);
      CHECK(got[i].logprob == whole[i].logprob);
    }
  }
}

TEST_CASE("the gatherer answers once, and only for a prompt computed from position 0",
          "[actors][prompt_logprobs]") {
  CHECK(gather({5}, {1}, 1).empty());  // one token: nothing before it to condition on
  prompt_logprobs_gatherer off(-1, 4, 0);
  CHECK(!off.is_active());
  CHECK(!off.wants_all_logits(0));
  prompt_logprobs_gatherer cached(2, 8, 4);  // prefix hit / forked choice: positions 0-3 unseen
  CHECK(!cached.is_active());
  CHECK(cached.take(8).empty());

  prompt_logprobs_gatherer g(1, 3, 0);
  std::vector<int32_t> toks{1, 2, 3};
  std::vector<float> rows;
  for (int32_t p = 0; p < 3; ++p) {
    auto r = logits_at(p);
    rows.insert(rows.end(), r.begin(), r.end());
  }
  g.add_chunk(0, 3, rows.data(), vocab, toks);
  // A sample after output tokens (a replay) is not the first one: nothing goes out.
  CHECK(g.take(5).empty());
  CHECK(!g.is_active());
  prompt_logprobs_gatherer h(1, 3, 0);
  h.add_chunk(0, 3, rows.data(), vocab, toks);
  CHECK(h.take(3).size() == 2);
  CHECK(h.take(3).empty());  // once
}
