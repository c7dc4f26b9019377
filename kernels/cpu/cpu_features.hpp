// What the CPU we run on can do, read once with cpuid (GCC's __builtin_cpu_supports).
// The fast kernels are compiled per ISA (see kernels/CMakeLists.txt) and picked from this at
// run time, so one binary runs everywhere and uses AVX-512 VNNI where it exists.
#pragma once

namespace troupe::kernels {

struct cpu_features {
  bool avx2_fma = false;     // AVX2 + FMA + F16C
  bool avx512_vnni = false;  // AVX-512 F/BW/VL/DQ + VNNI
  bool amx_int8 = false;     // AMX-TILE + AMX-INT8 in cpuid (Linux must still grant the tiles)
};

// Detected once, on first call; thread-safe. TROUPE_CPU=scalar|avx2 in the environment caps it
// (to test the fallbacks on a machine that has more); TROUPE_CPU=avx512 turns AMX off.
const cpu_features& detected_cpu_features();

}  // namespace troupe::kernels
