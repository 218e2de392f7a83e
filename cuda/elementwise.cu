// CUDA launcher for element-wise RNS arithmetic over limbs x n residues:
// add, sub, mul (and the backend's neg) modulo each limb's prime, one
// grid-stride launch running the shared bodies of backend/kernels/elementwise.hpp.
// Inputs and outputs in [0, q).
#include <string>
#include <vector>

#include "backend/kernels/elementwise.hpp"
#include "core/error.hpp"
#include "cuda_api.hpp"
#include "device_buffer.cuh"
#include "limb_bodies.cuh"

namespace ht::cuda {
namespace {

template <backend::Elementwise Op>
struct ElementwiseBody {
  u64* out;
  const u64* a;
  const u64* b;
  const Modulus* moduli;  // [limbs]
  u64 n;
  __device__ void operator()(u64 idx) const {
    const u64 limb = idx / n, off = limb * n, k = idx - off;
    if constexpr (Op == backend::Elementwise::add) kernels::add_limb(out + off, a + off, b + off, moduli[limb].value, k);
    else if constexpr (Op == backend::Elementwise::sub) kernels::sub_limb(out + off, a + off, b + off, moduli[limb].value, k);
    else if constexpr (Op == backend::Elementwise::mul) kernels::mul_limb(out + off, a + off, b + off, moduli[limb], k);
    else kernels::neg_limb(out + off, a + off, moduli[limb].value, k);
  }
};

backend::Elementwise backend_op(ElementwiseOp op) {
  switch (op) {
    case ElementwiseOp::add: return backend::Elementwise::add;
    case ElementwiseOp::sub: return backend::Elementwise::sub;
    case ElementwiseOp::mul: return backend::Elementwise::mul;
  }
  fail("elementwise", "unknown operation");
}

}  // namespace

void elementwise_launch(backend::Elementwise op, u64* out, const u64* a, const u64* b, const Modulus* moduli,
                        u64 limbs, u64 n, cudaStream_t stream) {
  const u64 total = limbs * n;
  switch (op) {
    case backend::Elementwise::add:
      return for_each(total, ElementwiseBody<backend::Elementwise::add>{out, a, b, moduli, n}, stream);
    case backend::Elementwise::sub:
      return for_each(total, ElementwiseBody<backend::Elementwise::sub>{out, a, b, moduli, n}, stream);
    case backend::Elementwise::mul:
      return for_each(total, ElementwiseBody<backend::Elementwise::mul>{out, a, b, moduli, n}, stream);
    case backend::Elementwise::neg:
      return for_each(total, ElementwiseBody<backend::Elementwise::neg>{out, a, b, moduli, n}, stream);
  }
}

void elementwise(ElementwiseOp op, u64* out, const u64* a, const u64* b, const Modulus* moduli, std::size_t limbs,
                 u64 n) {
  const u64 count = limbs * n;
  if (count == 0) return;
  if (out == nullptr || a == nullptr || b == nullptr || moduli == nullptr) fail("elementwise", "null argument");
  require_device("elementwise");
  const DeviceBuffer<u64> da(a, count), db(b, count);
  const DeviceBuffer<Modulus> dm(moduli, limbs);
  DeviceBuffer<u64> dout(count);
  elementwise_launch(backend_op(op), dout.data(), da.data(), db.data(), dm.data(), limbs, n, nullptr);
  dout.download(out);
}

}  // namespace ht::cuda
