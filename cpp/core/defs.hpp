// Basic definitions shared by every layer and by both backends.
// HT_HD marks functions that nvcc compiles for host and device; under a plain
// C++ compiler it is just `inline`, so kernel bodies are written once.
#pragma once
#include <cstddef>
#include <cstdint>

#if defined(__CUDACC__)
#define HT_HD __host__ __device__ __forceinline__
#else
#define HT_HD inline
#endif

namespace ht {
using u64 = std::uint64_t;
using i64 = std::int64_t;
using u32 = std::uint32_t;
#if !defined(__CUDACC__) || !defined(__CUDA_ARCH__)
using u128 = unsigned __int128;
#endif
}  // namespace ht
