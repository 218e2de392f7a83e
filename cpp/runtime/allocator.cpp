#include "runtime/allocator.hpp"

#include <cstdint>
#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <map>
#include <mutex>
#include <iterator>
#include <new>
#include <unordered_map>
#include <vector>

namespace ht {

namespace {

// Blocks of at least 4 MiB (a ciphertext part from N = 2^13 up) are mappings
// of their own, aligned to 2 MiB and advised as transparent huge pages: a
// block that was returned to the system faults back in 2 MiB at a time
// instead of 4 KiB (at N = 2^16 a bootstrap refaults about 1.3 GB per call
// under its cache cap: 320,000 faults and ~1 s of system time in 4 KiB pages).
// Whether a block is mapped follows from its capacity alone.
constexpr std::size_t kMapMin = std::size_t(4) << 20;
constexpr std::size_t kHuge = std::size_t(2) << 20;

void* raw_allocate(std::size_t size) {
#if defined(__linux__)
  if (size >= kMapMin) {
    void* raw = mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return nullptr;
    const std::uintptr_t at = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t start = (at + kHuge - 1) & ~(static_cast<std::uintptr_t>(kHuge) - 1);
    const std::size_t head = start - at;
    if (head) munmap(raw, head);
    if (kHuge - head) munmap(reinterpret_cast<void*>(start + size), kHuge - head);
    madvise(reinterpret_cast<void*>(start), size, MADV_HUGEPAGE);  // a hint: small pages if refused
    return reinterpret_cast<void*>(start);
  }
#endif
  return std::aligned_alloc(64, size);
}

void raw_free(void* block, std::size_t capacity) {
#if defined(__linux__)
  if (capacity >= kMapMin) {
    munmap(block, capacity);
    return;
  }
#endif
  std::free(block);
}

struct Pool {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free_blocks;  // capacity -> block
  std::unordered_map<void*, std::size_t> capacity;  // blocks handed out from the cache, by capacity
  std::size_t cached = 0;
  std::size_t limit = std::size_t(1) << 30;  // 1 GiB: enough for the hot sizes
  ~Pool() {
    for (auto& kv : free_blocks) raw_free(kv.second, kv.first);
  }
};
Pool& pool() {
  static Pool* p = new Pool();  // never destroyed: buffers may outlive static teardown
  return *p;
}
std::size_t rounded(std::size_t bytes) { return ((bytes + 4095) / 4096) * 4096; }
}  // namespace

void* pool_allocate(std::size_t bytes) {
  const std::size_t size = rounded(bytes);
  Pool& p = pool();
  {
    std::lock_guard<std::mutex> lock(p.mutex);
    // Best fit within 1/4 slack: a circuit walking down the levels asks for
    // sizes one limb apart, and exact matching made it miss (fresh pages, each
    // zeroed by the kernel on first touch: 11% of a bootstrap at N = 2^16).
    auto it = p.free_blocks.lower_bound(size);
    if (it != p.free_blocks.end() && it->first <= size + size / 4) {
      void* block = it->second;
      const std::size_t cap = it->first;
      p.free_blocks.erase(it);
      p.cached -= cap;
      if (cap != size) p.capacity.emplace(block, cap);
      return block;
    }
  }
  void* block = raw_allocate(size);
  if (!block) {
    pool_release_cached();
    block = raw_allocate(size);
    if (!block) throw std::bad_alloc();
  }
  return block;
}

void pool_free(void* block, std::size_t bytes) {
  if (!block) return;
  std::size_t size = rounded(bytes);
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  if (!p.capacity.empty()) {
    auto c = p.capacity.find(block);
    if (c != p.capacity.end()) {
      size = c->second;
      p.capacity.erase(c);
    }
  }
  if (p.cached + size > p.limit) {
    raw_free(block, size);
    return;
  }
  p.free_blocks.emplace(size, block);
  p.cached += size;
}

std::size_t pool_cached_bytes() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().cached;
}

void pool_release_cached() {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  for (auto& kv : p.free_blocks) raw_free(kv.second, kv.first);
  p.free_blocks.clear();
  p.cached = 0;
#if defined(__GLIBC__)
  // glibc keeps freed small and medium blocks in its arenas; hand the free
  // pages back so that resident memory drops too, not only the pool's count.
  malloc_trim(0);
#endif
}

void pool_set_cache_limit(std::size_t bytes) {
  Pool& p = pool();
  std::lock_guard<std::mutex> lock(p.mutex);
  p.limit = bytes;
  // Shrink at once to the new cap: the largest blocks go first.
  while (p.cached > p.limit && !p.free_blocks.empty()) {
    auto last = std::prev(p.free_blocks.end());
    p.cached -= last->first;
    raw_free(last->second, last->first);
    p.free_blocks.erase(last);
  }
}

std::size_t pool_cache_limit() {
  std::lock_guard<std::mutex> lock(pool().mutex);
  return pool().limit;
}

}  // namespace ht
