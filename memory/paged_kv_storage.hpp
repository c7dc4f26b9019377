// paged_kv_storage: the physical K/V pages of every layer an executor runs, indexed by the
// block ids the block allocator (memory/block_pool) hands out.
//
// Layout per layer (the one kernels/cpu/paged_attention.hpp reads and writes): K and V are two
// separate fp16 arrays of shape [num_blocks][n_head_kv][block_size][head_dim]; position p of a
// sequence lives in block block_table[p / block_size], slot p % block_size. All layers share the
// block ids: block b holds the same positions in every layer.
//
// Ownership: the storage owns its memory (one allocation, 64-byte aligned, zero-filled); the
// pointers it hands out are valid until it is destroyed. It knows nothing about which sequence
// owns which block: that is the allocator's business.
//
// Thread-safety: the object is immutable after construction; writers of the pages (store_kv
// inside a forward pass) must be serialised by the caller (one executor thread).
#pragma once

#include <cstdint>
#include <memory>

#include "troupe/result.hpp"

namespace troupe {

struct paged_kv_shape {
  int32_t n_layer = 0;
  int32_t n_head_kv = 0;
  int32_t head_dim = 0;
  int32_t block_size = 16;  // positions per block
  int64_t num_blocks = 0;

  // fp16 elements of one layer's K (or V) pages.
  int64_t layer_elems() const {
    return num_blocks * n_head_kv * static_cast<int64_t>(block_size) * head_dim;
  }
  // Bytes of one block across all layers, K and V.
  int64_t block_bytes() const {
    return 2LL * n_layer * n_head_kv * static_cast<int64_t>(block_size) * head_dim * 2;
  }
};

class paged_kv_storage {
 public:
  // Allocates and zero-fills the pages. Errors (as values) on a non-positive dimension or when
  // the allocation fails.
  static result<paged_kv_storage> create(const paged_kv_shape& shape);

  // How many blocks fit in `budget_bytes` for this shape (num_blocks is ignored).
  static int64_t blocks_for_budget(paged_kv_shape shape, int64_t budget_bytes);

  const paged_kv_shape& shape() const { return shape_; }
  int64_t num_blocks() const { return shape_.num_blocks; }
  int32_t block_size() const { return shape_.block_size; }
  int64_t total_bytes() const { return shape_.block_bytes() * shape_.num_blocks; }

  // fp16 pages of `layer`. REQUIRES: 0 <= layer < n_layer.
  uint16_t* k(int32_t layer) const;
  uint16_t* v(int32_t layer) const;

 private:
  struct free_deleter {
    void operator()(uint16_t* p) const;
  };
  paged_kv_shape shape_;
  std::unique_ptr<uint16_t, free_deleter> data_;
};

}  // namespace troupe
