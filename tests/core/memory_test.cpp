// soma::memory_stats, empty_cache, reset_peak_memory_stats, the cache cap and its environment
// override (SOMA_CACHE_MAX_BYTES).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "core/allocator.h"
#include "soma/soma.h"

namespace {

using soma::Tensor;

constexpr size_t kBlock = 4032;  // 1000 float32 = 4000 bytes, rounded up to 64

// A limit for one test, restored after it.
struct Limit {
  size_t old;
  explicit Limit(size_t bytes) : old(soma::detail::set_cache_limit(bytes)) {}
  ~Limit() { soma::detail::set_cache_limit(old); }
};

TEST(Memory, StatsFollowAllocationsAndFrees) {
  Limit limit(size_t{64} << 20);
  soma::empty_cache();  // no cached block of this size: the first tensor comes from the system
  const soma::MemoryStats s0 = soma::memory_stats();
  {
    Tensor t = soma::empty({1000});
    const soma::MemoryStats s1 = soma::memory_stats();
    EXPECT_EQ(s1.allocated_bytes, s0.allocated_bytes + kBlock);
    EXPECT_EQ(s1.allocations, s0.allocations + 1);
    EXPECT_EQ(s1.system_allocations, s0.system_allocations + 1);
    EXPECT_EQ(s1.cache_hits, s0.cache_hits);
    EXPECT_GE(s1.peak_allocated_bytes, s1.allocated_bytes);
    Tensor view = t.reshape({10, 100});  // a view: no new storage
    EXPECT_EQ(soma::memory_stats().allocations, s1.allocations);
  }
  const soma::MemoryStats s2 = soma::memory_stats();
  EXPECT_EQ(s2.allocated_bytes, s0.allocated_bytes);
  EXPECT_EQ(s2.frees, s0.frees + 1);
  if (!soma::detail::caching_available()) {
    EXPECT_EQ(s2.cached_bytes, 0u);
    EXPECT_EQ(s2.system_frees, s0.system_frees + 1);
    return;
  }
  EXPECT_EQ(s2.cached_bytes, s0.cached_bytes + kBlock);
  EXPECT_EQ(s2.system_frees, s0.system_frees);
  // The same size again is a cache hit.
  Tensor again = soma::empty({1000});
  const soma::MemoryStats s3 = soma::memory_stats();
  EXPECT_EQ(s3.cache_hits, s2.cache_hits + 1);
  EXPECT_EQ(s3.system_allocations, s2.system_allocations);
  EXPECT_EQ(s3.cached_bytes, s2.cached_bytes - kBlock);
}

TEST(Memory, EmptyCacheReturnsCachedBlocks) {
  if (!soma::detail::caching_available()) GTEST_SKIP() << "no cache in SOMA_SANITIZE builds";
  Limit limit(size_t{64} << 20);
  {
    std::vector<Tensor> ts;
    for (int i = 0; i < 3; ++i) ts.push_back(soma::empty({1000}));
  }
  const soma::MemoryStats before = soma::memory_stats();
  ASSERT_GE(before.cached_bytes, 3 * kBlock);
  EXPECT_EQ(soma::empty_cache(), before.cached_bytes);
  const soma::MemoryStats after = soma::memory_stats();
  EXPECT_EQ(after.cached_bytes, 0u);
  EXPECT_GE(after.system_frees, before.system_frees + 3);
  EXPECT_EQ(after.allocated_bytes, before.allocated_bytes);  // live tensors untouched
  EXPECT_EQ(soma::empty_cache(), 0u);
  // The next allocation of that size goes to the system again.
  Tensor t = soma::empty({1000});
  EXPECT_EQ(soma::memory_stats().system_allocations, after.system_allocations + 1);
}

TEST(Memory, CacheNeverExceedsItsLimit) {
  if (!soma::detail::caching_available()) GTEST_SKIP() << "no cache in SOMA_SANITIZE builds";
  soma::empty_cache();
  Limit limit(2 * kBlock + 100);  // room for two blocks of 4032 bytes
  const soma::MemoryStats s0 = soma::memory_stats();
  EXPECT_EQ(s0.cache_limit_bytes, 2 * kBlock + 100);
  {
    std::vector<Tensor> ts;
    for (int i = 0; i < 5; ++i) ts.push_back(soma::empty({1000}));
  }
  const soma::MemoryStats s1 = soma::memory_stats();
  EXPECT_EQ(s1.cached_bytes, 2 * kBlock);
  EXPECT_EQ(s1.system_frees, s0.system_frees + 3);
  // A block larger than the whole limit is never cached.
  { Tensor big = soma::empty({100000}); }
  EXPECT_EQ(soma::memory_stats().cached_bytes, 2 * kBlock);
  // Lowering the limit trims the cache at once.
  soma::detail::set_cache_limit(kBlock);
  EXPECT_EQ(soma::memory_stats().cached_bytes, kBlock);
  soma::detail::set_cache_limit(0);
  EXPECT_EQ(soma::memory_stats().cached_bytes, 0u);
  { Tensor t = soma::empty({1000}); }
  EXPECT_EQ(soma::memory_stats().cached_bytes, 0u);  // limit 0: caching off
}

TEST(Memory, PeakAndReset) {
  const soma::MemoryStats s0 = soma::memory_stats();
  { Tensor big = soma::empty({1 << 20}); }  // 4 MiB
  const soma::MemoryStats s1 = soma::memory_stats();
  EXPECT_GE(s1.peak_allocated_bytes, s0.allocated_bytes + (size_t{4} << 20));
  EXPECT_EQ(s1.allocated_bytes, s0.allocated_bytes);
  soma::reset_peak_memory_stats();
  EXPECT_EQ(soma::memory_stats().peak_allocated_bytes, s1.allocated_bytes);
  Tensor t = soma::empty({1000});
  EXPECT_EQ(soma::memory_stats().peak_allocated_bytes, s1.allocated_bytes + kBlock);
}

TEST(Memory, ParseCacheLimit) {
  using soma::detail::parse_cache_limit;
  EXPECT_EQ(parse_cache_limit("0"), 0u);
  EXPECT_EQ(parse_cache_limit("268435456"), size_t{268435456});
  EXPECT_EQ(parse_cache_limit("4k"), size_t{4096});
  EXPECT_EQ(parse_cache_limit("256M"), size_t{256} << 20);
  EXPECT_EQ(parse_cache_limit("2G"), size_t{2} << 30);
  for (const char* bad : {"", "abc", "-1", " 12", "12 ", "12x", "1KB", "1.5G", "M",
                          "99999999999999999999999", "17179869184G"}) {
    try {
      parse_cache_limit(bad);
      ADD_FAILURE() << "'" << bad << "' was accepted";
    } catch (const soma::Error& e) {
      const std::string msg = e.what();
      EXPECT_NE(msg.find("SOMA_CACHE_MAX_BYTES"), std::string::npos) << msg;
      EXPECT_NE(msg.find(std::string("'") + bad + "'"), std::string::npos) << msg;
    }
  }
}

// Without SOMA_CACHE_MAX_BYTES the limit is 1 GiB (memory.env_limit and memory.env_malformed,
// tests/alloc/memory_env_check.cpp, check the variable in processes of their own).
TEST(MemoryEnv, DefaultLimit) {
  if (!soma::detail::caching_available()) {
    EXPECT_EQ(soma::memory_stats().cache_limit_bytes, 0u);
    return;
  }
  if (std::getenv("SOMA_CACHE_MAX_BYTES") != nullptr) GTEST_SKIP() << "SOMA_CACHE_MAX_BYTES is set";
  EXPECT_EQ(soma::memory_stats().cache_limit_bytes, soma::detail::kDefaultCacheLimit);
}

}  // namespace
