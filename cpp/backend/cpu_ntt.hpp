// CPU launcher for the NTT: runs the shared butterflies of
// backend/kernels/butterfly.hpp stage by stage over one limb.
#pragma once
#include "core/ntt_tables.hpp"

namespace ht::cpu {

// In place, input in [0, q) natural order, output in [0, q) bit-reversed order.
void ntt_forward(u64* a, const NttTables& t);
// In place, input in [0, q) bit-reversed order, output in [0, q) natural order.
void ntt_inverse(u64* a, const NttTables& t);

}  // namespace ht::cpu
