#include "ckks/tables.hpp"

#include <atomic>

#include "core/galois.hpp"
#include "core/numth.hpp"

namespace ht {

namespace {
std::atomic<u64> next_context_id{1};
std::atomic<u64> next_switch_serial{1};
}

Tables::Tables(const ParamsLiteral& literal) : params_(literal), id_(next_context_id++) {
  const u64 n = params_.n();
  const int L = params_.max_level();
  std::vector<u64> all = params_.q();
  all.insert(all.end(), params_.p().begin(), params_.p().end());
  ntt_.resize(all.size());
  for (size_t i = 0; i < all.size(); ++i) ntt_[i] = NttTables(all[i], n);

  scales_.assign(L + 1, 0.0);
  for (int l = 0; l <= L; ++l) scales_[l] = params_.scale_at(l);

  inv_last_.resize(L + 1);
  for (int l = 1; l <= L; ++l)
    for (int i = 0; i < l; ++i) inv_last_[l].push_back(make_shoup(inv_mod(all[l] % all[i], all[i]), all[i]));

  const std::vector<u64>& P = params_.p();
  modup_.resize(L + 1);
  moddown_.resize(L + 1);
  for (int l = 0; l <= L; ++l) {
    for (int d = 0; d < num_digits(l); ++d) {
      std::vector<u64> src, dst;
      for (int i = 0; i <= l; ++i) (i >= digit_begin(d) && i < digit_end(d, l) ? src : dst).push_back(all[i]);
      dst.insert(dst.end(), P.begin(), P.end());
      modup_[l].emplace_back(src, dst);
    }
    moddown_[l] = BasisConverter(P, std::vector<u64>(all.begin(), all.begin() + l + 1));
  }
  for (int i = 0; i <= L; ++i) {
    u64 pm = 1;
    for (u64 p : P) pm = static_cast<u64>((u128(pm) * (p % all[i])) % all[i]);
    p_inv_.push_back(make_shoup(inv_mod(pm, all[i]), all[i]));
    p_mod_.push_back(make_shoup(pm, all[i]));
  }
  moddown_rescale_.resize(L + 1);
  pq_inv_.resize(L + 1);
  for (int l = 1; l <= L; ++l) {
    std::vector<u64> src{all[l]};
    src.insert(src.end(), P.begin(), P.end());
    moddown_rescale_[l] = BasisConverter(src, std::vector<u64>(all.begin(), all.begin() + l));
    for (int i = 0; i < l; ++i) {
      const u64 pq = static_cast<u64>((u128(p_mod_[i].operand) * (all[l] % all[i])) % all[i]);
      pq_inv_[l].push_back(make_shoup(inv_mod(pq, all[i]), all[i]));
    }
  }

  switch_.resize(L + 1);
  for (int l = 0; l <= L; ++l) {
    backend::SwitchConstants& c = switch_[l];
    c.serial = next_switch_serial++;
    c.n = n;
    c.level = l;
    c.alpha = alpha();
    c.digits = num_digits(l);
    for (int d = 0; d < c.digits; ++d) {
      c.digit_begin.push_back(digit_begin(d));
      c.digit_end.push_back(digit_end(d, l));
      c.modup.push_back(modup_[l][d].view());
    }
    for (int e = 0; e < c.ext_limbs(); ++e) {
      const int prime = e <= l ? e : p_index(e - l - 1);
      c.tables.push_back(&ntt_[prime]);
      c.moduli.push_back(ntt_[prime].mod);
    }
    c.moddown = moddown_[l].view();
    c.p_inv.assign(p_inv_.begin(), p_inv_.begin() + l + 1);
    c.p_mod.assign(p_mod_.begin(), p_mod_.begin() + l + 1);
    if (l >= 1) {
      c.moddown_rescale = moddown_rescale_[l].view();
      c.pq_inv = pq_inv_[l];
    }
  }
}

const std::vector<u32>& Tables::galois_perm(u64 g) const {
  std::lock_guard<std::mutex> lock(perm_mutex_);
  auto it = perms_.find(g);
  if (it == perms_.end()) it = perms_.emplace(g, galois_permutation_ntt(g, n())).first;
  return it->second;
}

}  // namespace ht
