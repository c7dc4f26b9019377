// fast_weights: the packed copies (kernels/cpu/fast_matmul.hpp) of one layer range's matrices,
// made once at load for the fast arithmetic and shared, read-only, by every executor of that
// range (a restarted stage reuses them). Matrices of a type without a packed layout (F32, F16,
// BF16) are left unpacked and run on the exact mode's kernels (still batch invariant).
//
// Memory: about the size of the quantized weights (Q4_1: 320 bytes per 16 x 32 block vs 320 in
// the file; Q8_0: 576 vs 544); the GGUF mapping stays the source and is still read by the
// embedding lookup. bytes() says how much was allocated; troupe serve logs it.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include "engine/llama_model.hpp"
#include "kernels/cpu/fast_matmul.hpp"
#include "memory/llama_model_file.hpp"
#include "troupe/result.hpp"

namespace troupe::engine {

struct fast_layer_weights {
  std::optional<kernels::packed_weight> wq, wk, wv, wo, w_gate, w_up, w_down;
};

class fast_weights {
 public:
  // Packs layers [layers.first, layers.last), and the output matrix when the range ends at the
  // last layer. Errors: allocation failure, a malformed quantized tensor.
  static result<std::shared_ptr<const fast_weights>> pack(const llama_model_file& file,
                                                          layer_range layers);

  layer_range layers() const { return layers_; }
  const fast_layer_weights& layer(int32_t layer) const {
    TROUPE_ASSERT(layer >= layers_.first && layer < layers_.last);
    return per_layer_[static_cast<size_t>(layer - layers_.first)];
  }
  const std::optional<kernels::packed_weight>& output() const { return output_; }
  uint64_t bytes() const { return bytes_; }

 private:
  layer_range layers_;
  std::vector<fast_layer_weights> per_layer_;
  std::optional<kernels::packed_weight> output_;
  uint64_t bytes_ = 0;
};

}  // namespace troupe::engine
