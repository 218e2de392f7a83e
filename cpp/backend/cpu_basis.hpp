// CPU launcher for fast basis conversion (the math of kernels/basis.hpp):
// 16 coefficients per block, each output row's sums held as four 128-bit
// scalars (one 64x64 -> 128 multiply and an add-with-carry per term, kept in
// registers) and written as whole cache lines. The sums are the same integers
// as the shared body's and are fully reduced, so the outputs agree bit for bit.
#pragma once
#include "core/rns_view.hpp"

namespace ht::cpu {

// Coefficients [begin, end) of every source limb; end - begin a multiple of 4.
void basis_convert(const kernels::BasisConvView& v, const u64* const* src, u64* const* dst, u64 begin, u64 end,
                   bool exact);

}  // namespace ht::cpu
