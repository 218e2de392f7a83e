// CUDA launcher for element-wise RNS arithmetic over limbs x n residues:
// add, sub, mul modulo each limb's prime, one grid-stride launch running the
// shared bodies of backend/kernels/elementwise.hpp. Inputs and outputs in [0, q).
#include <string>
#include <vector>

#include "backend/kernels/elementwise.hpp"
#include "core/error.hpp"
#include "cuda_api.hpp"
#include "device_buffer.cuh"
#include "launch.cuh"

namespace ht::cuda {
namespace {

template <ElementwiseOp Op>
struct ElementwiseBody {
  u64* out;
  const u64* a;
  const u64* b;
  const Modulus* moduli;  // [limbs]
  u64 n;
  __device__ void operator()(u64 idx) const {
    const u64 limb = idx / n, off = limb * n, k = idx - off;
    if constexpr (Op == ElementwiseOp::add) kernels::add_limb(out + off, a + off, b + off, moduli[limb].value, k);
    else if constexpr (Op == ElementwiseOp::sub) kernels::sub_limb(out + off, a + off, b + off, moduli[limb].value, k);
    else kernels::mul_limb(out + off, a + off, b + off, moduli[limb], k);
  }
};

}  // namespace

void elementwise(ElementwiseOp op, u64* out, const u64* a, const u64* b, const Modulus* moduli, std::size_t limbs,
                 u64 n) {
  const u64 count = limbs * n;
  if (count == 0) return;
  if (out == nullptr || a == nullptr || b == nullptr || moduli == nullptr) fail("elementwise", "null argument");
  require_device("elementwise");
  const DeviceBuffer<u64> da(a, count), db(b, count);
  const DeviceBuffer<Modulus> dm(moduli, limbs);
  DeviceBuffer<u64> dout(count);
  switch (op) {
    case ElementwiseOp::add:
      for_each(count, ElementwiseBody<ElementwiseOp::add>{dout.data(), da.data(), db.data(), dm.data(), n});
      break;
    case ElementwiseOp::sub:
      for_each(count, ElementwiseBody<ElementwiseOp::sub>{dout.data(), da.data(), db.data(), dm.data(), n});
      break;
    case ElementwiseOp::mul:
      for_each(count, ElementwiseBody<ElementwiseOp::mul>{dout.data(), da.data(), db.data(), dm.data(), n});
      break;
    default:
      fail("elementwise", "unknown operation");
  }
  dout.download(out);
}

}  // namespace ht::cuda
