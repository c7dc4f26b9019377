#include "kernels/cpu/fp32_reference_matmul.hpp"

#include <algorithm>
#include <vector>

#include "memory/dequantize.hpp"

namespace troupe::kernels {

void fp32_reference_matmul(const tensor_view& w, const float* x, int64_t n_tokens, float* y,
                           thread_pool& pool) {
  const int64_t k = w.ne0, n = w.ne1;
  constexpr int64_t rows_per_task = 16;
  const int64_t n_tasks = (n + rows_per_task - 1) / rows_per_task;
  pool.parallel_for(n_tasks, [&](int64_t task, int) {
    thread_local std::vector<float> wf;  // one row, reused by this pool thread
    wf.resize(static_cast<size_t>(k));
    for (int64_t r = task * rows_per_task; r < std::min(n, (task + 1) * rows_per_task); ++r) {
      dequantize_row(w.type, w.row(r), wf.data(), k);
      for (int64_t t = 0; t < n_tokens; ++t) {
        const float* xt = x + t * k;
        float lanes[16] = {};
        int64_t i = 0;
        for (; i + 16 <= k; i += 16)
          for (int j = 0; j < 16; ++j) lanes[j] += wf[static_cast<size_t>(i + j)] * xt[i + j];
        double s = 0;
        for (float l : lanes) s += l;
        for (; i < k; ++i) s += static_cast<double>(wf[static_cast<size_t>(i)]) * xt[i];
        y[t * n + r] = static_cast<float>(s);
      }
    }
  });
}

}  // namespace troupe::kernels
