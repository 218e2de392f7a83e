// Helpers shared by the files of the device-resident evaluator
// (resident.cpp, resident_switch.cpp); not part of its interface.
#pragma once
#include <string>
#include <utility>

#include "ckks/evaluator.hpp"
#include "ckks/resident.hpp"
#include "core/error.hpp"

namespace ht::resident::detail {

// An uninitialized batch of the given shape in the memory of `be`.
template <class Out>
Out empty_like(backend::Backend& be, u64 n, int batch, int size, int level, double scale, u64 ctx) {
  Out out;
  out.data = be.allocate(static_cast<size_t>(batch) * size * (level + 1) * n);
  out.n = n;
  out.batch = batch;
  out.size = size;
  out.level = level;
  out.scale = scale;
  out.context_id = ctx;
  return out;
}

// Sets the value bound of a result and refuses values that decryption could
// not recover (check_value_bound), as the host evaluator's results.
inline DeviceCiphertext finish(const Tables& ctx, DeviceCiphertext out, double bound, const char* op) {
  out.bound = bound;
  check_value_bound(ctx, out.level, out.scale, bound, op);
  return out;
}

inline void check_ct(const Tables& ctx, const DeviceCiphertext& a, const char* op) {
  if (a.context_id != ctx.id()) fail(op, "the ciphertext belongs to another context; encrypt it with this one");
  if (a.size < 2 || a.size > 3) fail(op, "the ciphertext has " + std::to_string(a.size) + " polynomials");
}

inline void check_pair(const Tables& ctx, const DeviceCiphertext& a, const DeviceCiphertext& b, const char* op) {
  check_ct(ctx, a, op);
  check_ct(ctx, b, op);
  if (a.data.owner() != b.data.owner())
    fail(op, "the operands live on different devices (" + a.device() + " and " + b.device() +
                 "); move one with .to(device)");
  if (a.batch != b.batch)
    fail(op, "batch sizes differ (" + std::to_string(a.batch) + " and " + std::to_string(b.batch) + " ciphertexts)");
}

}  // namespace ht::resident::detail
