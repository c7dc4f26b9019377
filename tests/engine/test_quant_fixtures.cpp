// The default model requantized by llama.cpp's llama-quantize to Q8_0, Q4_K_M, Q5_K_M and Q6_K
// (tools/make-quant-fixtures; never committed): troupe loads each file and runs it in the
// llama.cpp-exact mode with every kernel variant this CPU has (identical logits, bit for bit),
// and its teacher-forced next-token choices agree with the fp32 reference on the dequantized
// weights as closely as the default Q4_1 file's do (docs/ARCHITECTURE.md "Arithmetic modes":
// top-1 0.967 there). A missing fixture is skipped with a warning naming the script.

#include <cmath>
#include <filesystem>
#include <map>
#include <string>

#include "kernels/cpu/kernel_table.hpp"
#include "model_fixture.hpp"

using namespace troupe;
using namespace troupe::engine;
using namespace troupe::engine::testing;

namespace {

std::vector<float> teacher_forced(const llama_model_file& file, const model_options& opts,
                                  const std::vector<int32_t>& tokens) {
  llama_model model(file, test_pool(), opts);
  const int32_t blocks = static_cast<int32_t>(tokens.size() / 16 + 1);
  auto kv = make_storage(model, blocks);
  test_sequence s{iota_blocks(0, blocks), 0};
  s.sampled_from = static_cast<int32_t>(tokens.size());  // a prompt, as llama.cpp feeds it
  return feed(model, kv, s, tokens, 512, true);
}

// The first 6 oracle prompts of at most 100 tokens (tests/data/engine/logits_oracle.json, llama.cpp's
// tokenization of real text; the fixtures share the default model's vocabulary).
std::vector<std::vector<int32_t>> short_prompts() {
  std::vector<std::vector<int32_t>> prompts;
  for (auto& tokens : oracle_prompt_tokens()) {
    if (tokens.size() <= 100 && prompts.size() < 6) prompts.push_back(std::move(tokens));
  }
  return prompts;
}

}  // namespace

TEST_CASE("llama-quantize's K-quant and Q8_0 files of the default model run in exact mode",
          "[model][k_quant]") {
  const auto prompts = short_prompts();
  REQUIRE(prompts.size() == 6);
  for (const char* quant : {"Q8_0", "Q4_K_M", "Q5_K_M", "Q6_K"}) {
    const std::string path =
        std::string(TROUPE_SOURCE_DIR) + "/models/SmolLM2-135M-Instruct." + quant + ".gguf";
    if (!std::filesystem::exists(path)) {
      WARN("skipped " << quant << ": " << path << " is absent (run tools/make-quant-fixtures)");
      continue;
    }
    INFO(path);
    auto loaded = load_llama_model(path);
    if (!loaded.ok()) FAIL(loaded.message());
    const llama_model_file& file = *loaded;
    std::map<std::string, int> types;
    for (const auto& l : file.weights.layers)
      for (const tensor_view* w : {&l.wq, &l.wk, &l.wv, &l.wo, &l.w_gate, &l.w_up, &l.w_down})
        ++types[ggml_type_name(w->type)];
    std::string listed;
    for (const auto& [name, count] : types) listed += name + " x" + std::to_string(count) + " ";
    INFO("layer matrix types: " << listed);
    if (std::string(quant) != "Q8_0")
      CHECK(types.count("Q4_K") + types.count("Q5_K") + types.count("Q6_K") > 0);

    const int64_t V = file.hparams.n_vocab;
    const auto tables = kernels::available_kernel_tables();
    int64_t same = 0, positions = 0;
    for (const auto& tokens : prompts) {
      const auto ref = teacher_forced(file, reference_options(), tokens);
      std::vector<float> first;
      for (const kernels::kernel_table* kt : tables) {
        INFO("variant " << kt->name);
        const auto got = teacher_forced(file, exact_options(kt), tokens);
        if (!first.empty()) {
          CHECK(got == first);  // every variant: the same bits
          continue;
        }
        first = got;
        for (size_t r = 0; r < tokens.size(); ++r)
          same += argmax(ref.data() + r * V, V) == argmax(got.data() + r * V, V);
        positions += static_cast<int64_t>(tokens.size());
      }
    }
    const double top1 = static_cast<double>(same) / static_cast<double>(positions);
    std::printf("%s: exact vs fp32-reference top-1 agreement %.4f over %lld positions (%s)\n",
                quant, top1, static_cast<long long>(positions), listed.c_str());
    CHECK(top1 >= 0.9);
  }
}
