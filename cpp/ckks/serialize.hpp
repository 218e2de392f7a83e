// hetensor's binary format for parameters, keys, ciphertexts and plaintexts
// (the byte layer is format.hpp). Polynomials are stored as they live, in the
// NTT domain, one little-endian u64 per residue; a uniform `a` part that was
// expanded from a seed is stored as its 32-byte seed instead (about half the
// bytes of a key or a symmetric ciphertext).
// Loading validates like SEAL: the metadata always (header, parameter hash,
// key id, every size against the context before any allocation, level, scale);
// with Validation::kFull also the checksum and every residue < q.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include "ckks/engine.hpp"
#include "ckks/format.hpp"

namespace ht {

using format::u8;
using format::u16;
using format::i32;

enum class Validation { kUnsafe, kFull };

// Runs `body` twice: once to size the payload, once into memory obtained
// from `alloc(total_bytes)` (header + payload), so large keys are written once.
void serialize_object(format::Header h, const std::function<void(format::Writer&)>& body,
                      const std::function<u8*(size_t)>& alloc);

// Parameters and keys of `engine` (and its secret key when with_secret),
// plus `attrs`, a string the Python layer stores with the context.
void write_context(format::Writer& w, const Engine& engine, const std::string& attrs, bool with_secret,
                   bool compress);
struct LoadedContext {
  std::unique_ptr<Engine> engine;
  std::string attrs;
};
// Insecure parameters load only with allow_insecure.
LoadedContext load_context(const u8* data, size_t len, bool allow_insecure, Validation v);

// A ciphertext or plaintext batch with the Python layer's `attrs` (shape,
// layout). `seeded` stores c_1 of a symmetric encryption as its seeds: only
// when can_store_seeds (c_1 still equals the expansion of the seeds).
bool can_store_seeds(const Tables& ctx, const PolyBatch& b);
void write_batch(format::Writer& w, const Tables& ctx, const PolyBatch& b, const std::string& attrs, bool seeded);
struct LoadedBatch {
  PolyBatch batch;
  std::string attrs;
};
LoadedBatch load_batch(const u8* data, size_t len, const Engine& engine, format::Type type, Validation v);

// Parameters alone (the literal and its primes).
void write_params(format::Writer& w, const Params& p);
ParamsLiteral load_params(const u8* data, size_t len, Validation v);

// A payload of the Python layer (PlainMatrix), checked like the rest.
std::string load_blob(const u8* data, size_t len, Validation v);

}  // namespace ht
