// Heap allocations of one steady training step, counted at the source: this executable
// replaces the global operator new / delete (every variant, aligned and nothrow included) and
// interposes malloc, calloc, realloc, aligned_alloc, posix_memalign and memalign, so every
// allocation made by libsoma, libstdc++, OpenBLAS or libgomp while a step runs is counted, not
// only tensor storage. It is its own executable (soma_alloc_tests) so the replaced allocator
// touches no other test.
//
// The step: an MLP 64-32-10 (Linear, ReLU, Dropout, Linear) on a batch of 32, cross_entropy,
// Adam: zero_grad, forward, backward, step. One thread (soma::set_num_threads(1)), so OpenMP
// and OpenBLAS do the same work every step. The count of every measured step must equal the
// first one's (deterministic), and must not exceed the number recorded in docs/PERFORMANCE.md
// ("Heap allocations per training step: N"), so it cannot grow unnoticed; lower it there when
// a change reduces it.
#include <gtest/gtest.h>

#include <atomic>
#include <cstdlib>
#include <fstream>
#include <new>
#include <regex>
#include <sstream>
#include <string>

#include "soma/soma.h"

extern "C" {
void* __libc_malloc(size_t);
void* __libc_calloc(size_t, size_t);
void* __libc_realloc(void*, size_t);
void* __libc_memalign(size_t, size_t);
void __libc_free(void*);
}

namespace {

std::atomic<bool> g_counting{false};
std::atomic<uint64_t> g_news{0}, g_mallocs{0}, g_frees{0};

inline void count(std::atomic<uint64_t>& c) {
  if (g_counting.load(std::memory_order_relaxed)) c.fetch_add(1, std::memory_order_relaxed);
}

void* new_impl(size_t n) {
  count(g_news);
  void* p = __libc_malloc(n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void* new_aligned(size_t n, std::align_val_t a) {
  count(g_news);
  void* p = __libc_memalign(static_cast<size_t>(a), n == 0 ? 1 : n);
  if (p == nullptr) throw std::bad_alloc();
  return p;
}

void delete_impl(void* p) {
  if (p == nullptr) return;
  count(g_frees);
  __libc_free(p);
}

}  // namespace

// ---- operator new / delete: every replaceable form -----------------------------------------
void* operator new(size_t n) {
  return new_impl(n);
}
void* operator new[](size_t n) {
  return new_impl(n);
}
void* operator new(size_t n, const std::nothrow_t&) noexcept {
  count(g_news);
  return __libc_malloc(n == 0 ? 1 : n);
}
void* operator new[](size_t n, const std::nothrow_t&) noexcept {
  count(g_news);
  return __libc_malloc(n == 0 ? 1 : n);
}
void* operator new(size_t n, std::align_val_t a) {
  return new_aligned(n, a);
}
void* operator new[](size_t n, std::align_val_t a) {
  return new_aligned(n, a);
}
void* operator new(size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  count(g_news);
  return __libc_memalign(static_cast<size_t>(a), n == 0 ? 1 : n);
}
void* operator new[](size_t n, std::align_val_t a, const std::nothrow_t&) noexcept {
  count(g_news);
  return __libc_memalign(static_cast<size_t>(a), n == 0 ? 1 : n);
}
void operator delete(void* p) noexcept {
  delete_impl(p);
}
void operator delete[](void* p) noexcept {
  delete_impl(p);
}
void operator delete(void* p, size_t) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, size_t) noexcept {
  delete_impl(p);
}
void operator delete(void* p, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
void operator delete(void* p, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete(void* p, size_t, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, size_t, std::align_val_t) noexcept {
  delete_impl(p);
}
void operator delete(void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  delete_impl(p);
}
void operator delete[](void* p, std::align_val_t, const std::nothrow_t&) noexcept {
  delete_impl(p);
}

// ---- the C allocator (interposed for the whole process, shared libraries included) ----------
extern "C" {
void* malloc(size_t n) {
  count(g_mallocs);
  return __libc_malloc(n);
}
void* calloc(size_t n, size_t size) {
  count(g_mallocs);
  return __libc_calloc(n, size);
}
void* realloc(void* p, size_t n) {
  count(g_mallocs);
  return __libc_realloc(p, n);
}
void free(void* p) {
  if (p != nullptr) count(g_frees);
  __libc_free(p);
}
void* memalign(size_t alignment, size_t n) {
  count(g_mallocs);
  return __libc_memalign(alignment, n);
}
void* aligned_alloc(size_t alignment, size_t n) {
  count(g_mallocs);
  return __libc_memalign(alignment, n);
}
int posix_memalign(void** out, size_t alignment, size_t n) {
  count(g_mallocs);
  if (alignment % sizeof(void*) != 0 || (alignment & (alignment - 1)) != 0) return EINVAL;
  void* p = __libc_memalign(alignment, n);
  if (p == nullptr) return ENOMEM;
  *out = p;
  return 0;
}
}

namespace {

namespace nn = soma::nn;
namespace F = soma::nn::functional;

struct Counts {
  uint64_t news = 0, mallocs = 0, frees = 0;
  uint64_t total() const { return news + mallocs; }
};

template <typename Fn>
Counts measure(Fn&& fn) {
  const uint64_t n0 = g_news, m0 = g_mallocs, f0 = g_frees;
  g_counting = true;
  fn();
  g_counting = false;
  return {g_news - n0, g_mallocs - m0, g_frees - f0};
}

// "Heap allocations per training step: N" in docs/PERFORMANCE.md.
uint64_t recorded_per_step() {
  const std::string path = std::string(SOMA_SOURCE_DIR) + "/docs/PERFORMANCE.md";
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  const std::string s = text.str();
  std::smatch m;
  if (!std::regex_search(s, m,
                         std::regex("Heap allocations per training step: \\*\\*(\\d+)\\*\\*")))
    return UINT64_MAX;
  return std::stoull(m[1].str());
}

TEST(AllocCount, CountingWorks) {
  // The hooks see allocations from this executable and from libsoma.
  const Counts c = measure([] {
    auto* p = new int(3);
    delete p;
    void* q = std::malloc(10);
    std::free(q);
    soma::Tensor t = soma::zeros({3});
    std::string s(100, 'x');
  });
  EXPECT_GE(c.news, 2u);
  EXPECT_GE(c.mallocs, 1u);
  EXPECT_GE(c.frees, 3u);
  // A 1 MiB tensor of a size never used before reaches aligned_alloc through the cache.
  const Counts big = measure([] { soma::Tensor t = soma::empty({262144 + 3}); });
  EXPECT_GE(big.mallocs, 1u);
}

TEST(AllocCount, SteadyTrainingStep) {
  soma::set_num_threads(1);
  soma::manual_seed(0);
  nn::Sequential model(nn::Linear(64, 32), nn::ReLU(), nn::Dropout(0.2), nn::Linear(32, 10));
  soma::optim::Adam opt(model.parameters(), {.lr = 1e-3});
  const soma::Tensor x = soma::randn({32, 64});
  const soma::Tensor y = soma::randint(0, 10, {32});
  auto step = [&] {
    opt.zero_grad();
    soma::Tensor loss = F::cross_entropy(model.forward(x), y);
    loss.backward();
    opt.step();
  };
  for (int i = 0; i < 3; ++i) step();  // warm-up: optimizer state, the allocator's cache
  constexpr int kSteps = 20;
  Counts first;
  for (int i = 0; i < kSteps; ++i) {
    const Counts c = measure(step);
    if (i == 0) first = c;
    EXPECT_EQ(c.total(), first.total()) << "step " << i << " differs from the first measured one";
    EXPECT_EQ(c.frees, c.total()) << "step " << i << " keeps memory";
  }
  const uint64_t recorded = recorded_per_step();
  std::printf(
      "heap allocations per training step: %llu (operator new %llu, malloc family %llu); "
      "recorded in docs/PERFORMANCE.md: %llu\n",
      static_cast<unsigned long long>(first.total()), static_cast<unsigned long long>(first.news),
      static_cast<unsigned long long>(first.mallocs), static_cast<unsigned long long>(recorded));
  ASSERT_NE(recorded, UINT64_MAX) << "docs/PERFORMANCE.md has no 'Heap allocations per training "
                                     "step: **N**' line";
  EXPECT_LE(first.total(), recorded)
      << "a training step now makes more heap allocations than docs/PERFORMANCE.md records";
  // No tensor storage from the system in the steady state (the caching allocator).
  const uint64_t sys0 = soma::memory_stats().system_allocations;
  step();
  EXPECT_EQ(soma::memory_stats().system_allocations, sys0);
}

}  // namespace
