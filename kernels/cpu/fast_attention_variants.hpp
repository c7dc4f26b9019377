// Private to kernels/cpu: the SIMD tile kernels of fast_attention.hpp, each defined in a file
// compiled with its ISA flags (fast_attention_avx2.cpp, fast_attention_avx512.cpp) from the
// shared body fast_attention_simd.inl. Calling one the CPU cannot run is undefined (SIGILL);
// fast_attention.cpp only calls those detected_cpu_features() allows.
#pragma once

#include <cstdint>

#include "kernels/cpu/kernel_table.hpp"

namespace troupe::kernels {

// One task: a.n_tok consecutive tokens (<= k_fast_attention_query_tokens) of one sequence times
// the a.n_group query heads of kv head a.kv_head (attention_tile's fields; single_token_order
// is ignored). scratch: at least fast_attention_scratch_floats_*(a.n_group, a.head_dim)
// floats, 64-byte aligned, owned by the calling thread. REQUIRES: head_dim % 16 == 0 (avx512)
// or % 8 == 0 (avx2).
int64_t fast_attention_scratch_floats_avx512(int32_t n_group, int32_t head_dim);
void fast_attention_tile_avx512(const attention_tile& a, float* scratch);
int64_t fast_attention_scratch_floats_avx2(int32_t n_group, int32_t head_dim);
void fast_attention_tile_avx2(const attention_tile& a, float* scratch);

}  // namespace troupe::kernels
