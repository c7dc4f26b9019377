// Private to kernels/cpu: the SIMD variants of the fast kernels (fast_matmul.hpp), each defined
// in a file compiled with its ISA flags. Calling one the CPU cannot run is undefined (SIGILL);
// available_fast_kernel_tables() only hands out what detected_cpu_features() allows.
#pragma once

#include "kernels/cpu/fast_matmul.hpp"

namespace troupe::kernels {

const fast_kernel_table& avx2_fast_kernels();
const fast_kernel_table& avx512_fast_kernels();

}  // namespace troupe::kernels
