// The executor of linalg programs: one pass over the steps, each the C++
// call that the Python step-by-step path makes, registers freed after their
// last read.
#include "linalg/program.hpp"

#include <string>

#include "core/error.hpp"
#include "linalg/batch.hpp"
#include "linalg/ctops.hpp"

namespace ht::linalg {

int Program::add_input() {
  input_regs_.push_back(registers_);
  return registers_++;
}

void Program::check_reads(const ProgramStep& s) const {
  const bool two = s.kind == ProgramStep::Kind::bilinear || s.kind == ProgramStep::Kind::add;
  if (s.a < 0 || s.a >= registers_ || (two && (s.b < 0 || s.b >= registers_)))
    fail("build a linalg program", "a step reads a register that no input or earlier step holds");
  if (s.kind == ProgramStep::Kind::map && !s.map) fail("build a linalg program", "a map step needs an encoded map");
  if (s.kind == ProgramStep::Kind::mul_values &&
      (s.rows < 1 || s.count < 1 || s.values.size() != static_cast<size_t>(s.rows) * s.count))
    fail("build a linalg program", "mul_values needs rows x count values");
}

int Program::add(ProgramStep step) {
  check_reads(step);
  step.out = registers_++;
  steps_.push_back(std::move(step));
  return steps_.back().out;
}

namespace {
Ciphertext mul_values(Engine& engine, const Ciphertext& a, const ProgramStep& s) {
  return engine.mul_values(a, s.values.data(), s.rows, s.count);
}
DeviceCiphertext mul_values(Engine& engine, const DeviceCiphertext& a, const ProgramStep& s) {
  const Plaintext p = engine.plain_for_mul(a.context_id, a.level, s.values.data(), s.rows, s.count);
  return resident::mul_plain(engine.tables(), a, resident::upload(p, a.backend()));
}
Ciphertext take(const Ciphertext& c) { return c; }
DeviceCiphertext take(const DeviceCiphertext& c) { return resident::copy(c); }
}  // namespace

std::vector<Ciphertext> Program::run(Engine& engine, const std::vector<const Ciphertext*>& inputs,
                                     const std::vector<int>& outputs, std::vector<Cost>* costs) const {
  return run_impl(engine, inputs, outputs, costs);
}

std::vector<DeviceCiphertext> Program::run(Engine& engine, const std::vector<const DeviceCiphertext*>& inputs,
                                           const std::vector<int>& outputs, std::vector<Cost>* costs) const {
  for (const DeviceCiphertext* c : inputs)
    if (c != nullptr && inputs.front() != nullptr && c->data.owner() != inputs.front()->data.owner())
      fail("run a linalg program", "the inputs live on different devices; move them to one with .to(device)");
  return run_impl(engine, inputs, outputs, costs);
}

template <class Ct>
std::vector<Ct> Program::run_impl(Engine& engine, const std::vector<const Ct*>& inputs,
                                  const std::vector<int>& outputs, std::vector<Cost>* costs) const {
  const char* op = "run a linalg program";
  if (inputs.size() != input_regs_.size())
    fail(op, "it has " + std::to_string(input_regs_.size()) + " inputs, got " + std::to_string(inputs.size()));
  for (const Ct* c : inputs)
    if (c == nullptr) fail(op, "an input is missing");
  std::vector<int> last_read(registers_, -1);
  for (size_t i = 0; i < steps_.size(); ++i) {
    last_read[steps_[i].a] = static_cast<int>(i);
    if (steps_[i].b >= 0) last_read[steps_[i].b] = static_cast<int>(i);
  }
  std::vector<bool> keep(registers_, false), is_input(registers_, false);
  for (int r : input_regs_) is_input[r] = true;
  for (int r : outputs) {
    if (r < 0 || r >= registers_) fail(op, "an output register does not exist");
    keep[r] = true;
  }
  const Tables& ctx = engine.tables();
  const KeyChain& keys = engine.keys();
  std::vector<Ct> held(registers_);
  std::vector<const Ct*> reg(registers_, nullptr);
  for (size_t i = 0; i < inputs.size(); ++i) reg[input_regs_[i]] = inputs[i];
  if (costs) costs->assign(steps_.size(), Cost{});
  for (size_t i = 0; i < steps_.size(); ++i) {
    const ProgramStep& s = steps_[i];
    Cost* c = costs ? &(*costs)[i] : nullptr;
    Cost scratch;
    const Ct& a = *reg[s.a];
    switch (s.kind) {
      case ProgramStep::Kind::map:
        held[s.out] = apply_block_map(ctx, keys, engine.encoder(), a, *s.map, s.inner_groups, c ? c : &scratch);
        break;
      case ProgramStep::Kind::rotate_sum:
        held[s.out] = rotate_sum(ctx, keys, a, s.steps, c ? c : &scratch);
        break;
      case ProgramStep::Kind::bilinear:
        held[s.out] = bilinear_sum(ctx, keys, a, *reg[s.b], s.rounds, s.outputs, c ? c : &scratch, s.chain_a,
                                   s.chain_b);
        break;
      case ProgramStep::Kind::gather:
        held[s.out] = gather(ctx, a, s.idx);
        break;
      case ProgramStep::Kind::add:
        held[s.out] = ops::add(ctx, a, *reg[s.b]);
        break;
      case ProgramStep::Kind::mul_values:
        held[s.out] = mul_values(engine, a, s);
        break;
    }
    reg[s.out] = &held[s.out];
    // Free what no later step reads (inputs belong to the caller).
    for (int r : {s.a, s.b})
      if (r >= 0 && !is_input[r] && last_read[r] == static_cast<int>(i) && !keep[r]) {
        held[r] = Ct();
        reg[r] = nullptr;
      }
  }
  std::vector<Ct> out;
  out.reserve(outputs.size());
  for (int r : outputs) {
    if (reg[r] == nullptr) fail(op, "an output register was freed");
    out.push_back(take(*reg[r]));
  }
  return out;
}

}  // namespace ht::linalg
