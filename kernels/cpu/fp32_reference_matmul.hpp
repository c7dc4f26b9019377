// fp32_reference_matmul: y = x · Wᵀ with fp32 activations and the weights dequantized to fp32
// (memory/dequantize.hpp) -- no activation rounding at all. The yardstick of the arithmetic
// modes (engine/arithmetic.hpp): both the fast and the llama.cpp-exact mode are judged by how
// far their logits are from a forward pass built on this. Plain C++ (16 independent fp32
// partial sums per dot, which the compiler vectorizes, combined in double); slow, but a weight
// row is dequantized once per call and reused for every token.
// Threading: the calling thread drives `pool` (rows split over it).
#pragma once

#include <cstdint>

#include "kernels/cpu/thread_pool.hpp"
#include "memory/tensor_view.hpp"

namespace troupe::kernels {

void fp32_reference_matmul(const tensor_view& w, const float* x, int64_t n_tokens, float* y,
                           thread_pool& pool);

}  // namespace troupe::kernels
