// Element-wise kernel bodies over one RNS limb: index k in [0, n). Inputs and
// outputs are fully reduced to [0, q). Shared by the CPU loops and CUDA.
#pragma once
#include "core/modarith.hpp"

namespace ht::kernels {

HT_HD void add_limb(u64* out, const u64* a, const u64* b, u64 q, u64 k) { out[k] = add_mod(a[k], b[k], q); }
HT_HD void sub_limb(u64* out, const u64* a, const u64* b, u64 q, u64 k) { out[k] = sub_mod(a[k], b[k], q); }
HT_HD void neg_limb(u64* out, const u64* a, u64 q, u64 k) { out[k] = neg_mod(a[k], q); }
HT_HD void mul_limb(u64* out, const u64* a, const u64* b, const Modulus& m, u64 k) {
  out[k] = mul_mod(a[k], b[k], m);
}
// out += a * b
HT_HD void mul_add_limb(u64* out, const u64* a, const u64* b, const Modulus& m, u64 k) {
  out[k] = add_mod(out[k], mul_mod(a[k], b[k], m), m.value);
}
// out = a * w for a constant w
HT_HD void mul_const_limb(u64* out, const u64* a, const ShoupConst& w, u64 q, u64 k) {
  out[k] = mul_shoup(a[k], w, q);
}
// out += a * w for a constant w
HT_HD void mul_const_add_limb(u64* out, const u64* a, const ShoupConst& w, u64 q, u64 k) {
  out[k] = add_mod(out[k], mul_shoup(a[k], w, q), q);
}
// out = a + c for a constant c < q
HT_HD void add_const_limb(u64* out, const u64* a, u64 c, u64 q, u64 k) { out[k] = add_mod(a[k], c, q); }

}  // namespace ht::kernels
