#include "boot/encapsulation.hpp"

#include <cstring>
#include <vector>

#include "backend/backend.hpp"
#include "backend/kernels/basis.hpp"
#include "backend/kernels/elementwise.hpp"
#include "ckks/keyswitch.hpp"
#include "core/error.hpp"
#include "core/numth.hpp"

namespace ht {

namespace {
// Ct: a Ciphertext or a DeviceCiphertext.
template <class Ct>
void require(const Tables& ctx, const KeyChain& keys, const Ct& ct, const char* op) {
  if (ct.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context");
  if (ct.size != 2) fail(op, "relinearize the ciphertext first");
  if (!keys.has_encapsulation()) fail(op, "no encapsulation keys; create the context with bootstrap=True");
}
}  // namespace

Ciphertext switch_to_sparse(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct) {
  require(ctx, keys, ct, "switch to the sparse secret");
  if (ct.level != 0) fail("switch to the sparse secret", "the ciphertext must be at level 0");
  const u64 n = ctx.n();
  const int p0i = ctx.p_index(0);
  const Modulus& mq = ctx.modulus(0);
  const Modulus& mp = ctx.modulus(p0i);
  const u64 q0 = mq.value, p0 = mp.value;
  const u64* kb = keys.to_sparse_key().data();
  const u64* ka = kb + 2 * n;
  const ShoupConst p0_inv = make_shoup(inv_mod(p0 % q0, q0), q0);
  Ciphertext out = ct;
  std::vector<u64> d(2 * n), e0(2 * n), e1(2 * n);
  for (int b = 0; b < ct.batch; ++b) {
    // Digit: c1 modulo q_0 (NTT) and its centered lift to p_0 (NTT).
    std::memcpy(d.data(), ct.limb(b, 1, 0), n * sizeof(u64));
    backend::ntt_inverse(d.data(), ctx.ntt(0));
    for (u64 k = 0; k < n; ++k) d[n + k] = kernels::centered_mod(d[k], q0, mp);
    std::memcpy(d.data(), ct.limb(b, 1, 0), n * sizeof(u64));
    backend::ntt_forward(d.data() + n, ctx.ntt(p0i));
    for (int t = 0; t < 2; ++t) {
      const Modulus& m = t == 0 ? mq : mp;
      for (u64 k = 0; k < n; ++k) {
        e0[t * n + k] = mul_mod(d[t * n + k], kb[t * n + k], m);
        e1[t * n + k] = mul_mod(d[t * n + k], ka[t * n + k], m);
      }
    }
    // ModDown by p_0: (x_q0 - [x]_p0) / p_0 with the centered residue.
    for (auto* e : {&e0, &e1}) {
      std::vector<u64> lift(e->begin() + n, e->end());
      backend::ntt_inverse(lift.data(), ctx.ntt(p0i));
      for (u64 k = 0; k < n; ++k) lift[k] = kernels::centered_mod(lift[k], p0, mq);
      backend::ntt_forward(lift.data(), ctx.ntt(0));
      for (u64 k = 0; k < n; ++k) (*e)[k] = mul_shoup(sub_mod((*e)[k], lift[k], q0), p0_inv, q0);
    }
    u64* c0 = out.limb(b, 0, 0);
    u64* c1 = out.limb(b, 1, 0);
    for (u64 k = 0; k < n; ++k) {
      c0[k] = add_mod(c0[k], e0[k], q0);
      c1[k] = e1[k];
    }
  }
  return out;
}

Ciphertext switch_to_dense(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct) {
  require(ctx, keys, ct, "switch to the dense secret");
  const u64 n = ctx.n();
  const int level = ct.level;
  Ciphertext out = ct;
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx.alpha()) * n;
  Buffer e0 = Buffer::uninitialized(ext_words), e1 = Buffer::uninitialized(ext_words);
  for (int b = 0; b < ct.batch; ++b) {
    const Decomposition dec = decompose(ctx, ct.poly(b, 1), level);
    inner_product(ctx, dec, keys.to_dense_key(), nullptr, e0.data(), e1.data());
    mod_down(ctx, e0.data(), level, out.poly(b, 0), true);
    mod_down(ctx, e1.data(), level, out.poly(b, 1), false);
  }
  return out;
}

namespace resident {

DeviceCiphertext switch_to_sparse(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct) {
  require(ctx, keys, ct, "switch to the sparse secret");
  if (ct.level != 0) fail("switch to the sparse secret", "the ciphertext must be at level 0");
  backend::Backend& be = ct.backend();
  const u64 n = ctx.n();
  const int p0i = ctx.p_index(0);
  const u64 q0 = ctx.prime(0), p0 = ctx.prime(p0i);
  const Modulus moduli[2] = {ctx.modulus(0), ctx.modulus(p0i)};
  const u64 mq[1] = {q0};
  const u64* const key = keys.device_sparse_key(be);  // resident after the first use on a device
  const ShoupConst p0_inv = make_shoup(inv_mod(p0 % q0, q0), q0);
  DeviceCiphertext out = copy(ct);
  backend::DeviceBuffer d = be.allocate(2 * n), e = be.allocate(4 * n), lift = be.allocate(n);
  u64* const dq = d.data();
  u64* const dp = d.data() + n;
  const NttTables* tq = &ctx.ntt(0);
  const NttTables* tp = &ctx.ntt(p0i);
  for (int b = 0; b < ct.batch; ++b) {
    // Digit: c1 modulo q_0 (NTT) and its centered lift to p_0 (NTT).
    be.copy(dq, ct.poly(b, 1), n);
    be.ntt_inverse(const_cast<u64* const*>(&dq), &tq, 1);
    const u64* src = dq;
    be.centered_reduce(const_cast<u64* const*>(&dp), &src, q0, &moduli[1], 1, n);
    be.copy(dq, ct.poly(b, 1), n);
    be.ntt_forward(const_cast<u64* const*>(&dp), &tp, 1);
    // (e0, e1) = d * (b, a) over (q_0, p_0), then ModDown by p_0:
    // (x_q0 - [x]_p0) / p_0 with the centered residue.
    be.elementwise(backend::Elementwise::mul, e.data(), dq, key, moduli, 2, n);
    be.elementwise(backend::Elementwise::mul, e.data() + 2 * n, dq, key + 2 * n, moduli, 2, n);
    for (int part = 0; part < 2; ++part) {
      u64* x = e.data() + static_cast<size_t>(2 * part) * n;
      u64* l = lift.data();
      be.copy(l, x + n, n);
      be.ntt_inverse(&l, &tp, 1);
      const u64* ls = l;
      be.centered_reduce(&l, &ls, p0, &moduli[0], 1, n);
      be.ntt_forward(&l, &tq, 1);
      const u64* xs = x;
      be.sub_mul_const(&x, &xs, &ls, &p0_inv, mq, 1, n);
    }
    u64* c0 = out.poly(b, 0);
    be.elementwise(backend::Elementwise::add, c0, c0, e.data(), moduli, 1, n);
    be.copy(out.poly(b, 1), e.data() + 2 * n, n);
  }
  return out;
}

DeviceCiphertext switch_to_dense(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& ct) {
  require(ctx, keys, ct, "switch to the dense secret");
  backend::Backend& be = ct.backend();
  const u64 n = ctx.n();
  const int level = ct.level;
  DeviceCiphertext out = copy(ct);
  const auto held = keys.encapsulation();
  const KeyView key = keys.device_key(std::shared_ptr<const SwitchKey>(held, &held->to_dense), be);
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx.alpha()) * n;
  backend::DeviceBuffer e0 = be.allocate(ext_words), e1 = be.allocate(ext_words);
  for (int b = 0; b < ct.batch; ++b) {
    const Decomposition dec = decompose(be, ctx, ct.poly(b, 1), level);
    inner_product(be, ctx, dec, key, nullptr, e0.data(), e1.data());
    mod_down(be, ctx, e0.data(), level, out.poly(b, 0), true);
    mod_down(be, ctx, e1.data(), level, out.poly(b, 1), false);
  }
  return out;
}

}  // namespace resident
}  // namespace ht
