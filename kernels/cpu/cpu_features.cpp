#include "kernels/cpu/cpu_features.hpp"

#include <cstdlib>
#include <string_view>

namespace troupe::kernels {

static cpu_features detect() {
  cpu_features f;
  __builtin_cpu_init();
  f.avx2_fma = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") &&
               __builtin_cpu_supports("f16c");
  f.avx512_vnni = f.avx2_fma && __builtin_cpu_supports("avx512f") &&
                  __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
                  __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vnni");
  f.amx_int8 = f.avx512_vnni && __builtin_cpu_supports("amx-tile") &&
               __builtin_cpu_supports("amx-int8");
  if (const char* cap = std::getenv("TROUPE_CPU")) {
    std::string_view c{cap};
    if (c == "scalar") f = {};
    if (c == "avx2") f.avx512_vnni = f.amx_int8 = false;
    if (c == "avx512") f.amx_int8 = false;
  }
  return f;
}

const cpu_features& detected_cpu_features() {
  static const cpu_features features = detect();
  return features;
}

}  // namespace troupe::kernels
