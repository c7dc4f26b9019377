#include "memory/paged_kv_storage.hpp"

#include <cstdlib>
#include <cstring>
#include <string>

namespace troupe {

void paged_kv_storage::free_deleter::operator()(uint16_t* p) const { std::free(p); }

result<paged_kv_storage> paged_kv_storage::create(const paged_kv_shape& shape) {
  if (shape.n_layer <= 0 || shape.n_head_kv <= 0 || shape.head_dim <= 0 ||
      shape.block_size <= 0 || shape.num_blocks <= 0)
    return error{"paged K/V storage: every dimension must be positive (layers " +
                 std::to_string(shape.n_layer) + ", kv heads " + std::to_string(shape.n_head_kv) +
                 ", head dim " + std::to_string(shape.head_dim) + ", block size " +
                 std::to_string(shape.block_size) + ", blocks " +
                 std::to_string(shape.num_blocks) + ")"};
  // Layer l's K pages start at 2*l*layer_elems, its V pages right after.
  const uint64_t bytes = static_cast<uint64_t>(shape.block_bytes()) * shape.num_blocks;
  const uint64_t rounded = (bytes + 63) / 64 * 64;  // aligned_alloc wants a multiple of 64
  void* mem = std::aligned_alloc(64, rounded);
  if (!mem)
    return error{"paged K/V storage: cannot allocate " + std::to_string(bytes) + " bytes"};
  // Zero-filled so a read of a never-written slot is a finite 0, not garbage (such a read
  // would be a scheduler bug, but it must not turn into NaNs that hide the bug's origin).
  std::memset(mem, 0, rounded);
  paged_kv_storage s;
  s.shape_ = shape;
  s.data_.reset(static_cast<uint16_t*>(mem));
  return s;
}

int64_t paged_kv_storage::blocks_for_budget(paged_kv_shape shape, int64_t budget_bytes) {
  const int64_t per_block = shape.block_bytes();
  return per_block > 0 ? budget_bytes / per_block : 0;
}

uint16_t* paged_kv_storage::k(int32_t layer) const {
  TROUPE_ASSERT(layer >= 0 && layer < shape_.n_layer);
  return data_.get() + 2 * static_cast<int64_t>(layer) * shape_.layer_elems();
}

uint16_t* paged_kv_storage::v(int32_t layer) const {
  return k(layer) + shape_.layer_elems();
}

}  // namespace troupe
