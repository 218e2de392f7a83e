// A pooled host allocator: freed blocks are kept by size and handed out again,
// so hot paths do not pay for fresh pages (page faults and kernel zeroing
// dominated the profile of a multiply at N = 2^16 without it). 64-byte
// alignment; the cache is capped and can be emptied with release_cached().
// Blocks of 4 MiB and more are whole 2 MiB pages: a larger cached block is
// split to serve a request, and a request larger than every cached block is
// made of cached blocks moved together (allocator.cpp).
#pragma once
#include <cstddef>

namespace ht {

void* pool_allocate(std::size_t bytes);
void pool_free(void* p, std::size_t bytes);
std::size_t pool_cached_bytes();
void pool_release_cached();
void pool_set_cache_limit(std::size_t bytes);  // frees cached blocks above the new cap
std::size_t pool_cache_limit();

}  // namespace ht
