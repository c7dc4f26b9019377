// Private to kernels/cpu: the SIMD variants of the fast kernels (fast_matmul.hpp), each defined
// in a file compiled with its ISA flags. Calling one the CPU cannot run is undefined (SIGILL);
// available_fast_kernel_tables() only hands out what detected_cpu_features() allows.
#pragma once

#include "kernels/cpu/fast_matmul.hpp"

namespace troupe::kernels {

const fast_kernel_table& avx2_fast_kernels();
const fast_kernel_table& avx512_fast_kernels();
// AMX: only after request_amx_permission() returned true (else the first tile instruction
// raises SIGILL). Defined in fast_kernels_amx.cpp.
const fast_kernel_table& amx_fast_kernels();
bool request_amx_permission();
// The AMX variant's two layout steps, which use AVX-512 but no tile instruction, so that tests
// can check them on any AVX-512 CPU against the documented tile semantics (an AMX-less
// development machine cannot run the tiles themselves): a packed record -> its B tile (8 rows
// x 16 columns x 4 bytes, 512 bytes, 64-byte aligned). (amx_fast_kernels().quantize_row, which
// writes the hi/lo planes, uses no tile instruction either.)
void amx_unpack_b_tile(const uint8_t* rec, packed_kind kind, uint8_t* b);

}  // namespace troupe::kernels
