// Memory: statistics and control of soma's caching allocator.
//
// Tensor storage comes from a caching allocator: a freed block is kept, by its size rounded up
// to 64 bytes, and handed to the next request of that size, so a steady training loop stops
// calling the system allocator after its first step. The cache holds at most
// cache_limit_bytes (default 1 GiB; the environment variable SOMA_CACHE_MAX_BYTES, read once at
// the first allocation, overrides it: a number of bytes with an optional K, M or G suffix
// (powers of 1024), e.g. 268435456 or 256M; 0 turns caching off). A block freed while the
// cache is full goes straight back to the system. Builds with SOMA_SANITIZE (`make sanitize`)
// never cache, so AddressSanitizer sees every use of freed tensor memory.
//
//   soma::MemoryStats s = soma::memory_stats();
//   std::cout << s.allocated_bytes << " in use, peak " << s.peak_allocated_bytes << '\n';
//   soma::empty_cache();   // give cached blocks back to the system
#pragma once

#include <cstddef>
#include <cstdint>

namespace soma {

/// A snapshot of the allocator's counters. Byte counts are of blocks (sizes rounded up to 64).
struct MemoryStats {
  size_t allocated_bytes = 0;       ///< held by live tensor storage now
  size_t peak_allocated_bytes = 0;  ///< most allocated_bytes since start / reset_peak_memory_stats
  size_t cached_bytes = 0;          ///< freed blocks kept for reuse
  size_t cache_limit_bytes = 0;     ///< the cap on cached_bytes (0: no caching)
  uint64_t allocations = 0;         ///< blocks handed out (cache hits + system allocations)
  uint64_t cache_hits = 0;          ///< blocks handed out from the cache
  uint64_t system_allocations = 0;  ///< blocks obtained from the system allocator
  uint64_t frees = 0;               ///< blocks given back by tensor storage
  uint64_t system_frees = 0;        ///< blocks returned to the system (cache full, empty_cache)
};

/// The allocator's counters now. Throws soma::Error if SOMA_CACHE_MAX_BYTES is malformed.
MemoryStats memory_stats();

/// Returns every cached (free) block to the system; returns the number of bytes released.
/// Memory held by live tensors is not touched.
size_t empty_cache();

/// Sets peak_allocated_bytes to the current allocated_bytes.
void reset_peak_memory_stats();

}  // namespace soma
