// block_pool against a trivial model (std::list free order, std::map refs and cache), plus the
// exact ids and eviction order a scheduler relies on.
#include <catch2/catch.hpp>

#include <algorithm>
#include <list>
#include <map>
#include <random>
#include <vector>

#include "memory/block_pool.hpp"

using troupe::block_pool;

namespace {

std::vector<int32_t> tokens_of(int32_t first, int32_t n) {
  std::vector<int32_t> t(static_cast<size_t>(n));
  for (int32_t i = 0; i < n; ++i) t[static_cast<size_t>(i)] = first + i;
  return t;
}

// The obviously correct version: the free list is a std::list, the cache a std::map.
struct model_pool {
  std::map<int32_t, int32_t> refs;
  std::list<int32_t> free_list;
  std::map<uint64_t, int32_t> cache;          // hash -> id
  std::map<int32_t, uint64_t> hash_of;        // id -> hash

  explicit model_pool(int32_t n) {
    for (int32_t i = 0; i < n; ++i) refs[i] = 0, free_list.push_back(i);
  }
  std::vector<int32_t> allocate(int32_t n) {
    if (n > static_cast<int32_t>(free_list.size())) return {};
    std::vector<int32_t> out;
    for (int32_t i = 0; i < n; ++i) {
      int32_t id = free_list.front();
      free_list.pop_front();
      if (hash_of.count(id)) cache.erase(hash_of[id]), hash_of.erase(id);
      refs[id] = 1;
      out.push_back(id);
    }
    return out;
  }
  void free_blocks(const std::vector<int32_t>& ids) {
    for (int32_t id : ids)
      if (--refs[id] == 0) free_list.push_back(id);
  }
  void touch(int32_t id) {
    if (refs[id]++ == 0) free_list.remove(id);
  }
  void cache_block(int32_t id, uint64_t h) {
    if (hash_of.count(id) || cache.count(h)) return;
    cache[h] = id, hash_of[id] = h;
  }
};

}  // namespace

TEST_CASE("allocate takes free blocks in id order and refuses when short", "[block_pool]") {
  block_pool pool(4, 16);
  CHECK(pool.can_allocate(4));
  CHECK_FALSE(pool.can_allocate(5));
  CHECK(pool.allocate(3) == std::vector<int32_t>{0, 1, 2});
  CHECK(pool.num_free_blocks() == 1);
  CHECK(pool.allocate(2).empty());           // no room: nothing changes
  CHECK(pool.num_free_blocks() == 1);
  CHECK(pool.free_block_ids() == std::vector<int32_t>{3});
  std::vector<int32_t> back{2, 0};           // freed last-block-first, as the scheduler does
  pool.free_blocks(back);
  CHECK(pool.free_block_ids() == std::vector<int32_t>{3, 2, 0});
  CHECK(pool.allocate(2) == std::vector<int32_t>{3, 2});
}

TEST_CASE("shared blocks return to the pool only with their last reference", "[block_pool]") {
  block_pool pool(3, 4);
  auto ids = pool.allocate(2);
  pool.share(ids);                           // a fork: two sequences hold the same prompt
  CHECK(pool.ref_count(0) == 2);
  pool.free_blocks(ids);
  CHECK(pool.num_free_blocks() == 1);
  pool.free_blocks(ids);
  CHECK(pool.num_free_blocks() == 3);
  CHECK(pool.free_block_ids() == std::vector<int32_t>{2, 0, 1});
}

TEST_CASE("a cached prefix survives its free until allocate evicts it, LRU first",
          "[block_pool]") {
  block_pool pool(4, 2);
  auto a = pool.allocate(2);                  // blocks 0, 1 hold tokens [1 2][3 4]
  auto t0 = tokens_of(1, 2), t1 = tokens_of(3, 2);
  uint64_t h0 = block_pool::hash_block_tokens(0, t0);
  uint64_t h1 = block_pool::hash_block_tokens(h0, t1);
  pool.cache_full_block(a[0], h0, 0, t0);
  pool.cache_full_block(a[1], h1, h0, t1);
  CHECK(pool.num_cached_blocks() == 2);
  pool.free_blocks(std::vector<int32_t>{a[1], a[0]});
  CHECK(pool.free_block_ids() == std::vector<int32_t>{2, 3, 1, 0});

  // Same prefix: found again, taken out of the free list.
  REQUIRE(pool.find_cached_block(h0, 0, t0) == 0);
  CHECK(pool.find_cached_block(h0, 0, t1) == -1);       // same hash key, other content
  CHECK(pool.find_cached_block(h1, 0, t1) == -1);       // wrong parent
  pool.touch(0);
  CHECK(pool.ref_count(0) == 1);
  CHECK(pool.free_block_ids() == std::vector<int32_t>{2, 3, 1});

  // Allocating three blocks reaches block 1 last: its hash is forgotten then, not before.
  CHECK(pool.allocate(2) == std::vector<int32_t>{2, 3});
  CHECK(pool.find_cached_block(h1, h0, t1) == 1);
  CHECK(pool.allocate(1) == std::vector<int32_t>{1});
  CHECK(pool.find_cached_block(h1, h0, t1) == -1);
  CHECK(pool.num_cached_blocks() == 1);
  CHECK(pool.is_cached(0));

  pool.reset_prefix_cache();
  CHECK(pool.num_cached_blocks() == 0);
  CHECK(pool.find_cached_block(h0, 0, t0) == -1);
}

TEST_CASE("hashes chain: equal blocks under different parents differ", "[block_pool]") {
  auto t = tokens_of(7, 4);
  uint64_t a = block_pool::hash_block_tokens(0, t);
  uint64_t b = block_pool::hash_block_tokens(a, t);
  CHECK(a != b);
  CHECK(block_pool::hash_block_tokens(0, t) == a);
  CHECK(block_pool::hash_block_tokens(0, tokens_of(8, 4)) != a);
}

TEST_CASE("random operations match the model exactly", "[block_pool]") {
  constexpr int32_t n = 12;
  block_pool pool(n, 1);
  model_pool model(n);
  std::mt19937 rng(1234);
  std::vector<std::vector<int32_t>> held;  // one entry per reference taken
  uint64_t next_hash = 1;
  for (int step = 0; step < 4000; ++step) {
    int op = static_cast<int>(rng() % 5);
    if (op == 0 || held.empty()) {
      int32_t k = static_cast<int32_t>(rng() % 4);
      auto got = pool.allocate(k);
      REQUIRE(got == model.allocate(k));
      if (!got.empty()) held.push_back(got);
    } else if (op == 1) {
      size_t i = rng() % held.size();
      std::vector<int32_t> ids = held[i];
      std::reverse(ids.begin(), ids.end());
      pool.free_blocks(ids);
      model.free_blocks(ids);
      held.erase(held.begin() + static_cast<std::ptrdiff_t>(i));
    } else if (op == 2) {
      size_t i = rng() % held.size();
      pool.share(held[i]);
      for (int32_t id : held[i]) ++model.refs[id];
      held.push_back(held[i]);
    } else if (op == 3) {
      const auto& ids = held[rng() % held.size()];
      int32_t id = ids[rng() % ids.size()];
      // Hashes are opaque keys here; content is the hash itself, so lookups are checkable.
      uint64_t h = (rng() % 3 == 0 && !model.cache.empty()) ? model.cache.begin()->first
                                                          : next_hash++;
      std::vector<int32_t> content{static_cast<int32_t>(h)};
      pool.cache_full_block(id, h, 0, content);
      model.cache_block(id, h);
    } else if (!model.cache.empty()) {
      auto it = model.cache.begin();
      std::advance(it, static_cast<std::ptrdiff_t>(rng() % model.cache.size()));
      std::vector<int32_t> content{static_cast<int32_t>(it->first)};
      int32_t id = pool.find_cached_block(it->first, 0, content);
      REQUIRE(id == it->second);
      pool.touch(id);
      model.touch(id);
      held.push_back({id});
    }
    REQUIRE(pool.free_block_ids() == std::vector<int32_t>(model.free_list.begin(),
                                                          model.free_list.end()));
    REQUIRE(pool.num_cached_blocks() == static_cast<int32_t>(model.cache.size()));
    for (auto [id, r] : model.refs) REQUIRE(pool.ref_count(id) == r);
  }
}
