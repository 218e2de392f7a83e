// Plain value types for encoded and encrypted data. Both are batches: one
// allocation [batch][size][level + 1][N] of residues in the NTT domain, so an
// operation on a batch is one call, parallel over batch and limbs.
// Metadata: the context id (mixing contexts is refused), level and scale.
#pragma once
#include <vector>

#include "core/defs.hpp"
#include "core/prng.hpp"
#include "runtime/buffer.hpp"

namespace ht {

struct PolyBatch {
  Buffer data;
  u64 n = 0;
  int batch = 0;
  int size = 0;    // polynomials per item: 1 (plaintext), 2 or 3 (ciphertext)
  int level = 0;   // limbs = level + 1
  double scale = 1.0;
  u64 context_id = 0;
  // An upper bound on |value| of every slot, tracked through the operations
  // (a power of two at encryption, so it reveals no more than the exponent).
  // It lets an operation refuse to produce a value that the lowest primes
  // cannot hold, instead of returning garbage. 0 for plaintexts.
  double bound = 0.0;
  // Symmetric encryption: the seed of each item's uniform c_1 (empty
  // otherwise). Serialization stores the seed instead of c_1 when c_1 still
  // equals its expansion (it checks; operations return new objects).
  std::vector<Seed> a_seeds;

  PolyBatch() = default;
  // zero = false leaves the data uninitialized, for outputs written in full.
  PolyBatch(u64 n_, int batch_, int size_, int level_, double scale_, u64 ctx, bool secure = false, bool zero = true)
      : data(static_cast<size_t>(batch_) * size_ * (level_ + 1) * n_, secure, zero),
        n(n_), batch(batch_), size(size_), level(level_), scale(scale_), context_id(ctx) {}

  int limbs() const { return level + 1; }
  u64* poly(int b, int k) { return data.data() + (static_cast<size_t>(b) * size + k) * limbs() * n; }
  const u64* poly(int b, int k) const {
    return data.data() + (static_cast<size_t>(b) * size + k) * limbs() * n;
  }
  u64* limb(int b, int k, int i) { return poly(b, k) + static_cast<size_t>(i) * n; }
  const u64* limb(int b, int k, int i) const { return poly(b, k) + static_cast<size_t>(i) * n; }
};

struct Plaintext : PolyBatch {
  using PolyBatch::PolyBatch;
};
struct Ciphertext : PolyBatch {
  using PolyBatch::PolyBatch;
};

}  // namespace ht
