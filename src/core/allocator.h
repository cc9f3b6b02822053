// Caching allocator: 64-byte aligned blocks, recycled by exact (rounded) size so a steady
// training loop, which asks for the same sizes every step, stops calling malloc after step 1.
#pragma once

#include <cstddef>

namespace soma::detail {

/// 64-byte aligned block of at least `nbytes` (never nullptr; throws soma::Error on OOM).
void* allocate(size_t nbytes);
/// Returns a block from allocate(nbytes) to the cache.
void deallocate(void* ptr, size_t nbytes);
/// Frees every cached block; returns the number of bytes released.
size_t empty_cache();
/// Counters for tests: calls that reached the system allocator, and bytes cached now.
size_t system_allocations();
size_t cached_bytes();

}  // namespace soma::detail
