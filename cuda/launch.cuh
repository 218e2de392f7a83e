// Grid-stride launch: for_each(count, body) runs body(i) for every i in
// [0, count) on the device, the GPU counterpart of a parallel CPU loop.
// `body` is a small trivially copyable functor (a view struct with a
// __device__ operator()), passed to the kernel by value.
#pragma once
#include <algorithm>

#include "check.cuh"
#include "core/defs.hpp"

namespace ht::cuda {

template <class Body>
__global__ void for_each_kernel(u64 count, Body body) {
  const u64 stride = static_cast<u64>(gridDim.x) * blockDim.x;
  for (u64 i = static_cast<u64>(blockIdx.x) * blockDim.x + threadIdx.x; i < count; i += stride) body(i);
}

constexpr unsigned kBlockSize = 256;
constexpr u64 kMaxBlocks = 65535;  // enough to fill any current GPU; the loop covers the rest

template <class Body>
void for_each(u64 count, const Body& body, cudaStream_t stream = nullptr) {
  if (count == 0) return;
  const u64 blocks = std::min<u64>((count + kBlockSize - 1) / kBlockSize, kMaxBlocks);
  for_each_kernel<<<static_cast<unsigned>(blocks), kBlockSize, 0, stream>>>(count, body);
  HT_CUDA_CHECK(cudaGetLastError());
}

}  // namespace ht::cuda
