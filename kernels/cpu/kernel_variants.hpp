// Private to kernels/cpu: the SIMD tables, each defined in a file compiled with its ISA flags
// (kernels_avx2.cpp, kernels_avx512.cpp). Calling an entry of a table the CPU cannot run is
// undefined (SIGILL); kernel_table.cpp only hands out tables detected_cpu_features() allows.
#pragma once

#include "kernels/cpu/kernel_table.hpp"

namespace troupe::kernels {

const kernel_table& avx2_kernels();
const kernel_table& avx512_kernels();

}  // namespace troupe::kernels
