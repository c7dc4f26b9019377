// block_pool: the logical KV cache blocks -- ids, reference counts, the free list in LRU order,
// and the prefix cache (content hash of full token blocks -> block id). No K/V data lives here:
// executors hold the physical pages, indexed by these ids.
//
// Lifecycle of a block: free (ref 0) -> allocate()/touch() -> used (ref >= 1; share() adds
// references, e.g. for the n > 1 choices of one prompt) -> free_blocks() drops references; at 0
// the block goes to the tail of the free list. A freed block that was registered with
// cache_full_block() keeps its content hash, so a later request with the same prefix can take it
// back with touch() until allocate() reuses it: allocate() takes blocks from the head of the free
// list (least recently freed first) and forgets their hash ("evicts" them). Callers free a
// sequence's blocks last-block-first, so the deep ends of prefixes are evicted before the roots.
//
// "Ask before acting": can_allocate() says whether there is room; allocate() returns an empty
// vector when there is not, and changes nothing. Running out of blocks is the caller's decision
// (the scheduler preempts); nothing here fails for lack of room.
//
// Hashes: hash_block_tokens(parent, tokens) = XXH3-64 of the block's token ids seeded with the
// parent block's hash (0 for the first block), so a hash names the whole prefix up to and
// including the block. The tokens and parent hash are kept too and checked on lookup.
//
// Thread-safety: none; one owner (the scheduler). Programmer errors (freeing a free block, bad
// ids) abort through TROUPE_ASSERT.
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace troupe {

class block_pool {
 public:
  // REQUIRES: num_blocks >= 1, block_size >= 1. All blocks start free, in id order.
  block_pool(int32_t num_blocks, int32_t block_size);

  int32_t num_blocks() const { return static_cast<int32_t>(ref_counts_.size()); }
  int32_t block_size() const { return block_size_; }
  int32_t num_free_blocks() const { return num_free_; }           // ref 0, cached or not
  int32_t num_used_blocks() const { return num_blocks() - num_free_; }
  int32_t num_cached_blocks() const { return static_cast<int32_t>(cache_.size()); }
  int32_t ref_count(int32_t block_id) const;
  bool is_cached(int32_t block_id) const;

  bool can_allocate(int32_t n) const { return n >= 0 && n <= num_free_; }

  // n blocks with ref 1, taken from the head of the free list (their cached hashes are
  // forgotten). Empty, with nothing changed, if fewer than n are free.
  std::vector<int32_t> allocate(int32_t n);

  // Drops one reference per id, in the given order; blocks reaching 0 go to the free list tail
  // in that order. REQUIRES: every id has ref >= 1.
  void free_blocks(std::span<const int32_t> block_ids);

  // Adds one reference per id (fork). REQUIRES: every id has ref >= 1.
  void share(std::span<const int32_t> block_ids);

  static uint64_t hash_block_tokens(uint64_t parent_hash, std::span<const int32_t> tokens);

  // The block caching exactly this (parent, tokens) content, or -1.
  int32_t find_cached_block(uint64_t hash, uint64_t parent_hash,
                            std::span<const int32_t> tokens) const;

  // Takes a reference on a block found by find_cached_block (leaving the free list if it was
  // free). REQUIRES: is_cached(block_id).
  void touch(int32_t block_id);

  // Registers a used, full block's content for reuse. If another block already caches the same
  // hash, nothing changes (the first stays canonical). REQUIRES: ref >= 1,
  // tokens.size() == block_size.
  void cache_full_block(int32_t block_id, uint64_t hash, uint64_t parent_hash,
                        std::span<const int32_t> tokens);

  // Forgets every cached hash (the K/V content is gone, e.g. after an executor restart).
  void reset_prefix_cache();

  // The free list, head (next to be allocated) first. For tests and metrics.
  std::vector<int32_t> free_block_ids() const;

 private:
  struct cached_content {
    uint64_t hash = 0;
    uint64_t parent_hash = 0;
    std::vector<int32_t> tokens;
  };

  void push_free_tail(int32_t id);
  void unlink_free(int32_t id);
  void uncache(int32_t id);

  int32_t block_size_;
  std::vector<int32_t> ref_counts_;
  // Intrusive doubly linked free list over block ids; -1 ends it.
  std::vector<int32_t> prev_, next_;
  int32_t head_ = -1, tail_ = -1, num_free_ = 0;
  std::vector<cached_content> content_;   // per block; meaningful when has_content_[id]
  std::vector<uint8_t> has_content_;
  std::unordered_map<uint64_t, int32_t> cache_;  // hash -> block id
};

}  // namespace troupe
