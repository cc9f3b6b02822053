#include "core/allocator.h"

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <iterator>
#include <limits>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "soma/core/error.h"
#include "soma/core/memory.h"

namespace soma {
namespace detail {
namespace {

constexpr size_t kAlignment = 64;

// SOMA_SANITIZE builds define SOMA_NO_ALLOCATOR_CACHE: every free goes to the system at once,
// so AddressSanitizer reports any read of a freed tensor buffer.
#ifdef SOMA_NO_ALLOCATOR_CACHE
constexpr bool kCaching = false;
#else
constexpr bool kCaching = true;
#endif

struct Cache {
  std::mutex mutex;
  std::unordered_map<size_t, std::vector<void*>> free_blocks;  // rounded size -> blocks
  size_t limit = 0;
  size_t cached = 0;
  size_t allocated = 0;
  size_t peak = 0;
  uint64_t allocations = 0;
  uint64_t cache_hits = 0;
  uint64_t system_allocations = 0;
  uint64_t frees = 0;
  uint64_t system_frees = 0;

  // Frees cached blocks until at most `target` bytes stay cached (mutex held).
  size_t trim(size_t target) {
    size_t released = 0;
    for (auto it = free_blocks.begin(); it != free_blocks.end() && cached > target;) {
      auto& blocks = it->second;
      while (!blocks.empty() && cached > target) {
        std::free(blocks.back());
        blocks.pop_back();
        cached -= it->first;
        released += it->first;
        ++system_frees;
      }
      it = blocks.empty() ? free_blocks.erase(it) : std::next(it);
    }
    return released;
  }
};

// The limit from SOMA_CACHE_MAX_BYTES, read once. A malformed value throws soma::Error here (at
// the first allocation and every one after), never silently falls back to the default.
size_t limit_from_environment() {
  if (!kCaching) return 0;
  const char* env = std::getenv("SOMA_CACHE_MAX_BYTES");
  return env == nullptr ? kDefaultCacheLimit : parse_cache_limit(env);
}

Cache& cache() {
  static Cache* c = [] {
    const size_t limit = limit_from_environment();
    Cache* made = new Cache();  // never destroyed: tensors may outlive static destructors
    made->limit = limit;
    return made;
  }();
  return *c;
}

size_t round_up(size_t nbytes) {
  return (nbytes + kAlignment - 1) / kAlignment * kAlignment;
}

}  // namespace

size_t parse_cache_limit(const char* text) {
  const std::string s = text == nullptr ? "" : text;
  auto bad = [&](const char* why) -> size_t {
    fail("SOMA_CACHE_MAX_BYTES: invalid value '", s, "' (", why,
         "; expected a number of bytes with an optional K, M or G suffix, e.g. 268435456 or "
         "256M)");
  };
  size_t i = 0;
  size_t value = 0;
  if (s.empty() || !std::isdigit(static_cast<unsigned char>(s[0]))) return bad("not a number");
  for (; i < s.size() && std::isdigit(static_cast<unsigned char>(s[i])); ++i) {
    const size_t digit = static_cast<size_t>(s[i] - '0');
    if (value > (std::numeric_limits<size_t>::max() - digit) / 10) return bad("too large");
    value = value * 10 + digit;
  }
  size_t scale = 1;
  if (i < s.size()) {
    switch (s[i]) {
      case 'k':
      case 'K':
        scale = size_t{1} << 10;
        break;
      case 'm':
      case 'M':
        scale = size_t{1} << 20;
        break;
      case 'g':
      case 'G':
        scale = size_t{1} << 30;
        break;
      default:
        return bad("unknown suffix");
    }
    if (++i != s.size()) return bad("trailing characters");
  }
  if (value > std::numeric_limits<size_t>::max() / scale) return bad("too large");
  return value * scale;
}

void* allocate(size_t nbytes) {
  const size_t size = round_up(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    ++c.allocations;
    c.allocated += size;
    c.peak = std::max(c.peak, c.allocated);
    auto it = c.free_blocks.find(size);
    if (it != c.free_blocks.end() && !it->second.empty()) {
      void* p = it->second.back();
      it->second.pop_back();
      c.cached -= size;
      ++c.cache_hits;
      return p;
    }
    ++c.system_allocations;
  }
  void* p = std::aligned_alloc(kAlignment, size);
  if (p == nullptr) {
    soma::empty_cache();
    p = std::aligned_alloc(kAlignment, size);
  }
  if (p == nullptr) {
    std::lock_guard<std::mutex> lock(c.mutex);
    c.allocated -= size;
    --c.allocations;
    --c.system_allocations;
  }
  SOMA_CHECK(p != nullptr, "allocate: out of memory allocating ", size, " bytes");
  return p;
}

void deallocate(void* ptr, size_t nbytes) {
  if (ptr == nullptr) return;
  const size_t size = round_up(nbytes == 0 ? 1 : nbytes);
  Cache& c = cache();
  {
    std::lock_guard<std::mutex> lock(c.mutex);
    ++c.frees;
    c.allocated -= size;
    if (c.cached + size <= c.limit) {
      c.free_blocks[size].push_back(ptr);
      c.cached += size;
      return;
    }
    ++c.system_frees;
  }
  std::free(ptr);  // over the cap (or no cache): straight back to the system
}

size_t system_allocations() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().system_allocations;
}

size_t cached_bytes() {
  std::lock_guard<std::mutex> lock(cache().mutex);
  return cache().cached;
}

bool caching_available() {
  return kCaching;
}

size_t set_cache_limit(size_t bytes) {
  if (!kCaching) return 0;
  Cache& c = cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  const size_t old = c.limit;
  c.limit = bytes;
  c.trim(bytes);
  return old;
}

}  // namespace detail

MemoryStats memory_stats() {
  detail::Cache& c = detail::cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  MemoryStats s;
  s.allocated_bytes = c.allocated;
  s.peak_allocated_bytes = c.peak;
  s.cached_bytes = c.cached;
  s.cache_limit_bytes = c.limit;
  s.allocations = c.allocations;
  s.cache_hits = c.cache_hits;
  s.system_allocations = c.system_allocations;
  s.frees = c.frees;
  s.system_frees = c.system_frees;
  return s;
}

size_t empty_cache() {
  detail::Cache& c = detail::cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  return c.trim(0);
}

void reset_peak_memory_stats() {
  detail::Cache& c = detail::cache();
  std::lock_guard<std::mutex> lock(c.mutex);
  c.peak = c.allocated;
}

}  // namespace soma
