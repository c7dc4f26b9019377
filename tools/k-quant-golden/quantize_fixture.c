// llama.cpp's quantizer on a whole GGUF: llama_model_quantize, the function its llama-quantize
// tool wraps, with that tool's defaults (no imatrix, llama.cpp's per-tensor type mix for the
// ftype) and --allow-requantize. Built by tools/make-quant-fixtures against libllama from the
// llama-cpp-python sdist (linking llama-quantize itself would also build llama.cpp's `common`
// library: many more minutes on 2 cores, for argument parsing).
//
// usage: quantize_fixture IN.gguf OUT.gguf TYPE     TYPE: Q8_0 | Q4_K_M | Q5_K_M | Q6_K
#include <stdio.h>
#include <string.h>

#include "llama.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: %s IN.gguf OUT.gguf Q8_0|Q4_K_M|Q5_K_M|Q6_K\n", argv[0]);
    return 2;
  }
  static const struct {
    const char* name;
    enum llama_ftype ftype;
  } types[] = {{"Q8_0", LLAMA_FTYPE_MOSTLY_Q8_0},
               {"Q4_K_M", LLAMA_FTYPE_MOSTLY_Q4_K_M},
               {"Q5_K_M", LLAMA_FTYPE_MOSTLY_Q5_K_M},
               {"Q6_K", LLAMA_FTYPE_MOSTLY_Q6_K}};
  llama_model_quantize_params params = llama_model_quantize_default_params();
  params.allow_requantize = true;
  params.nthread = 2;
  int found = 0;
  for (size_t i = 0; i < sizeof types / sizeof types[0]; ++i)
    if (strcmp(argv[3], types[i].name) == 0) {
      params.ftype = types[i].ftype;
      found = 1;
    }
  if (!found) {
    fprintf(stderr, "quantize_fixture: unknown type %s\n", argv[3]);
    return 2;
  }
  llama_backend_init();
  const uint32_t rc = llama_model_quantize(argv[1], argv[2], &params);
  llama_backend_free();
  if (rc != 0) fprintf(stderr, "quantize_fixture: llama_model_quantize failed (%u)\n", rc);
  return rc == 0 ? 0 : 1;
}
