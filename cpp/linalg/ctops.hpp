// The operations the linalg circuits need, named once for host ciphertexts
// (ckks/evaluator) and device-resident ones (ckks/resident), so each circuit
// (rotator, products, program) is written once as a template over the
// ciphertext type. Both forms give the same residues (tests/test_resident*).
#pragma once
#include "backend/backend.hpp"
#include "ckks/evaluator.hpp"
#include "ckks/resident.hpp"

namespace ht::linalg::ops {

inline backend::Backend& backend_of(const Ciphertext&) { return backend::cpu(); }
inline backend::Backend& backend_of(const DeviceCiphertext& c) { return c.backend(); }

// An uninitialized (or zero) batch in the memory of `like`'s backend.
inline Ciphertext make_like(const Tables& ctx, const Ciphertext&, int batch, int size, int level, double scale,
                            bool zero) {
  return Ciphertext(ctx.n(), batch, size, level, scale, ctx.id(), false, zero);
}
inline DeviceCiphertext make_like(const Tables& ctx, const DeviceCiphertext& like, int batch, int size, int level,
                                  double scale, bool zero) {
  return resident::make_batch(ctx, like.backend(), batch, size, level, scale, zero);
}

inline Ciphertext level_to(const Tables& ctx, const Ciphertext& a, int level) { return ht::level_to(ctx, a, level); }
inline DeviceCiphertext level_to(const Tables& ctx, const DeviceCiphertext& a, int level) {
  return resident::level_to(ctx, a, level);
}
inline Ciphertext add(const Tables& ctx, const Ciphertext& a, const Ciphertext& b) { return ht::add(ctx, a, b); }
inline DeviceCiphertext add(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b) {
  return resident::add(ctx, a, b);
}
inline Ciphertext rescale(const Tables& ctx, const Ciphertext& a) { return ht::rescale(ctx, a); }
inline DeviceCiphertext rescale(const Tables& ctx, const DeviceCiphertext& a) { return resident::rescale(ctx, a); }
inline Ciphertext rotate(const Tables& ctx, const KeyChain& keys, const Ciphertext& a, long step) {
  return ht::rotate(ctx, keys, a, step);
}
inline DeviceCiphertext rotate(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a, long step) {
  return resident::rotate(ctx, keys, a, step);
}
inline Ciphertext relinearize(const Tables& ctx, const KeyChain& keys, const Ciphertext& a) {
  return ht::relinearize(ctx, keys, a);
}
inline DeviceCiphertext relinearize(const Tables& ctx, const KeyChain& keys, const DeviceCiphertext& a) {
  return resident::relinearize(ctx, keys, a);
}

}  // namespace ht::linalg::ops
