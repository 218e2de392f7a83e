// The one baby-step giant-step engine for linear maps on slot vectors
// (Halevi-Shoup 2014 diagonals; Bossuat et al. 2021 hoisting), used by the
// bootstrapping transforms (circuits/lintrans) and the packed matrix products
// (linalg/blockmap). A map sends I input ciphertexts to O outputs:
//   out_o = sum_giant rot_giant( sum_{(i, baby) in giant} pt (.) rot_baby(in_i) )
// with pt the diagonal pre-rotated by -giant. Per group of I inputs: one
// decomposition per input (the baby rotations are hoisted), one key switch
// per nonzero giant, one plaintext product per diagonal; every giant's key
// switch output stays in Q*P and each output ends in one fused
// ModDown-rescale: the map consumes exactly one level.
// Diagonals over Q*P ("extended", double hoisting: babies stay in Q*P) or over
// Q only (babies brought down to Q, one ModDown each). The sequence is written
// once over backend::Backend: host ciphertexts run it on the CPU backend (with
// fused host loops over the same integers), device-resident ones on theirs.
// bsgs.cpp: the plan, the steps (bsgs_run.hpp) and the schedule that holds
// every baby; bsgs_schedule.cpp: the schedule within a workspace.
#pragma once
#include <array>
#include <map>
#include <mutex>
#include <vector>

#include "backend/backend.hpp"
#include "ckks/keys.hpp"
#include "ckks/tables.hpp"

namespace ht::bsgs {

struct Term {
  int in = 0;     // input ciphertext of the group
  int baby = 0;   // index into babies[in]
  long diag = 0;  // the diagonal's id in its DiagonalStore
};
struct Giant {
  long step = 0;  // a multiple of n1, in [0, slots)
  std::vector<Term> terms;
};

struct Plan {
  long slots = 0;
  int in_cts = 1, out_cts = 1;
  long n1 = 1;
  std::vector<std::vector<long>> babies;    // per input: distinct baby steps, sorted (0 included when used)
  std::vector<std::vector<Giant>> outputs;  // per output: its giant groups, by increasing step
  long diagonals() const;
  std::vector<long> rotation_steps() const;  // nonzero babies and giants
};

// diags[id] = {out, in, step}: step split as giant + baby (giant a multiple
// of n1); the term of diagonal id names id. Steps are taken mod slots.
Plan make_plan(long slots, int in_cts, int out_cts, const std::vector<std::array<long, 3>>& diags, long n1);

// Where the encoded, pre-rotated diagonals of an application are read.
class DiagonalStore {
 public:
  virtual ~DiagonalStore() = default;
  // How many giants of one output a fetch provides at once (0: all of them).
  virtual int window() const { return 0; }
  // The diagonals of the terms of giants [g0, g1) of output `out`, in term
  // order, in the memory of `be`, each [limbs][N] with the limbs of the
  // application (level + 1, plus alpha when extended). Valid until the next fetch.
  virtual std::vector<const u64*> fetch(backend::Backend& be, int out, int g0, int g1) = 0;
  // The diagonals of the terms `terms` (indices into its terms) of giant k of
  // output `out` only, in that order (a bounded application reads a giant's
  // terms a chunk of babies at a time). Valid until the next fetch. The
  // default fetches the whole giant; a store that encodes on the fly
  // overrides it to encode only these.
  virtual std::vector<const u64*> fetch_terms(backend::Backend& be, int out, int k, const std::vector<int>& terms);
};

// Device copies of plaintexts that never change (a transform's diagonals):
// one upload per backend, kept with the object that owns them.
struct DeviceCopies {
  std::mutex mutex;
  std::map<const backend::Backend*, backend::DeviceBuffer> copies;
  // The copy on `be` of the concatenated `parts` (pointer, words), made on first use.
  const u64* get(backend::Backend& be, const std::vector<std::pair<const u64*, std::size_t>>& parts);
  std::size_t bytes();
};

struct Operand {
  const u64* c0;
  const u64* c1;
};
struct Output {
  u64* o0;
  u64* o1;
};

// The rotations an application made, counted as the evaluator counts them
// (per group: a rotation of a nonzero step, composed or not, counts one;
// babies made from one decomposition count it once and all but one as hoisted).
struct Counts {
  long rotations = 0, hoisted = 0, decompositions = 0;
};

// in[g * in_cts + i]: input i of group g at `level` ([level + 1][N] each, NTT),
// out[g * out_cts + o]: written at level - 1 (divided by q_level, rounded).
// host_loops: the pointers are host memory on the CPU backend (fused loops).
// Keys: every nonzero step has its own key or is composed from power-of-two
// keys (full key switches, no hoisting), as the evaluator's rotations.
// work_bytes: the ciphertexts (babies, giant sums, totals) the application may
// hold at once (0: no bound). All babies of every group are made up front
// while they fit; beyond it the outputs are summed a few at a time (their
// giant sums held together, outputs that read the same inputs grouped) and
// each input's babies are made in chunks, one decomposition per chunk, each
// chunk's products added into the giant sums of the terms that read it: the
// same residues word for word (the sums are exact mod q), more decompositions,
// and a baby made again for each output group that reads its input. The
// least it holds: one output's giant sums and one baby, of every group.
Counts apply(backend::Backend& be, const Tables& ctx, const KeyChain& keys, const Plan& plan, DiagonalStore& diagonals,
             int level, bool extended, bool host_loops, const std::vector<Operand>& in, const std::vector<Output>& out,
             std::size_t work_bytes = 0);

}  // namespace ht::bsgs
