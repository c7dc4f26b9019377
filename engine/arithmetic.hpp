// The engine's arithmetic modes (issue 9). One model file, three ways to compute with it:
//
//   fast             the default: weights repacked once at load (kernels/cpu/fast_matmul.hpp),
//                    16-bit activations, exact integer block sums on the best unit the CPU has,
//                    fp32 attention (kernels/cpu/fast_attention.hpp). Batch invariant; the
//                    matmuls give the same bits on every CPU, the attention on every CPU with
//                    AVX2 (its scalar fallback differs); judged against fp32_reference.
//   llama.cpp-exact  llama.cpp's x86 arithmetic bit for bit (8-bit activations, fp16 softmax
//                    weights, its summation orders): the tokenizer-to-logits oracle tests run in
//                    this mode (docs/ARCHITECTURE.md "Matching llama.cpp bit for bit").
//   fp32-reference   fp32 activations times dequantized weights, plain scalar kernels: the
//                    yardstick both others are measured against. Slow (tests, tools).
#pragma once

#include <optional>
#include <string_view>

namespace troupe::engine {

enum class arithmetic { fast, llama_cpp_exact, fp32_reference };

inline constexpr std::string_view arithmetic_names = "fast, llama.cpp-exact, fp32-reference";

constexpr std::string_view arithmetic_name(arithmetic a) {
  switch (a) {
    case arithmetic::fast: return "fast";
    case arithmetic::llama_cpp_exact: return "llama.cpp-exact";
    case arithmetic::fp32_reference: return "fp32-reference";
  }
  return "?";
}

constexpr std::optional<arithmetic> parse_arithmetic(std::string_view s) {
  for (arithmetic a : {arithmetic::fast, arithmetic::llama_cpp_exact, arithmetic::fp32_reference})
    if (s == arithmetic_name(a)) return a;
  return std::nullopt;
}

}  // namespace troupe::engine
