#include "linalg/rotator.hpp"

#include "core/error.hpp"
#include "core/galois.hpp"
#include "core/naf.hpp"
#include "linalg/batch.hpp"
#include "linalg/ctops.hpp"

namespace ht::linalg {

template <class Ct>
BasicRotator<Ct>::BasicRotator(const Tables& ctx, const KeyChain& keys, const Ct& ct, bool chain)
    : ctx_(ctx), keys_(keys), ct_(ct), dec_(ct.batch), have_(ct.batch, 0), chain_(chain), cur_step_(ct.batch, 0),
      cur_(ct.batch) {
  if (ct.context_id != ctx.id()) fail("rotate", "the ciphertext belongs to another context");
  if (ct.size != 2) fail("rotate", "relinearize the ciphertext first");
}

template <class Ct>
Ct BasicRotator<Ct>::rotate(const std::vector<int>& items, long step, Cost* cost) {
  for (int b : items)
    if (b < 0 || b >= ct_.batch) fail("rotate", "ciphertext index out of range");
  const u64 n = ctx_.n();
  const int level = ct_.level;
  backend::Backend& be = ops::backend_of(ct_);
  if (chain_) {
    std::vector<std::pair<const Ct*, int>> parts;
    for (int b : items) {
      const long diff = normalize_step(step - cur_step_[b], ctx_.slots());
      if (cur_[b].batch == 0) cur_[b] = gather(ctx_, ct_, {b});
      if (diff != 0) {
        cur_[b] = ops::rotate(ctx_, keys_, cur_[b], diff);
        if (cost) { cost->rotations += 1; cost->decompositions += 1; }
      }
      cur_step_[b] = step;
      parts.push_back({&cur_[b], 0});
    }
    return assemble(ctx_, parts);
  }
  if (normalize_step(step, ctx_.slots()) == 0) return gather(ctx_, ct_, items);
  require_rotation_keys(keys_, {step});
  const u64 elt = galois_element_for_step(step, n);
  if (!keys_.has_galois_key(elt)) {  // composed from power-of-two keys: full key switches, no hoisting
    std::vector<Ct> parts_ct;
    std::vector<std::pair<const Ct*, int>> parts;
    const long terms = static_cast<long>(power_of_two_terms(step, static_cast<long>(ctx_.slots())).size());
    parts_ct.reserve(items.size());
    for (int b : items) {
      parts_ct.push_back(ops::rotate(ctx_, keys_, gather(ctx_, ct_, {b}), step));
      if (cost) { cost->rotations += terms; cost->decompositions += terms; }
    }
    for (const Ct& c : parts_ct) parts.push_back({&c, 0});
    return assemble(ctx_, parts);
  }
  Ct out = ops::make_like(ctx_, ct_, static_cast<int>(items.size()), 2, level, ct_.scale, false);
  out.bound = ct_.bound;
  const u32* perm = ctx_.galois_perm(elt).data();
  const auto held = keys_.galois_key(elt);  // held: a wider key may replace it meanwhile
  const KeyView key = keys_.device_key(held, be);
  const size_t ext_words = static_cast<size_t>(level + 1 + ctx_.alpha()) * n;
  backend::DeviceBuffer e0 = be.allocate(ext_words), e1 = be.allocate(ext_words);
  for (size_t k = 0; k < items.size(); ++k) {
    const int b = items[k];
    if (!have_[b]) {
      dec_[b] = decompose(be, ctx_, ct_.poly(b, 1), level);
      have_[b] = 1;
      if (cost) cost->decompositions += 1;
    } else if (cost) {
      cost->hoisted += 1;
    }
    if (cost) cost->rotations += 1;
    u64* o0 = out.poly(static_cast<int>(k), 0);
    be.automorphism(o0, ct_.poly(b, 0), perm, static_cast<std::size_t>(level + 1), n);
    inner_product(be, ctx_, dec_[b], key, perm, e0.data(), e1.data());
    mod_down(be, ctx_, e0.data(), level, o0, true);
    mod_down(be, ctx_, e1.data(), level, out.poly(static_cast<int>(k), 1), false);
  }
  return out;
}

template class BasicRotator<Ciphertext>;
template class BasicRotator<DeviceCiphertext>;

}  // namespace ht::linalg
