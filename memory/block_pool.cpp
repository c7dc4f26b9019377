#include "memory/block_pool.hpp"

#define XXH_INLINE_ALL  // header-only use: no link dependency for the memory module
#include <xxhash.h>

#include <algorithm>

#include "troupe/result.hpp"

namespace troupe {

block_pool::block_pool(int32_t num_blocks, int32_t block_size)
    : block_size_(block_size),
      ref_counts_(static_cast<size_t>(num_blocks), 0),
      prev_(static_cast<size_t>(num_blocks), -1),
      next_(static_cast<size_t>(num_blocks), -1),
      content_(static_cast<size_t>(num_blocks)),
      has_content_(static_cast<size_t>(num_blocks), 0) {
  TROUPE_ASSERT(num_blocks >= 1 && block_size >= 1);
  for (int32_t id = 0; id < num_blocks; ++id) push_free_tail(id);
}

int32_t block_pool::ref_count(int32_t block_id) const {
  TROUPE_ASSERT(block_id >= 0 && block_id < num_blocks());
  return ref_counts_[static_cast<size_t>(block_id)];
}

bool block_pool::is_cached(int32_t block_id) const {
  TROUPE_ASSERT(block_id >= 0 && block_id < num_blocks());
  return has_content_[static_cast<size_t>(block_id)] != 0;
}

std::vector<int32_t> block_pool::allocate(int32_t n) {
  if (!can_allocate(n)) return {};
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) {
    int32_t id = head_;
    unlink_free(id);
    // The block is about to hold new K/V: its old content can no longer be found.
    uncache(id);
    ref_counts_[static_cast<size_t>(id)] = 1;
    ids.push_back(id);
  }
  return ids;
}

void block_pool::free_blocks(std::span<const int32_t> block_ids) {
  for (int32_t id : block_ids) {
    TROUPE_ASSERT(ref_count(id) >= 1);
    if (--ref_counts_[static_cast<size_t>(id)] == 0) push_free_tail(id);
  }
}

void block_pool::share(std::span<const int32_t> block_ids) {
  for (int32_t id : block_ids) {
    TROUPE_ASSERT(ref_count(id) >= 1);
    ++ref_counts_[static_cast<size_t>(id)];
  }
}

uint64_t block_pool::hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> tokens) {
  return XXH3_64bits_withSeed(tokens.data(), tokens.size_bytes(), parent_hash);
}

int32_t block_pool::find_cached_block(uint64_t hash, uint64_t parent_hash,
                                      std::span<const int32_t> tokens) const {
  auto it = cache_.find(hash);
  if (it == cache_.end()) return -1;
  const auto& c = content_[static_cast<size_t>(it->second)];
  // A 64-bit hash can collide; the stored content settles it.
  if (c.parent_hash != parent_hash || !std::equal(c.tokens.begin(), c.tokens.end(),
                                                  tokens.begin(), tokens.end()))
    return -1;
  return it->second;
}

void block_pool::touch(int32_t block_id) {
  TROUPE_ASSERT(is_cached(block_id));
  if (ref_counts_[static_cast<size_t>(block_id)]++ == 0) unlink_free(block_id);
}

void block_pool::cache_full_block(int32_t block_id, uint64_t hash, uint64_t parent_hash,
                                  std::span<const int32_t> tokens) {
  TROUPE_ASSERT(ref_count(block_id) >= 1);
  TROUPE_ASSERT(static_cast<int32_t>(tokens.size()) == block_size_);
  if (is_cached(block_id) || cache_.count(hash) != 0) return;
  auto& c = content_[static_cast<size_t>(block_id)];
  c.hash = hash;
  c.parent_hash = parent_hash;
  c.tokens.assign(tokens.begin(), tokens.end());
  has_content_[static_cast<size_t>(block_id)] = 1;
  cache_.emplace(hash, block_id);
}

void block_pool::reset_prefix_cache() {
  for (const auto& [hash, id] : cache_) {
    has_content_[static_cast<size_t>(id)] = 0;
    content_[static_cast<size_t>(id)].tokens.clear();
  }
  cache_.clear();
}

std::vector<int32_t> block_pool::free_block_ids() const {
  std::vector<int32_t> ids;
  ids.reserve(static_cast<size_t>(num_free_));
  for (int32_t id = head_; id != -1; id = next_[static_cast<size_t>(id)]) ids.push_back(id);
  return ids;
}

void block_pool::push_free_tail(int32_t id) {
  prev_[static_cast<size_t>(id)] = tail_;
  next_[static_cast<size_t>(id)] = -1;
  if (tail_ != -1) next_[static_cast<size_t>(tail_)] = id;
  else head_ = id;
  tail_ = id;
  ++num_free_;
}

void block_pool::unlink_free(int32_t id) {
  int32_t p = prev_[static_cast<size_t>(id)], n = next_[static_cast<size_t>(id)];
  if (p != -1) next_[static_cast<size_t>(p)] = n;
  else head_ = n;
  if (n != -1) prev_[static_cast<size_t>(n)] = p;
  else tail_ = p;
  prev_[static_cast<size_t>(id)] = next_[static_cast<size_t>(id)] = -1;
  --num_free_;
}

void block_pool::uncache(int32_t id) {
  if (!has_content_[static_cast<size_t>(id)]) return;
  cache_.erase(content_[static_cast<size_t>(id)].hash);
  has_content_[static_cast<size_t>(id)] = 0;
  content_[static_cast<size_t>(id)].tokens.clear();
}

}  // namespace troupe
