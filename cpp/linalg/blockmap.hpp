// Block linear maps between batches of ciphertexts, run by the one
// baby-step giant-step engine (circuits/bsgs; Halevi-Shoup diagonals, hoisted
// baby rotations, Bossuat et al. 2021):
//   out_o = sum_i sum_d diag_{o,i,d} (.) rot(in_i, d)
// for I inputs and O outputs per group. The batch is indexed
//   ct(h, i, g) = (h * I + i) * G + g          (outputs: (h * O + o) * G + g)
// so H * G groups share the same diagonals (row blocks of a CPMM, columns
// blocks of a left product, items of a batch). Steps d = giant + baby, giant
// a multiple of n1:
//   out_o = sum_giant rot_giant( sum_{i,baby} rot_{-giant}(diag) (.) rot_baby(in_i) )
// Cost per group: sum_i |babies_i \ {0}| hoisted rotations, sum_o |giants_o \ {0}|
// rotations, one plaintext product per diagonal, one rescale per output:
// the map consumes exactly one level.
#pragma once
#include <array>
#include <complex>
#include <functional>
#include <memory>
#include <vector>

#include "circuits/bsgs.hpp"
#include "ckks/encoder.hpp"
#include "ckks/keys.hpp"
#include "ckks/resident.hpp"
#include "linalg/cost.hpp"

namespace ht::linalg {

using cplx = std::complex<double>;

// The values of diagonal `id` (unrotated, `slots` values).
struct DiagSource {
  double norm_inf = 0;  // max over output slots of sum |coefficients|
  virtual ~DiagSource() = default;
  virtual void values(long id, cplx* out) const = 0;
};

// The engine's plan (circuits/bsgs) with the map's norm and its counts.
struct MapPlan : bsgs::Plan {
  using Term = bsgs::Term;
  using Giant = bsgs::Giant;
  double norm_inf = 0;  // max over output slots of sum |coefficients|: |out| <= norm_inf * |in|
  Cost predicted(long groups) const;  // counts for `groups` groups
};

// diags[id] = {out, in, step}; n1 <= 0 picks the baby step that minimises
// rotations (a hoisted rotation is weighted 0.6 of a full one).
MapPlan plan_map(long slots, int in_cts, int out_cts, const std::vector<std::array<long, 3>>& diags, long n1 = 0);

struct BlockMap {
  MapPlan plan;
  std::shared_ptr<const DiagSource> source;
  int level = -1;  // encoded for this level; -1 until encoded
  // Plaintexts of the pre-rotated diagonals, encoded in batches: diagonal id
  // -> (chunk, row). Empty when streamed (encoded on the fly at every use).
  std::vector<Plaintext> chunks;
  std::vector<std::pair<int, int>> where;
  // Bytes of ciphertexts that apply may hold at once (0: no bound). Beyond it, apply makes the
  // baby rotations in chunks and holds the giant groups' accumulators of a few outputs at a time
  // (the same result bit for bit; an input read by several output groups is rotated once per group).
  size_t work_bytes = 0;
  bool cached() const { return !chunks.empty(); }
  size_t bytes() const;
  // The chunks' copies in device memory (one per backend, made on first use).
  std::shared_ptr<bsgs::DeviceCopies> device = std::make_shared<bsgs::DeviceCopies>();
};

BlockMap make_block_map(MapPlan plan, std::shared_ptr<const DiagSource> source);
// Encodes every diagonal for `level` (cache = true) or only records the
// level, so that apply encodes them on the fly (cache = false).
void encode_block_map(const Encoder& encoder, BlockMap& map, int level, bool cache);

// in: batch H * I * G with G = `inner_groups`; out: batch H * O * G, one level
// below the map's level (the input is brought down to it first). The
// engine's diagonals over Q (circuits/bsgs): babies brought down to Q, every
// giant's key switch kept in Q*P, one fused ModDown-rescale per output.
Ciphertext apply_block_map(const Tables& ctx, const KeyChain& keys, const Encoder& encoder, const Ciphertext& in,
                           const BlockMap& map, int inner_groups, Cost* cost);
// The same on a device-resident batch, on its backend (cached diagonals
// uploaded once per device, streamed ones per use): the host's result word
// for word.
DeviceCiphertext apply_block_map(const Tables& ctx, const KeyChain& keys, const Encoder& encoder,
                                 const DeviceCiphertext& in, const BlockMap& map, int inner_groups, Cost* cost);

// Diagonal sources.
// Entries out[oc][os] += coef * in[ic][is]; grouped by (oc, ic, (is - os) mod slots).
struct EntrySource : DiagSource {
  std::vector<std::array<long, 3>> keys;             // per diagonal: out, in, step
  std::vector<std::vector<std::pair<long, cplx>>> vals;  // per diagonal: (out slot, coefficient)
  long slots = 0;
  void values(long id, cplx* out) const override;
};
std::shared_ptr<EntrySource> entry_source(long slots, const std::vector<long>& oc, const std::vector<long>& os,
                                          const std::vector<long>& ic, const std::vector<long>& is,
                                          const std::vector<cplx>& coef);

// Products of a column-major blocked matrix with a plaintext matrix W.
// Layout of a block: slot = r + bm * c for r < br rows and c < bc columns
// (super-slots of bm slots, K = slots / bm of them).
struct MatmulGeometry {
  long slots = 0, bm = 0;
  long br_in = 0, bc_in = 0, nb_in = 0;    // rows, columns per block, blocks along the mixed dimension
  long br_out = 0, bc_out = 0, nb_out = 0;
};
// right: Z = X W, W (n x p) row-major; mixes super-slots (columns).
//   in block a holds X columns [a bc_in, ...), out block b holds Z columns [b bc_out, ...);
//   rows r < br_in (= br_out) are the lanes.
// left: Z = W X, W (p x m) row-major; mixes rows inside each super-slot.
//   in block a holds X rows [a br_in, ...), out block b holds Z rows [b br_out, ...);
//   columns c < bc_in (= bc_out) are the lanes.
struct MatmulSource : DiagSource {
  MatmulGeometry g;
  bool right = true;
  long wrows = 0, wcols = 0;
  std::vector<cplx> w;                       // row-major
  std::vector<std::array<long, 3>> keys;     // per diagonal: out block, in block, step
  void values(long id, cplx* out) const override;
};
std::shared_ptr<MatmulSource> matmul_source(const MatmulGeometry& g, bool right, long wrows, long wcols,
                                            std::vector<cplx> w);

}  // namespace ht::linalg
