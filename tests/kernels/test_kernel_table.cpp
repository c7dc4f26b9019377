// Variant selection: the reference is always first, the active table is the fastest the CPU
// (and the TROUPE_CPU cap) allows, and every table is complete.
#include <catch2/catch.hpp>

#include <cstdlib>
#include <string>

#include "kernels/cpu/cpu_features.hpp"
#include "kernels/cpu/kernel_table.hpp"

using namespace troupe::kernels;

TEST_CASE("kernel tables: reference first, active is the fastest allowed", "[kernel_table]") {
  const auto tables = available_kernel_tables();
  REQUIRE(!tables.empty());
  REQUIRE(tables.front() == &reference_kernels());
  REQUIRE(&active_kernels() == tables.back());
  const cpu_features& f = detected_cpu_features();
  REQUIRE(tables.size() == 1u + (f.avx2_fma ? 1u : 0u) + (f.avx512_vnni ? 1u : 0u));
  if (const char* cap = std::getenv("TROUPE_CPU")) {
    INFO("TROUPE_CPU=" << cap);
    if (std::string(cap) == "scalar") REQUIRE(std::string(active_kernels().name) == "reference");
    if (std::string(cap) == "avx2") REQUIRE(std::string(active_kernels().name) != "avx512");
  }
  for (const kernel_table* kt : tables) {
    INFO("variant " << kt->name);
    REQUIRE(kt->quantize_row_act != nullptr);
    REQUIRE(kt->gemm_f32 != nullptr);
    REQUIRE(kt->gemm_f16 != nullptr);
    REQUIRE(kt->gemm_bf16 != nullptr);
    REQUIRE(kt->gemm_q4_0 != nullptr);
    REQUIRE(kt->gemm_q4_1 != nullptr);
    REQUIRE(kt->gemm_q8_0 != nullptr);
    REQUIRE(kt->gemm_q5_0 != nullptr);
    REQUIRE(kt->gemm_q5_1 != nullptr);
    REQUIRE(kt->quantize_row_act_k != nullptr);
    REQUIRE(kt->gemm_q4_k != nullptr);
    REQUIRE(kt->gemm_q4_k_x8 != nullptr);
    REQUIRE(kt->gemm_q5_k != nullptr);
    REQUIRE(kt->gemm_q6_k != nullptr);
    REQUIRE(kt->rms_norm != nullptr);
    REQUIRE(kt->silu_mul != nullptr);
    REQUIRE(kt->softmax != nullptr);
    REQUIRE(kt->attention != nullptr);
  }
}
