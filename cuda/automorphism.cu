// CUDA launcher for the Galois automorphism in the NTT domain: the same
// permutation (core/galois) applied to every limb, one grid-stride launch of
// the shared body backend/kernels/automorphism.hpp.
#include <string>

#include "backend/kernels/automorphism.hpp"
#include "core/error.hpp"
#include "cuda_api.hpp"
#include "device_buffer.cuh"
#include "limb_bodies.cuh"

namespace ht::cuda {
void automorphism_ntt(u64* out, const u64* in, const u32* perm, std::size_t limbs, u64 n) {
  const u64 count = limbs * n;
  if (count == 0) return;
  if (out == nullptr || in == nullptr || perm == nullptr) fail("automorphism_ntt", "null argument");
  // An out-of-range index would be an illegal address on the device, which
  // poisons the CUDA context; check on the host instead.
  for (u64 k = 0; k < n; ++k)
    if (perm[k] >= n) fail("automorphism_ntt", "permutation entry " + std::to_string(perm[k]) + " is not < n");
  require_device("automorphism_ntt");
  const DeviceBuffer<u64> din(in, count);
  const DeviceBuffer<u32> dperm(perm, n);
  DeviceBuffer<u64> dout(count);
  for_each(count, AutomorphismBody{dout.data(), din.data(), dperm.data(), n});
  dout.download(out);
}

}  // namespace ht::cuda
