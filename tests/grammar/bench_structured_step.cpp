// The grammar's share of a batch-32 decode step, measured in one run on the real model (hidden:
// `test_grammar "[.bench]"`): 32 sequences, each with its own JSON schema (so every constraint,
// automaton state and mask starts cold), decode in lockstep as the last stage runs them -- a
// forward pass over the 32, then per sequence: feed the grammar its last token, get the mask,
// apply it to the logit row (the same functions as actors/engine_step_executor.cpp), sample.
// Times are CPU time (the process's, all pool threads, for the forward pass; the executor
// thread's for the grammar work), since the machine this runs on is shared. A second round
// repeats the 32 schemas on their now warm constraints. Every output must parse and validate
// against its schema (the masks are checked against brute force in test_token_mask.cpp).
#include <catch2/catch.hpp>

#include <algorithm>
#include <cstdio>
#include <ctime>
#include <string>
#include <vector>

#include "engine/fast_weights.hpp"
#include "engine/llama_model.hpp"
#include "engine/sampler.hpp"
#include "grammar/grammar_constraint_cache.hpp"
#include "grammar/json_schema_gbnf.hpp"
#include "json_subset_validator.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"
#include "tokenizer/tokenizer.hpp"

using namespace troupe;

namespace {

double cpu_ms(clockid_t clock) {
  timespec ts{};
  clock_gettime(clock, &ts);
  return static_cast<double>(ts.tv_sec) * 1e3 + static_cast<double>(ts.tv_nsec) / 1e6;
}

double wall_ms() { return cpu_ms(CLOCK_MONOTONIC); }

// Schema i: the person schema of bench_token_mask.cpp with bounds that differ per i, so the 32
// grammar texts (and their automata) are all distinct.
std::string schema_of(int i) {
  return R"({"type":"object","properties":{"name":{"type":"string","maxLength":)" +
         std::to_string(24 + i) + R"(},
    "age":{"type":"integer","minimum":0,"maximum":)" + std::to_string(100 + i) + R"(},
    "email":{"type":"string","format":"uuid"},
    "tags":{"type":"array","items":{"enum":["red","green","blue"]},"maxItems":5},
    "address":{"type":"object","properties":{"street":{"type":"string"},"zip":{"type":"integer","minimum":)" +
         std::to_string(10000 + i) + R"(,"maximum":99999}},
      "required":["street","zip"],"additionalProperties":false}},
    "required":["name","age","email","tags","address"],"additionalProperties":false})";
}

double median(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[v.size() / 2];
}

struct sequence {
  std::string schema;
  std::vector<int32_t> prompt, output;
  std::vector<int32_t> blocks;
  std::optional<grammar_matcher> matcher;
  std::string text;
  bool done = false;
  bool finished = false;  // ended with an end token
};

}  // namespace

TEST_CASE("grammar share of a batch-32 decode step (cold, then warm)", "[.bench][step]") {
  constexpr int num_seqs = 32, max_tokens = 192, block_size = 16;
  auto file = load_llama_model(TROUPE_DEFAULT_MODEL);
  REQUIRE(file.ok());
  kernels::thread_pool pool(2);
  engine::model_options opts;
  opts.mode = engine::arithmetic::fast;
  auto packed = engine::fast_weights::pack(*file, {0, static_cast<int32_t>(file->hparams.n_layer)});
  REQUIRE(packed.ok());
  opts.packed = *packed;
  engine::llama_model model(*file, pool, opts);
  auto tok = tokenizer::from_gguf(file->file);
  REQUIRE(tok.ok());
  const int32_t n_vocab = static_cast<int32_t>(model.n_vocab());
  std::vector<int32_t> eog;
  for (int32_t id = 0; id < n_vocab; ++id)
    if (tok->is_end_of_generation(id)) eog.push_back(id);
  engine::sampler sampler(n_vocab, eog);

  // What the last stage builds on its first constrained sequence.
  double t0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
  auto vocab = std::make_shared<const token_vocabulary>(token_vocabulary::from_tokenizer(*tok));
  grammar_constraint_cache grammars(vocab, 2 * num_seqs);
  std::printf("vocabulary trie: %.1f ms CPU (once per server)\n", cpu_ms(CLOCK_THREAD_CPUTIME_ID) - t0);

  const int32_t blocks_per_seq = (64 + max_tokens) / block_size + 1;
  auto kv = paged_kv_storage::create(model.kv_shape(num_seqs * blocks_per_seq, block_size));
  REQUIRE(kv.ok());

  for (int round = 0; round < 2; ++round) {
    std::vector<sequence> seqs(num_seqs);
    for (int i = 0; i < num_seqs; ++i) {
      auto& s = seqs[static_cast<size_t>(i)];
      s.schema = schema_of(i);
      s.prompt = tok->encode("<|im_start|>user\nDescribe person number " + std::to_string(i) +
                                 " as JSON.<|im_end|>\n<|im_start|>assistant\n",
                             false, true);
      for (int32_t b = 0; b < blocks_per_seq; ++b) s.blocks.push_back(i * blocks_per_seq + b);
    }
    // Prefill all prompts in one step (not timed: a decode step is what is compared).
    std::vector<engine::batch_sequence> batch(num_seqs);
    std::vector<float> logits(static_cast<size_t>(num_seqs) * static_cast<size_t>(n_vocab));
    for (int i = 0; i < num_seqs; ++i) {
      auto& b = batch[static_cast<size_t>(i)];
      b.seq_id = static_cast<uint64_t>(i);
      b.tokens = seqs[static_cast<size_t>(i)].prompt;
      b.first_position = 0;
      b.block_table = seqs[static_cast<size_t>(i)].blocks;
      b.sampled_from = static_cast<int32_t>(b.tokens.size());
    }
    REQUIRE(model.forward(batch, *kv, logits).ok());

    std::vector<double> step_cpu, step_wall, grammar_per_step, ratio_per_step;
    double compile_cpu = 0, mask_cpu = 0, apply_cpu = 0, grammar_cpu_full = 0, step_cpu_full = 0;
    size_t tokens = 0;
    std::vector<const token_mask*> masks(num_seqs, nullptr);
    for (int step = 0; step < max_tokens; ++step) {
      // Feed each live sequence's grammar its last token and get the next mask (what
      // engine_step_executor::grammar_mask does), timed on this thread.
      const double g0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
      double step_compile = 0;
      for (int i = 0; i < num_seqs; ++i) {
        auto& s = seqs[static_cast<size_t>(i)];
        if (s.done) continue;
        if (!s.matcher) {
          const double c0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
          auto gbnf = json_schema_gbnf(s.schema);
          REQUIRE(gbnf.ok());
          auto c = grammars.get(*gbnf);
          REQUIRE(c.ok());
          s.matcher.emplace(*c);
          step_compile += cpu_ms(CLOCK_THREAD_CPUTIME_ID) - c0;
        } else {
          REQUIRE(s.matcher->accept(s.output.back()).ok());
        }
        auto m = s.matcher->allowed_tokens();
        REQUIRE(m.ok());
        masks[static_cast<size_t>(i)] = *m;
      }
      const double step_mask = cpu_ms(CLOCK_THREAD_CPUTIME_ID) - g0;
      // Apply each mask to its row (timed) and sample (not timed: the sampler runs with or
      // without a grammar).
      double step_apply = 0;
      size_t row = 0;
      for (int i = 0; i < num_seqs; ++i) {
        auto& s = seqs[static_cast<size_t>(i)];
        if (s.done) continue;
        std::span<float> logit_row(logits.data() + row++ * static_cast<size_t>(n_vocab),
                                   static_cast<size_t>(n_vocab));
        const double a0 = cpu_ms(CLOCK_THREAD_CPUTIME_ID);
        apply_token_mask(logit_row, *masks[static_cast<size_t>(i)]);
        step_apply += cpu_ms(CLOCK_THREAD_CPUTIME_ID) - a0;
        engine::sampling_params p;
        p.temperature = 1.0f;
        p.seed = 1000 + static_cast<uint64_t>(i) + 100 * static_cast<uint64_t>(round);
        engine::sample_result r;
        sampler.sample(logit_row, p, engine::token_history{s.prompt, s.output}, r);
        REQUIRE(masks[static_cast<size_t>(i)]->allows(r.token));
        s.output.push_back(r.token);
        ++tokens;
        if (vocab->is_end(r.token)) {
          s.done = true;
          s.finished = true;
        } else {
          s.text += vocab->piece(r.token);
        }
      }
      compile_cpu += step_compile;
      mask_cpu += step_mask - step_compile;
      apply_cpu += step_apply;
      const double grammar = step_mask + step_apply;
      // Decode step for the sequences still going.
      batch.clear();
      for (int i = 0; i < num_seqs; ++i) {
        auto& s = seqs[static_cast<size_t>(i)];
        if (!s.done && static_cast<int>(s.output.size()) >= max_tokens) s.done = true;
        if (s.done) continue;
        engine::batch_sequence b;
        b.seq_id = static_cast<uint64_t>(i);
        b.tokens = std::span<const int32_t>(s.output).last(1);
        b.first_position = static_cast<int32_t>(s.prompt.size() + s.output.size() - 1);
        b.block_table = s.blocks;
        b.sampled_from = static_cast<int32_t>(s.prompt.size());
        batch.push_back(b);
      }
      if (batch.empty()) break;
      const double w0 = wall_ms(), p0 = cpu_ms(CLOCK_PROCESS_CPUTIME_ID);
      REQUIRE(model
                  .forward(batch, *kv,
                           std::span<float>(logits).first(batch.size() *
                                                          static_cast<size_t>(n_vocab)))
                  .ok());
      const double fwd_cpu = cpu_ms(CLOCK_PROCESS_CPUTIME_ID) - p0, fwd_wall = wall_ms() - w0;
      // Steps where all 32 sequences were live on both sides: the batch-32 figures.
      if (row == static_cast<size_t>(num_seqs) && batch.size() == static_cast<size_t>(num_seqs)) {
        step_cpu.push_back(fwd_cpu);
        step_wall.push_back(fwd_wall);
        grammar_per_step.push_back(grammar);
        ratio_per_step.push_back(grammar / fwd_cpu);
        grammar_cpu_full += grammar;
        step_cpu_full += fwd_cpu;
      }
    }
    // Every finished output parses and validates against its schema.
    int finished = 0;
    for (auto& s : seqs) {
      if (!s.finished) continue;
      ++finished;
      simdjson::dom::parser sp, vp;
      const simdjson::padded_string schema_text(s.schema), text(s.text);
      simdjson::dom::element schema_root = sp.parse(schema_text).value(), value;
      INFO("output: " << s.text);
      REQUIRE(vp.parse(text).get(value) == simdjson::SUCCESS);
      CHECK(test::validate_json(value, schema_root, schema_root) == "");
    }
    std::printf(
        "round %d (%s): %zu tokens, %d of %d finished (all valid) | grammar CPU per token: "
        "compile %.1f us, accept+mask %.1f us, apply %.1f us, total %.1f us | batch-32 steps: %zu, "
        "decode step median %.1f ms CPU (%.1f ms wall), grammar per step median %.2f ms max "
        "%.2f ms CPU | grammar / step CPU: overall %.1f %%, per step median %.1f %% max %.1f %%\n",
        round, round == 0 ? "32 new schemas, cold" : "same schemas, warm", tokens, finished,
        num_seqs, compile_cpu * 1e3 / static_cast<double>(tokens),
        mask_cpu * 1e3 / static_cast<double>(tokens), apply_cpu * 1e3 / static_cast<double>(tokens),
        (compile_cpu + mask_cpu + apply_cpu) * 1e3 / static_cast<double>(tokens), step_cpu.size(),
        median(step_cpu), median(step_wall), median(grammar_per_step),
        grammar_per_step.empty() ? 0.0 : *std::max_element(grammar_per_step.begin(), grammar_per_step.end()),
        100 * grammar_cpu_full / step_cpu_full, 100 * median(ratio_per_step),
        ratio_per_step.empty() ? 0.0 : 100 * *std::max_element(ratio_per_step.begin(), ratio_per_step.end()));
    std::fflush(stdout);
  }
}
