// The index maps of the CUDA launchers: a grid-stride thread index turned into
// (limb, coefficient) or (limb, butterfly) and handed to a shared HT_HD body of
// backend/kernels, one map per shape of launch, so that each launcher
// (cuda_backend.cu, ntt.cu, elementwise.cu, automorphism.cu) names only the
// body and its data. The maps add no arithmetic: results stay bit-identical to
// the CPU backend, which runs the same bodies in loops.
#pragma once
#include <cuda/std/tuple>
#include <utility>

#include "backend/backend.hpp"
#include "backend/kernels/automorphism.hpp"
#include "backend/kernels/ntt.hpp"
#include "backend/kernels/switch.hpp"
#include "launch.cuh"

namespace ht::cuda {

// Kernel(lists[0][i], lists[1][i], ..., k) for limb i = idx / n and
// coefficient k = idx % n: the per-limb lists (limb pointers, constants, moduli)
// of the backend's coarse ops, e.g. PerLimb<kernels::mul_const_limb, u64*,
// const u64*, ShoupConst, u64>.
template <auto Kernel, class... T>
struct PerLimb {
  ::cuda::std::tuple<const T*...> lists;
  u64 n;
  __device__ void operator()(u64 idx) const { call(idx, std::index_sequence_for<T...>{}); }
  template <std::size_t... J>
  __device__ void call(u64 idx, std::index_sequence<J...>) const {
    const u64 i = idx / n;
    Kernel(::cuda::std::get<J>(lists)[i]..., idx - i * n);
  }
};

// Where an NTT finds limb i (of n words) and its twiddles. kSkips: the source
// may answer null (a limb the launch leaves alone), which the bodies then test.
struct LimbList {  // one pointer per limb
  static constexpr bool kSkips = false;
  u64* const* limbs;
  const kernels::NttView* views;
  u64 n;
  __device__ u64 size() const { return n; }
  __device__ u64* limb(u64 i, const kernels::NttView*& v) const {
    v = views + i;
    return limbs[i];
  }
};

struct LimbBlock {  // one contiguous [limbs][n] block
  static constexpr bool kSkips = false;
  u64* a;
  const kernels::NttView* views;
  u64 n;
  __device__ u64 size() const { return n; }
  __device__ u64* limb(u64 i, const kernels::NttView*& v) const {
    v = views + i;
    return a + i * n;
  }
};

struct LimbGridSource {  // the fused key switch's limb sets; views by table index
  static constexpr bool kSkips = true;
  kernels::LimbGrid g;
  const kernels::NttView* views;
  __device__ u64 size() const { return g.n; }
  __device__ u64* limb(u64 l, const kernels::NttView*& v) const {
    int table = 0;
    u64* a = g.limb(l, table);
    v = views + table;
    return a;
  }
};

// One butterfly of one stage: `groups` (m forward, h inverse) groups of
// half-size t, one thread per (limb, butterfly).
template <class Source, bool Inverse>
struct NttStage {
  Source src;
  u64 groups, t;
  __device__ void operator()(u64 idx) const {
    const u64 half = src.size() >> 1, i = idx / half;
    const kernels::NttView* v = nullptr;
    u64* a = src.limb(i, v);
    if constexpr (Source::kSkips)
      if (a == nullptr) return;
    if constexpr (Inverse) kernels::ntt_inverse_butterfly(a, *v, groups, t, idx - i * half);
    else kernels::ntt_forward_butterfly(a, *v, groups, t, idx - i * half);
  }
};

template <class Source, bool Inverse>
struct NttFinish {  // one thread per (limb, coefficient)
  Source src;
  __device__ void operator()(u64 idx) const {
    const u64 n = src.size(), i = idx / n;
    const kernels::NttView* v = nullptr;
    u64* a = src.limb(i, v);
    if constexpr (Source::kSkips)
      if (a == nullptr) return;
    if constexpr (Inverse) kernels::ntt_inverse_finish(a, *v, idx - i * n);
    else kernels::ntt_forward_finish(a, *v, idx - i * n);
  }
};

// The negacyclic NTT of `limbs` limbs of n words (n = the source's size, a
// power of two >= 2) in place: log2(n) stage launches (Cooley-Tukey forward,
// Gentleman-Sande inverse) and one finishing launch, in order on `stream`.
template <class Source>
void ntt_launch(const Source& src, u64 n, u64 limbs, bool inverse, cudaStream_t stream) {
  if (limbs == 0) return;
  const u64 butterflies = limbs * (n >> 1);
  if (!inverse) {
    u64 t = n;
    for (u64 m = 1; m < n; m <<= 1) {
      t >>= 1;
      for_each(butterflies, NttStage<Source, false>{src, m, t}, stream);
    }
    for_each(limbs * n, NttFinish<Source, false>{src}, stream);
  } else {
    u64 t = 1;
    for (u64 h = n >> 1; h >= 1; h >>= 1) {
      for_each(butterflies, NttStage<Source, true>{src, h, t}, stream);
      t <<= 1;
    }
    for_each(limbs * n, NttFinish<Source, true>{src}, stream);
  }
}

// Element-wise RNS arithmetic (backend::Elementwise) over a contiguous
// [limbs][n] block on `stream` (b unused by neg); defined in elementwise.cu.
void elementwise_launch(backend::Elementwise op, u64* out, const u64* a, const u64* b, const Modulus* moduli,
                        u64 limbs, u64 n, cudaStream_t stream);

// The NTT-domain automorphism of a contiguous [limbs][n] block, one permutation for all limbs.
struct AutomorphismBody {
  u64* out;
  const u64* in;
  const u32* perm;  // [n]
  u64 n;
  __device__ void operator()(u64 idx) const {
    const u64 off = (idx / n) * n;
    kernels::automorphism_ntt(out + off, in + off, perm, idx - off);
  }
};

}  // namespace ht::cuda
