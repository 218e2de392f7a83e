// Ciphertext and plaintext batches in the binary format (serialize.hpp):
//   kind | batch | size | level | scale | bound | attrs | seeded
//   | per item: c_0 [, c_1 unless seeded] [, c_2] | seeds (when seeded)
#include "ckks/serialize.hpp"

#include <cmath>
#include <cstring>

#include "ckks/serialize_io.hpp"

namespace ht {

using format::Reader;
using format::Writer;

void serialize_object(format::Header h, const std::function<void(Writer&)>& body,
                      const std::function<u8*(size_t)>& alloc) {
  Writer measure;
  body(measure);
  const size_t payload = measure.size();
  u8* out = alloc(format::kHeaderBytes + payload);
  Writer w(out + format::kHeaderBytes);
  body(w);
  if (w.size() != payload) throw std::logic_error("serialize: the object changed while it was written");
  format::write_header(out, h, out + format::kHeaderBytes, payload);
}

namespace {
// c_1 of item b is still the expansion of its seed (a fresh symmetric encryption).
bool seed_matches(const Tables& ctx, const PolyBatch& pb, int b) {
  const size_t words = static_cast<size_t>(pb.limbs()) * pb.n;
  Buffer a(words, false, false);
  expand_uniform(ctx, pb.a_seeds[b], a.data(), io::first_primes(pb.limbs()));
  return std::memcmp(a.data(), pb.poly(b, 1), words * 8) == 0;
}
}  // namespace

bool can_store_seeds(const Tables& ctx, const PolyBatch& pb) {
  bool ok = pb.size == 2 && static_cast<int>(pb.a_seeds.size()) == pb.batch;
  for (int b = 0; ok && b < pb.batch; ++b) ok = seed_matches(ctx, pb, b);
  return ok;
}

void write_batch(Writer& w, const Tables& ctx, const PolyBatch& pb, const std::string& attrs, bool seeded) {
  const size_t words = static_cast<size_t>(pb.limbs()) * pb.n;
  w.put<i32>(pb.batch);
  w.put<i32>(pb.size);
  w.put<i32>(pb.level);
  w.put<double>(pb.scale);
  w.put<double>(pb.bound);
  w.str(attrs);
  w.put<u8>(seeded ? 1 : 0);
  for (int b = 0; b < pb.batch; ++b)
    for (int k = 0; k < pb.size; ++k)
      if (!(seeded && k == 1)) w.words(pb.poly(b, k), words);
  if (seeded)
    for (int b = 0; b < pb.batch; ++b) w.bytes(pb.a_seeds[b].data(), sizeof(Seed));
}

LoadedBatch load_batch(const u8* data, size_t len, const Engine& e, format::Type type, Validation v) {
  const bool check = v == Validation::kFull;
  const format::Header h = format::read_header(data, len, check);
  const bool cipher = type == format::Type::kCiphertext;
  if (h.type != type)
    throw FormatError(std::string("expected a ") + format::type_name(type) + ", found a " + format::type_name(h.type));
  const Tables& ctx = e.tables();
  if (h.param_hash != ctx.params().hash())
    throw FormatError("the object was made with other parameters (parameter hash differs); load it with the "
                      "context that made it");
  if (!cipher && h.key_id != 0) throw FormatError("corrupt header: a plaintext carries no key id");
  if (cipher && h.key_id != e.keys().key_id())
    throw FormatError("the ciphertext was encrypted under other keys (key id differs); load it with the context "
                      "whose keys encrypted it");
  Reader r(data + format::kHeaderBytes, len - format::kHeaderBytes);
  const i32 batch = r.get<i32>("batch"), size = r.get<i32>("size"), level = r.get<i32>("level");
  const double scale = r.get<double>("scale"), bound = r.get<double>("bound");
  if (batch < 1) throw FormatError("corrupt object: batch " + std::to_string(batch));
  if (cipher ? (size != 2 && size != 3) : size != 1)
    throw FormatError("corrupt object: " + std::to_string(size) + " polynomials per item");
  if (level < 0 || level > ctx.max_level())
    throw FormatError("corrupt object: level " + std::to_string(level) + " is outside the chain [0, " +
                      std::to_string(ctx.max_level()) + "]");
  // A scale outside (2^-64, 2^4000) or a negative bound cannot come from any operation.
  if (!(std::isfinite(scale) && scale > std::ldexp(1.0, -64)) || !(std::isfinite(bound) && bound >= 0))
    throw FormatError("corrupt object: scale or bound out of range");
  LoadedBatch out;
  out.attrs = r.str(1 << 20, "attributes");
  const u8 seeded = r.get<u8>("compression flag");
  if (seeded > 1 || (seeded && size != 2)) throw FormatError("corrupt object: bad compression flag");
  const size_t limbs = static_cast<size_t>(level) + 1, words = limbs * ctx.n();
  const size_t polys = static_cast<size_t>(size) - seeded;
  // Every byte that the allocation would hold must be present before allocating.
  const size_t per_item = polys * words * 8 + (seeded ? sizeof(Seed) : 0);
  if (static_cast<size_t>(batch) > r.left() / per_item)
    throw FormatError("truncated or corrupt data: " + std::to_string(batch) + " items of " +
                      std::to_string(per_item) + " bytes do not fit in the " + std::to_string(r.left()) +
                      " bytes left");
  PolyBatch pb(ctx.n(), batch, size, level, scale, ctx.id(), false, false);
  pb.bound = bound;
  const auto primes = io::first_primes(static_cast<int>(limbs));
  for (int b = 0; b < batch; ++b)
    for (int k = 0; k < size; ++k)
      if (!(seeded && k == 1)) io::read_words(r, ctx, primes, pb.poly(b, k), check, "polynomial data");
  if (seeded) {
    pb.a_seeds.resize(batch);
    for (int b = 0; b < batch; ++b) {
      r.bytes(pb.a_seeds[b].data(), sizeof(Seed), "a seed");
      expand_uniform(ctx, pb.a_seeds[b], pb.poly(b, 1), primes);
    }
  }
  r.expect_end(format::type_name(type));
  out.batch = std::move(pb);
  return out;
}

std::string load_blob(const u8* data, size_t len, Validation v) {
  const format::Header h = format::read_header(data, len, v == Validation::kFull);
  if (h.type != format::Type::kBlob)
    throw FormatError(std::string("expected an object of the Python layer, found a ") + format::type_name(h.type));
  if (h.key_id != 0) throw FormatError("corrupt header: this object carries no key id");
  return std::string(reinterpret_cast<const char*>(data + format::kHeaderBytes), len - format::kHeaderBytes);
}

}  // namespace ht
