// Fast RNS basis conversion from a basis B = {b_i} to a basis C = {c_j}
// (Bajard et al. / Halevi-Polyakov-Shoup): the host class precomputes the
// constants once; backend/kernels/basis.hpp runs the per-coefficient body.
#pragma once
#include <vector>

#include "core/rns_view.hpp"

namespace ht {

class BasisConverter {
 public:
  BasisConverter() = default;
  BasisConverter(const std::vector<u64>& src, const std::vector<u64>& dst);
  kernels::BasisConvView view() const;
  int nsrc() const { return static_cast<int>(src_.size()); }
  int ndst() const { return static_cast<int>(dst_.size()); }

 private:
  std::vector<u64> src_, dst_;
  std::vector<ShoupConst> qhat_inv_;
  std::vector<u64> qhat_mod_;  // [ndst][nsrc]
  std::vector<Modulus> dst_mod_;
  std::vector<double> src_inv_;
  std::vector<u64> neg_prod_mod_;
};

}  // namespace ht
