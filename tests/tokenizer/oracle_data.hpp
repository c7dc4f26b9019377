// Test helpers: the default model's tokenizer and the llama.cpp oracle data written by
// tools/gen-tokenizer-oracle (tests/data/tokenizer/oracle.json).
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "tokenizer/tokenizer.hpp"

namespace troupe::test {

struct oracle_case {
  std::string name;
  std::string text;  // raw bytes (may be invalid UTF-8)
  bool valid_utf8 = true;
  std::vector<int32_t> ids_special;  // llama.cpp, parse_special = true, no BOS
  std::vector<int32_t> ids_plain;    // llama.cpp, parse_special = false
  std::string decoded_special;       // llama.cpp detokenize(ids_special, special=true)
  std::string decoded_plain;         // llama.cpp detokenize(ids_special, special=false)
};

struct variant_case {
  std::string name;
  std::vector<int32_t> ids_special, ids_plain, ids_add_special;
};

struct oracle_data {
  std::string llama_cpp_python, model_sha256;
  int32_t n_vocab = 0, bos = -1, eos = -1, eot = -1;
  std::vector<int32_t> eog_ids;
  std::vector<oracle_case> cases;
  std::map<std::string, std::vector<variant_case>> pre_variants;  // by tokenizer.ggml.pre
  std::vector<variant_case> bos_eos_variant;  // add_bos_token = add_eos_token = true
};

// Loaded once; a missing or malformed file fails the calling test.
const oracle_data& oracle();

// The default model's tokenizer spec / tokenizer; fail the test (saying `make model`) when the
// model is missing.
tokenizer_spec default_spec();
const tokenizer& default_tokenizer();

// "[1, 2, 3]" for messages.
std::string ids_to_string(const std::vector<int32_t>& ids);

}  // namespace troupe::test
