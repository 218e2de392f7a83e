#include "runtime/allocator.hpp"

#include <cstdint>
#include <cstdlib>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#if defined(__linux__)
#include <sys/mman.h>
#endif
#include <algorithm>
#include <map>
#include <mutex>
#include <iterator>
#include <new>
#include <unordered_map>
#include <vector>

namespace ht {

namespace {

// Blocks of at least 4 MiB (a ciphertext part from N = 2^13 up) are mappings
// of their own, 2 MiB-aligned, a whole number of 2 MiB pages, advised as
// transparent huge pages. A request that no cached block fits is served from
// the cached blocks themselves: the largest cached blocks are moved (mremap,
// page tables only) side by side into one new range and any excess split
// off, so fresh pages -- which the kernel zeroes on first touch, 2.5 s of an
// n16-boot bootstrap -- are needed only when the cache as a whole is too
// small; resident memory then never exceeds the most ever in use at once.
constexpr std::size_t kMapMin = std::size_t(4) << 20;
constexpr std::size_t kHuge = std::size_t(2) << 20;

#if defined(__linux__)
bool is_mapped(std::size_t size) { return size >= kMapMin; }
#else
bool is_mapped(std::size_t) { return false; }  // heap blocks only: no splitting
#endif

void* raw_allocate(std::size_t size) {
#if defined(__linux__)
  if (is_mapped(size)) {
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
  if (is_mapped(capacity)) {
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
// Mapped blocks are whole 2 MiB pages, so they split and join on page boundaries.
std::size_t rounded(std::size_t bytes) {
  const std::size_t unit = is_mapped(bytes) ? kHuge : 4096;
  return ((bytes + unit - 1) / unit) * unit;
}

#if defined(__linux__)
// Under the pool's lock, no cached block >= size (a multiple of kHuge): moves
// the largest cached mapped blocks into one fresh range of `size` bytes; the
// rest of it (if the cache held less) faults in fresh. Null if no block moved.
void* gather_cached(Pool& p, std::size_t size) {
  std::vector<std::pair<std::size_t, void*>> parts;
  std::size_t got = 0;
  for (auto it = p.free_blocks.end(); it != p.free_blocks.begin() && got < size;) {
    --it;
    if (!is_mapped(it->first)) break;  // ordered by capacity: the rest are heap blocks
    parts.emplace_back(it->first, it->second);
    got += it->first;
  }
  if (parts.empty()) return nullptr;
  void* target = raw_allocate(size);
  if (!target) return nullptr;
  for (auto& part : parts) {
    auto range = p.free_blocks.equal_range(part.first);
    for (auto it = range.first; it != range.second; ++it)
      if (it->second == part.second) {
        p.free_blocks.erase(it);
        break;
      }
    p.cached -= part.first;
  }
  std::size_t off = 0;
  for (auto& part : parts) {
    char* src = static_cast<char*>(part.second);
    const std::size_t take = std::min(part.first, size - off);
    void* moved = mremap(src, take, take, MREMAP_MAYMOVE | MREMAP_FIXED, static_cast<char*>(target) + off);
    if (moved == MAP_FAILED) {
      munmap(src, take);  // that part of the target stays fresh
    }
    const std::size_t excess = part.first - take;  // only the last part has one
    if (excess >= kMapMin) {
      p.free_blocks.emplace(excess, src + take);
      p.cached += excess;
    } else if (excess) {
      munmap(src + take, excess);
    }
    off += take;
  }
  return target;
}
#endif
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
    if (is_mapped(size)) {
      // Any larger cached mapping serves: its excess is split off and stays cached.
      if (it != p.free_blocks.end()) {
        char* block = static_cast<char*>(it->second);
        const std::size_t cap = it->first;
        p.free_blocks.erase(it);
        p.cached -= cap;
        if (cap - size >= kMapMin) {
          p.free_blocks.emplace(cap - size, block + size);
          p.cached += cap - size;
        } else if (cap != size) {
          p.capacity.emplace(block, cap);  // an excess under 4 MiB goes along with the block
        }
        return block;
      }
#if defined(__linux__)
      if (void* block = gather_cached(p, size)) return block;
#endif
    } else if (it != p.free_blocks.end() && it->first <= size + size / 4 && !is_mapped(it->first)) {
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
