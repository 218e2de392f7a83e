#include "linalg/rotator.hpp"

#include <cstring>

#include "ckks/evaluator.hpp"
#include "core/error.hpp"
#include "core/galois.hpp"
#include "core/naf.hpp"
#include "linalg/batch.hpp"
#include "runtime/parallel.hpp"

namespace ht::linalg {

Rotator::Rotator(const Tables& ctx, const KeyChain& keys, const Ciphertext& ct, bool chain)
    : ctx_(ctx), keys_(keys), ct_(ct), dec_(ct.batch), have_(ct.batch, 0), chain_(chain), cur_step_(ct.batch, 0),
      cur_(ct.batch) {
  if (ct.context_id != ctx.id()) fail("rotate", "the ciphertext belongs to another context");
  if (ct.size != 2) fail("rotate", "relinearize the ciphertext first");
}

Ciphertext Rotator::rotate(const std::vector<int>& items, long step, Cost* cost) {
  const u64 n = ctx_.n();
  const int level = ct_.level;
  Ciphertext out(n, static_cast<int>(items.size()), 2, level, ct_.scale, ctx_.id(), false, false);
  out.bound = ct_.bound;
  if (chain_) {
    std::vector<std::pair<const Ciphertext*, int>> parts;
    for (int b : items) {
      if (b < 0 || b >= ct_.batch) fail("rotate", "ciphertext index out of range");
      const long diff = normalize_step(step - cur_step_[b], ctx_.slots());
      if (cur_[b].batch == 0) cur_[b] = gather(ctx_, ct_, {b});
      if (diff != 0) {
        cur_[b] = ht::rotate(ctx_, keys_, cur_[b], diff);
        if (cost) { cost->rotations += 1; cost->decompositions += 1; }
      }
      cur_step_[b] = step;
      parts.push_back({&cur_[b], 0});
    }
    return assemble(ctx_, parts);
  }
  if (normalize_step(step, ctx_.slots()) == 0) {
    for (size_t k = 0; k < items.size(); ++k)
      std::memcpy(out.poly(static_cast<int>(k), 0), ct_.poly(items[k], 0), 2 * ct_.limbs() * n * sizeof(u64));
    return out;
  }
  require_rotation_keys(keys_, {step});
  const u64 elt = galois_element_for_step(step, n);
  if (!keys_.has_galois_key(elt)) {  // composed from power-of-two keys: full key switches, no hoisting
    std::vector<Ciphertext> parts_ct;
    std::vector<std::pair<const Ciphertext*, int>> parts;
    const long terms = static_cast<long>(power_of_two_terms(step, static_cast<long>(ctx_.slots())).size());
    parts_ct.reserve(items.size());
    for (int b : items) {
      if (b < 0 || b >= ct_.batch) fail("rotate", "ciphertext index out of range");
      parts_ct.push_back(ht::rotate(ctx_, keys_, gather(ctx_, ct_, {b}), step));
      if (cost) { cost->rotations += terms; cost->decompositions += terms; }
    }
    for (const Ciphertext& c : parts_ct) parts.push_back({&c, 0});
    return assemble(ctx_, parts);
  }
  const std::vector<u32>& perm = ctx_.galois_perm(elt);
  const auto key_ptr = keys_.galois_key(elt);  // held: a wider key may replace it meanwhile
  const SwitchKey& key = *key_ptr;
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx_.alpha()) * n;
  Buffer e0 = Buffer::uninitialized(ext_words), e1 = Buffer::uninitialized(ext_words);
  for (size_t k = 0; k < items.size(); ++k) {
    const int b = items[k];
    if (b < 0 || b >= ct_.batch) fail("rotate", "ciphertext index out of range");
    if (!have_[b]) {
      dec_[b] = decompose(ctx_, ct_.poly(b, 1), level);
      have_[b] = 1;
      if (cost) cost->decompositions += 1;
    } else if (cost) {
      cost->hoisted += 1;
    }
    if (cost) cost->rotations += 1;
    const u64* c0 = ct_.poly(b, 0);
    u64* o0 = out.poly(static_cast<int>(k), 0);
    parallel_for(ct_.limbs(), [&](size_t i) {
      for (u64 t = 0; t < n; ++t) o0[i * n + t] = c0[i * n + perm[t]];
    });
    inner_product(ctx_, dec_[b], key, perm.data(), e0.data(), e1.data());
    mod_down(ctx_, e0.data(), level, o0, true);
    mod_down(ctx_, e1.data(), level, out.poly(static_cast<int>(k), 1), false);
  }
  return out;
}

}  // namespace ht::linalg
