// Errors thrown by the core. Each names the operation that failed; the
// bindings translate them to Python exceptions (ValueError, SecurityError, ...).
#pragma once
#include <stdexcept>
#include <string>
#include <vector>

namespace ht {

// Invalid argument from the caller: wrong shape, level, context, value range.
struct InvalidArgument : std::invalid_argument {
  using std::invalid_argument::invalid_argument;
};

// Parameters that do not meet the 128-bit HE-standard bound.
struct SecurityError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A serialized object that cannot be read: bad header, size, checksum,
// parameters or value. Loading never trusts a length before checking it.
struct FormatError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// A rotation (Galois) key that was not generated. `steps` lists the slot
// rotations whose keys are missing.
struct MissingKeyError : std::runtime_error {
  std::vector<long> steps;
  MissingKeyError(const std::string& what, std::vector<long> s)
      : std::runtime_error(what), steps(std::move(s)) {}
};

[[noreturn]] inline void fail(const std::string& op, const std::string& why) {
  throw InvalidArgument("cannot " + op + ": " + why);
}

}  // namespace ht
