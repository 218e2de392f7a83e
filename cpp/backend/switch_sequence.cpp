#include "backend/switch_sequence.hpp"

#include <string>
#include <vector>

#include "core/error.hpp"

namespace ht::backend {

namespace {

// Limbs base, base + n, ... (count of them) with tables[first ..].
void ntt_limbs(Backend& be, const SwitchConstants& c, u64* base, int first, int count, bool inverse) {
  std::vector<u64*> limbs(count);
  for (int i = 0; i < count; ++i) limbs[i] = base + static_cast<std::size_t>(i) * c.n;
  if (inverse) be.ntt_inverse(limbs.data(), c.tables.data() + first, count);
  else be.ntt_forward(limbs.data(), c.tables.data() + first, count);
}

}  // namespace

Decomposition decompose(Backend& be, const SwitchConstants& c, const u64* d_ntt) {
  const u64 n = c.n;
  const int level = c.level;
  Decomposition dec;
  dec.level = level;
  dec.alpha = c.alpha;
  dec.digits = c.digits;
  const int el = dec.ext_limbs();
  dec.ext = be.allocate(static_cast<std::size_t>(dec.digits) * el * n);

  DeviceBuffer coef = be.allocate(static_cast<std::size_t>(level + 1) * n);
  be.copy(coef.data(), d_ntt, coef.size());
  ntt_limbs(be, c, coef.data(), 0, level + 1, true);

  for (int j = 0; j < dec.digits; ++j) {
    u64* ext = dec.ext.data() + static_cast<std::size_t>(j) * el * n;
    const int db = c.digit_begin[j], de = c.digit_end[j];
    std::vector<const u64*> src;
    std::vector<u64*> dst;
    std::vector<const NttTables*> tables;
    for (int i = db; i < de; ++i) src.push_back(coef.data() + static_cast<std::size_t>(i) * n);
    // The digit's own limbs are its NTT values as they are.
    be.copy(ext + static_cast<std::size_t>(db) * n, d_ntt + static_cast<std::size_t>(db) * n,
            static_cast<std::size_t>(de - db) * n);
    for (int e = 0; e < el; ++e) {
      if (e >= db && e < de) continue;
      dst.push_back(ext + static_cast<std::size_t>(e) * n);
      tables.push_back(c.tables[e]);
    }
    // Centered digits: with [0, D) representatives the mean D/2 of every
    // coefficient times the key's error is a fixed, data-independent error.
    be.basis_convert(c.modup[j], src.data(), dst.data(), n, true);
    be.ntt_forward(dst.data(), tables.data(), dst.size());
  }
  return dec;
}

void key_pointers(const SwitchConstants& c, const SwitchKeyRef& key, const u64** kb, const u64** ka) {
  const std::size_t half = static_cast<std::size_t>(key.limbs) * c.n;
  for (int e = 0; e < c.ext_limbs(); ++e)
    for (int j = 0; j < c.digits; ++j) {
      const std::size_t t = static_cast<std::size_t>(e) * c.digits + j;
      kb[t] = key.data + static_cast<std::size_t>(2 * j) * half + key.limb(e, c.level) * c.n;
      ka[t] = kb[t] + half;
    }
}

void inner_product(Backend& be, const SwitchConstants& c, const Decomposition& dec, const u64* const* kb,
                   const u64* const* ka, const u32* perm, u64* out0, u64* out1) {
  const u64 n = c.n;
  const int el = c.ext_limbs(), terms = c.digits;
  std::vector<u64*> o0(el), o1(el);
  std::vector<const u64*> d(static_cast<std::size_t>(el) * terms);
  for (int e = 0; e < el; ++e) {
    o0[e] = out0 + static_cast<std::size_t>(e) * n;
    o1[e] = out1 + static_cast<std::size_t>(e) * n;
    for (int j = 0; j < terms; ++j)
      d[static_cast<std::size_t>(e) * terms + j] = dec.digit(j, n) + static_cast<std::size_t>(e) * n;
  }
  be.key_switch_inner(o0.data(), o1.data(), d.data(), kb, ka, terms, perm, c.moduli.data(), el, n);
}

void mod_down(Backend& be, const SwitchConstants& c, const u64* ext, u64* out, bool accumulate) {
  const u64 n = c.n;
  const int level = c.level, alpha = c.alpha;
  // The P part to the coefficient domain.
  DeviceBuffer pcoef = be.allocate(static_cast<std::size_t>(alpha) * n);
  be.copy(pcoef.data(), ext + static_cast<std::size_t>(level + 1) * n, pcoef.size());
  ntt_limbs(be, c, pcoef.data(), level + 1, alpha, true);
  // Convert to Q_level; then, limb by limb, back to NTT and (x - conv) * P^-1.
  DeviceBuffer conv = be.allocate(static_cast<std::size_t>(level + 1) * n);
  std::vector<const u64*> src, x;
  std::vector<u64*> dst, o;
  for (int k = 0; k < alpha; ++k) src.push_back(pcoef.data() + static_cast<std::size_t>(k) * n);
  for (int i = 0; i <= level; ++i) {
    dst.push_back(conv.data() + static_cast<std::size_t>(i) * n);
    x.push_back(ext + static_cast<std::size_t>(i) * n);
    o.push_back(out + static_cast<std::size_t>(i) * n);
  }
  be.basis_convert(c.moddown, src.data(), dst.data(), n, true);
  be.ntt_sub_mul_const(o.data(), x.data(), dst.data(), c.p_inv.data(), c.tables.data(), level + 1, n, accumulate);
}

void mod_down_rescale(Backend& be, const SwitchConstants& c, const u64* ext, u64* out) {
  const u64 n = c.n;
  const int level = c.level, alpha = c.alpha;
  if (level < 1) fail("relinearize", "the ciphertext is at level 0; no prime is left to divide by");
  // q_level and P limbs are contiguous in ext: limbs level .. level + alpha.
  DeviceBuffer src = be.allocate(static_cast<std::size_t>(alpha + 1) * n);
  be.copy(src.data(), ext + static_cast<std::size_t>(level) * n, src.size());
  ntt_limbs(be, c, src.data(), level, alpha + 1, true);
  DeviceBuffer conv = be.allocate(static_cast<std::size_t>(level) * n);
  std::vector<const u64*> s, x;
  std::vector<u64*> d, o;
  for (int k = 0; k <= alpha; ++k) s.push_back(src.data() + static_cast<std::size_t>(k) * n);
  for (int i = 0; i < level; ++i) {
    d.push_back(conv.data() + static_cast<std::size_t>(i) * n);
    x.push_back(ext + static_cast<std::size_t>(i) * n);
    o.push_back(out + static_cast<std::size_t>(i) * n);
  }
  be.basis_convert(c.moddown_rescale, s.data(), d.data(), n, true);
  be.ntt_sub_mul_const(o.data(), x.data(), d.data(), c.pq_inv.data(), c.tables.data(), level, n, false);
}

void mul_p_add(Backend& be, const SwitchConstants& c, const u64* a, u64* ext) {
  const u64 n = c.n;
  const int nq = c.level + 1;
  std::vector<u64*> o(nq);
  std::vector<const u64*> in(nq);
  std::vector<u64> q(nq);
  for (int i = 0; i < nq; ++i) {
    o[i] = ext + static_cast<std::size_t>(i) * n;
    in[i] = a + static_cast<std::size_t>(i) * n;
    q[i] = c.moduli[i].value;
  }
  be.mul_const_add(o.data(), in.data(), c.p_mod.data(), q.data(), nq, n);
}

void check_switch(const SwitchConstants& c, const SwitchJob* jobs, std::size_t count, bool rescale) {
  const char* op = "key switch";
  if (c.n == 0 || c.digits < 1 || c.digits > 32 || static_cast<int>(c.tables.size()) != c.ext_limbs())
    fail(op, "malformed switching constants");
  if (rescale && c.level < 1) fail(op, "the ciphertext is at level 0; no prime is left to divide by");
  for (std::size_t i = 0; i < count; ++i) {
    if (jobs[i].d == nullptr) fail(op, "a job has no input polynomial");
    for (const SwitchTarget& t : jobs[i].targets) {
      if (t.key.data == nullptr) fail(op, "a target has no key in the backend's memory");
      if (t.key.level < c.level || t.key.limbs != t.key.level + 1 + c.alpha)
        fail(op, "cannot key-switch at level " + std::to_string(c.level) + ": the key serves levels <= " +
                     std::to_string(t.key.level));
      if (t.out0 == nullptr || t.out1 == nullptr) fail(op, "a target has no output");
      if (rescale && (t.perm != nullptr || t.c0 == nullptr || t.c1 == nullptr))
        fail(op, "a rescaling switch takes c0 and c1 and no permutation");
      if (t.perm != nullptr && (t.out0 == t.c0 || t.out1 == t.c1))
        fail(op, "a permuted output must not alias its input");
    }
  }
}

void key_switch_sequence(Backend& be, const SwitchConstants& c, const SwitchJob* jobs, std::size_t count,
                         bool rescale) {
  check_switch(c, jobs, count, rescale);
  const u64 n = c.n;
  const std::size_t words = static_cast<std::size_t>(c.level + 1) * n;
  const std::size_t ext_words = static_cast<std::size_t>(c.ext_limbs()) * n;
  const std::size_t terms = static_cast<std::size_t>(c.ext_limbs()) * c.digits;
  std::vector<const u64*> kb(terms), ka(terms);
  DeviceBuffer e0 = be.allocate(ext_words), e1 = be.allocate(ext_words);
  for (std::size_t i = 0; i < count; ++i) {
    const SwitchJob& job = jobs[i];
    const Decomposition dec = decompose(be, c, job.d);
    for (const SwitchTarget& t : job.targets) {
      key_pointers(c, t.key, kb.data(), ka.data());
      if (rescale) {
        inner_product(be, c, dec, kb.data(), ka.data(), nullptr, e0.data(), e1.data());
        mul_p_add(be, c, t.c0, e0.data());
        mul_p_add(be, c, t.c1, e1.data());
        mod_down_rescale(be, c, e0.data(), t.out0);
        mod_down_rescale(be, c, e1.data(), t.out1);
        continue;
      }
      const u64* cs[2] = {t.c0, t.c1};
      u64* outs[2] = {t.out0, t.out1};
      for (int p = 0; p < 2; ++p) {
        if (cs[p] == nullptr) continue;
        if (t.perm != nullptr) be.automorphism(outs[p], cs[p], t.perm, c.level + 1, n);
        else if (outs[p] != cs[p]) be.copy(outs[p], cs[p], words);
      }
      inner_product(be, c, dec, kb.data(), ka.data(), t.perm, e0.data(), e1.data());
      mod_down(be, c, e0.data(), t.out0, t.c0 != nullptr);
      mod_down(be, c, e1.data(), t.out1, t.c1 != nullptr);
    }
  }
}

void Backend::key_switch(const SwitchConstants& c, const SwitchJob* jobs, std::size_t count, bool rescale) {
  key_switch_sequence(*this, c, jobs, count, rescale);
}

}  // namespace ht::backend
