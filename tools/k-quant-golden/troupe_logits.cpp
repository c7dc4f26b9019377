// troupe's teacher-forced logits in the llama.cpp-exact mode (fastest kernel variant, 2
// threads, the prompt as one step), in llama_logits.cpp's format; see tools/compare-quant-logits.
// usage: troupe_logits MODEL.gguf PROMPTS.txt OUT.bin
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include "engine/llama_model.hpp"
#include "kernels/cpu/thread_pool.hpp"
#include "memory/llama_model_file.hpp"
#include "memory/paged_kv_storage.hpp"
using namespace troupe;
using namespace troupe::engine;
int main(int argc, char** argv) {
  auto f = load_llama_model(argv[1]);
  if (!f.ok()) { std::fprintf(stderr, "%s\n", f.message().c_str()); return 1; }
  kernels::thread_pool pool(2);
  model_options o; o.mode = arithmetic::llama_cpp_exact;
  llama_model m(*f, pool, o);
  std::ifstream in(argv[2]);
  FILE* out = std::fopen(argv[3], "wb");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<int32_t> toks; std::istringstream ss(line);
    for (int t; ss >> t;) toks.push_back(t);
    const int32_t blocks = toks.size() / 16 + 1;
    auto kv = paged_kv_storage::create(m.kv_shape(blocks, 16));
    std::vector<int32_t> table(blocks); for (int i = 0; i < blocks; ++i) table[i] = i;
    batch_sequence b; b.tokens = toks; b.first_position = 0; b.block_table = table; b.all_logits = true;
    b.sampled_from = toks.size();
    std::vector<float> logits(llama_model::num_logit_rows({&b, 1}) * m.n_vocab());
    auto st = m.forward({&b, 1}, *kv, logits);
    if (!st.ok()) { std::fprintf(stderr, "%s\n", st.message().c_str()); return 1; }
    uint32_t n = toks.size(); std::fwrite(&n, 4, 1, out);
    std::fwrite(logits.data(), 4, logits.size(), out);
  }
  std::fclose(out);
}
