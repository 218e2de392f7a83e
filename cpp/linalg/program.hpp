// A straight-line linalg circuit, executed in one call: the steps that the
// Python planner of a matrix product (python/hetensor/linalg) records
// (block linear maps, rotate-and-sum, sums of rotated products, regrouping,
// additions, slot-wise plaintext products) over a file of registers, each
// register one ciphertext batch. Planning stays in Python; execution runs
// here without returning to Python between steps. A register is freed after
// its last read unless it is an output, so the peak memory is that of the
// step-by-step run. Each step has the level effect of the function it calls.
// Host ciphertexts and device-resident ones (one backend) run the same steps.
#pragma once
#include <complex>
#include <memory>
#include <vector>

#include "ckks/engine.hpp"
#include "linalg/blockmap.hpp"
#include "linalg/cost.hpp"
#include "linalg/products.hpp"

namespace ht::linalg {

struct ProgramStep {
  enum class Kind { map, rotate_sum, bilinear, gather, add, mul_values };
  Kind kind = Kind::map;
  int out = -1, a = -1, b = -1;                // registers
  std::shared_ptr<const BlockMap> map;         // map: encoded for its level
  int inner_groups = 1;                        // map
  std::vector<long> steps;                     // rotate_sum
  std::vector<BilinearRound> rounds;           // bilinear
  int outputs = 0;                             // bilinear
  bool chain_a = false, chain_b = false;       // bilinear
  std::vector<int> idx;                        // gather
  std::vector<std::complex<double>> values;    // mul_values: rows x count
  int rows = 0;
  u64 count = 0;
};

class Program {
 public:
  // A new register that run() fills with its next input (in this order).
  int add_input();
  // Appends a step (its `out`, a new register, is assigned here: every
  // register is written once) and returns its output register.
  int add(ProgramStep step);
  int inputs() const { return static_cast<int>(input_regs_.size()); }
  int registers() const { return registers_; }
  const std::vector<ProgramStep>& steps() const { return steps_; }

  // Runs every step; returns the registers `outputs` and, in `costs`, the
  // counts of each step. Engine: tables, keys and encoder of the context.
  std::vector<Ciphertext> run(Engine& engine, const std::vector<const Ciphertext*>& inputs,
                              const std::vector<int>& outputs, std::vector<Cost>* costs) const;
  // The same on device-resident inputs (all on one device), on their backend:
  // the host's results word for word.
  std::vector<DeviceCiphertext> run(Engine& engine, const std::vector<const DeviceCiphertext*>& inputs,
                                    const std::vector<int>& outputs, std::vector<Cost>* costs) const;

 private:
  void check_reads(const ProgramStep& s) const;
  template <class Ct>
  std::vector<Ct> run_impl(Engine& engine, const std::vector<const Ct*>& inputs, const std::vector<int>& outputs,
                           std::vector<Cost>* costs) const;
  std::vector<int> input_regs_;
  int registers_ = 0;
  std::vector<ProgramStep> steps_;
};

}  // namespace ht::linalg
