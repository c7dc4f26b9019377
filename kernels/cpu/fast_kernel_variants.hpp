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

}  // namespace troupe::kernels
