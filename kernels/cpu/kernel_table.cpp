#include "kernels/cpu/kernel_table.hpp"

#include "kernels/cpu/cpu_features.hpp"
#include "kernels/cpu/kernel_variants.hpp"

namespace troupe::kernels {

std::vector<const kernel_table*> available_kernel_tables() {
  std::vector<const kernel_table*> tables{&reference_kernels()};
  const cpu_features& f = detected_cpu_features();
  if (f.avx2_fma) tables.push_back(&avx2_kernels());
  if (f.avx512_vnni) tables.push_back(&avx512_kernels());
  return tables;
}

const kernel_table& active_kernels() {
  static const kernel_table* const active = available_kernel_tables().back();
  return *active;
}

}  // namespace troupe::kernels
