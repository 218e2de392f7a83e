#include "core/rns.hpp"

#include "core/numth.hpp"

namespace ht {

BasisConverter::BasisConverter(const std::vector<u64>& src, const std::vector<u64>& dst) : src_(src), dst_(dst) {
  const size_t ns = src.size(), nd = dst.size();
  qhat_inv_.resize(ns);
  for (size_t i = 0; i < ns; ++i) {
    // (B / b_i) mod b_i, as a product of the other primes.
    u64 prod = 1;
    for (size_t k = 0; k < ns; ++k)
      if (k != i) prod = static_cast<u64>((u128(prod) * (src[k] % src[i])) % src[i]);
    qhat_inv_[i] = make_shoup(inv_mod(prod, src[i]), src[i]);
  }
  for (u64 b : src) src_inv_.push_back(1.0 / static_cast<double>(b));
  qhat_mod_.assign(nd * ns, 0);
  for (size_t j = 0; j < nd; ++j) {
    for (size_t i = 0; i < ns; ++i) {
      u64 prod = 1;
      for (size_t k = 0; k < ns; ++k)
        if (k != i) prod = static_cast<u64>((u128(prod) * (src[k] % dst[j])) % dst[j]);
      qhat_mod_[j * ns + i] = prod;
    }
    u64 prod = 1;
    for (size_t k = 0; k < ns; ++k) prod = static_cast<u64>((u128(prod) * (src[k] % dst[j])) % dst[j]);
    neg_prod_mod_.push_back(prod == 0 ? 0 : dst[j] - prod);
    dst_mod_.push_back(make_modulus(dst[j]));
  }
}

kernels::BasisConvView BasisConverter::view() const {
  return kernels::BasisConvView{nsrc(), ndst(), src_.data(), qhat_inv_.data(), qhat_mod_.data(),
                                dst_mod_.data(), src_inv_.data(), neg_prod_mod_.data()};
}

}  // namespace ht
