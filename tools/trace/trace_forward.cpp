// trace_forward MODEL OUT_DIR [--chunk N] [--decode N] TOKEN...
//
// Feeds TOKEN... to the default engine as one sequence (in chunks of N tokens, default all at
// once) and then N greedy decode steps, writing each intermediate activation the engine traces
// to OUT_DIR/<step>.<name>-<layer>.f32 (raw little-endian floats, rows x row_len, with the
// shape in OUT_DIR/index.txt). tools/trace-diff compares these with llama.cpp's tensors; see
// docs/ARCHITECTURE.md ("Matching llama.cpp bit for bit").
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

#include "engine/llama_model.hpp"

using namespace troupe;

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: trace_forward MODEL OUT_DIR [--chunk N] [--decode N] TOKEN...\n");
    return 2;
  }
  const std::string model_path = argv[1], out_dir = argv[2];
  size_t chunk = 0;
  int decode = 0;
  std::vector<int32_t> tokens;
  for (int i = 3; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--chunk" && i + 1 < argc) chunk = std::stoul(argv[++i]);
    else if (a == "--decode" && i + 1 < argc) decode = std::stoi(argv[++i]);
    else tokens.push_back(std::stoi(a));
  }
  if (tokens.empty()) return 2;
  if (chunk == 0) chunk = tokens.size();
  auto file = load_llama_model(model_path);
  if (!file.ok()) {
    std::fprintf(stderr, "%s\n", file.message().c_str());
    return 1;
  }
  kernels::thread_pool pool(2);
  engine::llama_model model(file.value(), pool);
  auto kv = paged_kv_storage::create(model.kv_shape(256, 16));
  if (!kv.ok()) return 1;
  std::vector<int32_t> blocks(256);
  for (int i = 0; i < 256; ++i) blocks[i] = i;

  std::ofstream index(out_dir + "/index.txt");
  std::string step_name;
  model.set_trace([&](std::string_view name, int32_t layer, const float* data, int64_t rows,
                      int64_t row_len) {
    std::string file_name = step_name;  // appended piecewise: GCC 12 warns on a + b + c here
    file_name += '.';
    file_name.append(name);
    file_name += '-';
    file_name += std::to_string(layer);
    std::ofstream f(out_dir + "/" + file_name + ".f32", std::ios::binary | std::ios::app);
    f.write(reinterpret_cast<const char*>(data), rows * row_len * sizeof(float));
    index << file_name << " " << rows << " " << row_len << "\n";
  });

  const int64_t V = model.n_vocab();
  std::vector<float> logits;
  int32_t n_past = 0;
  auto step = [&](std::span<const int32_t> toks, bool all) {
    engine::batch_sequence b;
    b.tokens = toks;
    b.first_position = n_past;
    b.block_table = blocks;
    b.all_logits = all;
    b.sampled_from = static_cast<int32_t>(tokens.size());
    logits.resize(engine::llama_model::num_logit_rows({&b, 1}) * V);
    status st = model.forward({&b, 1}, kv.value(), logits);
    if (!st.ok()) {
      std::fprintf(stderr, "%s\n", st.message().c_str());
      std::exit(1);
    }
    n_past += static_cast<int32_t>(toks.size());
  };
  step_name = "p";
  std::ofstream prompt_logits(out_dir + "/p.logits.f32", std::ios::binary);
  for (size_t i = 0; i < tokens.size(); i += chunk) {
    step(std::span<const int32_t>(tokens).subspan(i, std::min(chunk, tokens.size() - i)), true);
    prompt_logits.write(reinterpret_cast<const char*>(logits.data()), logits.size() * 4);
  }
  for (int d = 0; d < decode; ++d) {
    const float* last = logits.data() + logits.size() - V;
    int32_t best = 0;
    for (int64_t v = 1; v < V; ++v)
      if (last[v] > last[best]) best = static_cast<int32_t>(v);
    step_name = std::to_string(d);
    step_name.insert(0, 1, 'd');
    const int32_t tok[1] = {best};
    step(tok, false);
    std::ofstream(out_dir + "/" + step_name + ".logits.f32", std::ios::binary)
        .write(reinterpret_cast<const char*>(logits.data()), V * 4);
    std::printf("%d\n", best);
  }
  return 0;
}
