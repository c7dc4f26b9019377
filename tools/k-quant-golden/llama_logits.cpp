// Teacher-forced logits of llama.cpp (libllama from the llama-cpp-python sdist, its default
// model parameters: mmap, CPU_REPACK on; 2 threads, no flash attention, the whole prompt in one
// batch) for prompts given as token ids, one prompt per line. Built and run by
// tools/compare-quant-logits; troupe_logits.cpp writes troupe's in the same format.
// usage: llama_logits MODEL.gguf PROMPTS.txt OUT.bin   out: per prompt u32 n, then n * V f32
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>
#include "llama.h"
int main(int argc, char** argv) {
  if (argc != 4) return 2;
  llama_backend_init();
  llama_model_params mp = llama_model_default_params();
  llama_model* model = llama_model_load_from_file(argv[1], mp);
  if (!model) return 1;
  const int V = llama_vocab_n_tokens(llama_model_get_vocab(model));
  std::ifstream in(argv[2]);
  FILE* out = std::fopen(argv[3], "wb");
  std::string line;
  while (std::getline(in, line)) {
    std::vector<llama_token> toks;
    std::istringstream ss(line);
    for (int t; ss >> t;) toks.push_back(t);
    if (toks.empty()) continue;
    llama_context_params cp = llama_context_default_params();
    cp.n_ctx = 2048; cp.n_batch = 2048; cp.n_ubatch = 512; cp.n_threads = 2; cp.n_threads_batch = 2;
    cp.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    llama_context* ctx = llama_init_from_model(model, cp);
    llama_batch b = llama_batch_init((int)toks.size(), 0, 1);
    for (size_t i = 0; i < toks.size(); ++i) {
      b.token[i] = toks[i]; b.pos[i] = (int)i; b.n_seq_id[i] = 1; b.seq_id[i][0] = 0; b.logits[i] = 1;
    }
    b.n_tokens = (int)toks.size();
    if (llama_decode(ctx, b) != 0) return 1;
    uint32_t n = (uint32_t)toks.size();
    std::fwrite(&n, 4, 1, out);
    for (size_t i = 0; i < toks.size(); ++i) std::fwrite(llama_get_logits_ith(ctx, (int)i), 4, V, out);
    llama_batch_free(b);
    llama_free(ctx);
  }
  std::fclose(out);
  llama_model_free(model);
  return 0;
}
