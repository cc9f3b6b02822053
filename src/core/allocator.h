// Caching allocator: 64-byte aligned blocks, recycled by exact (rounded) size so a steady
// training loop, which asks for the same sizes every step, stops calling malloc after step 1.
// The public face (memory_stats, empty_cache, reset_peak_memory_stats) is soma/core/memory.h.
#pragma once

#include <cstddef>

namespace soma::detail {

/// 64-byte aligned block of at least `nbytes` (never nullptr; throws soma::Error on OOM).
void* allocate(size_t nbytes);
/// Returns a block from allocate(nbytes) to the cache (or to the system when the cache is full).
void deallocate(void* ptr, size_t nbytes);
/// Counters for tests: calls that reached the system allocator, and bytes cached now.
size_t system_allocations();
size_t cached_bytes();
/// Replaces the cache limit (for tests); returns the previous one. Lowering it frees cached
/// blocks until the cache fits. Without a cache (SOMA_SANITIZE builds) it does nothing and
/// returns 0.
size_t set_cache_limit(size_t bytes);
/// False in SOMA_SANITIZE builds, whose allocator never caches.
bool caching_available();
/// Parses a SOMA_CACHE_MAX_BYTES value: digits with an optional K, M or G suffix (powers of
/// 1024). Throws soma::Error naming the variable and the value when it is malformed.
size_t parse_cache_limit(const char* text);

/// Default cap on cached bytes when SOMA_CACHE_MAX_BYTES is not set.
inline constexpr size_t kDefaultCacheLimit = size_t{1} << 30;

}  // namespace soma::detail
