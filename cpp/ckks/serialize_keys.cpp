// Parameters and keys in the binary format (serialize.hpp): the context
// record is params | secret? | public key | relinearization key | Galois keys
// | encapsulation keys? | attrs.
#include <cmath>

#include "ckks/serialize.hpp"
#include "ckks/serialize_io.hpp"
#include "runtime/parallel.hpp"

namespace ht {

using format::Reader;
using format::Writer;

void write_params(Writer& w, const Params& p) {
  const ParamsLiteral& l = p.literal();
  w.str(l.name);
  for (int v : {l.log_n, l.first_prime_bits, l.scale_bits, l.levels, l.special_prime_bits, l.special_primes, l.dnum,
                l.hamming_weight})
    w.put<i32>(v);
  w.put<u32>(static_cast<u32>(l.level_bits.size()));
  for (int b : l.level_bits) w.put<i32>(b);
  w.put<double>(l.sigma);
  w.put<u8>(l.allow_insecure ? 1 : 0);
  w.put<u32>(static_cast<u32>(p.q().size()));
  w.words(p.q().data(), p.q().size());
  w.put<u32>(static_cast<u32>(p.p().size()));
  w.words(p.p().data(), p.p().size());
}

namespace io {

std::unique_ptr<Params> read_params(Reader& r, u64 expected_hash) {
  ParamsLiteral l;
  l.name = r.str(256, "parameter name");
  int* fields[] = {&l.log_n, &l.first_prime_bits, &l.scale_bits, &l.levels, &l.special_prime_bits,
                   &l.special_primes, &l.dnum, &l.hamming_weight};
  for (int* f : fields) *f = r.get<i32>("parameters");
  const u32 nbits = r.get<u32>("level sizes");
  if (nbits > 60) throw FormatError("corrupt parameters: " + std::to_string(nbits) + " level sizes (at most 60)");
  for (u32 i = 0; i < nbits; ++i) l.level_bits.push_back(r.get<i32>("level sizes"));
  l.sigma = r.get<double>("sigma");
  const u8 insecure = r.get<u8>("allow_insecure");
  if (insecure > 1) throw FormatError("corrupt parameters: allow_insecure is not 0 or 1");
  l.allow_insecure = insecure == 1;
  if (!std::isfinite(l.sigma)) throw FormatError("corrupt parameters: sigma is not finite");
  std::unique_ptr<Params> p;
  try {
    p = std::make_unique<Params>(l);   // range checks every field; picks primes (no big tables)
  } catch (const InvalidArgument& e) {
    throw FormatError(std::string("corrupt parameters: ") + e.what());
  }
  std::vector<u64> q, pp;
  for (auto* v : {&q, &pp}) {
    const u32 count = r.get<u32>("primes");
    if (count > 61) throw FormatError("corrupt parameters: " + std::to_string(count) + " primes");
    r.need(count * 8ull, "primes");
    v->resize(count);
    r.bytes(v->data(), count * 8ull, "primes");
  }
  if (q != p->q() || pp != p->p())
    throw FormatError("the stored primes differ from those the parameters give (another hetensor version or "
                      "corrupt data)");
  if (p->hash() != expected_hash)
    throw FormatError("the parameter hash of the header does not match the parameters (corrupt data)");
  return p;
}

void read_words(Reader& r, const Tables& ctx, const std::vector<int>& primes, u64* out, bool check,
                const char* what) {
  const u64 n = ctx.n();
  r.need(primes.size() * n * 8, what);
  for (size_t i = 0; i < primes.size(); ++i) {
    u64* dst = out + i * n;
    r.bytes(dst, n * 8, what);
    if (!check) continue;
    const u64 q = ctx.prime(primes[i]);
    u64 bad = 0;
    for (u64 k = 0; k < n; ++k) bad |= dst[k] >= q ? 1 : 0;
    if (bad) throw FormatError(std::string(what) + ": a residue is not below its prime (corrupt data)");
  }
}

std::vector<int> all_primes(const Tables& ctx) { return first_primes(ctx.max_level() + 1 + ctx.alpha()); }
std::vector<int> first_primes(int count) {
  std::vector<int> r(count);
  for (int i = 0; i < count; ++i) r[i] = i;
  return r;
}

namespace {
// A key's primes: q_0 .. q_level, then P (its limbs in order).
std::vector<int> key_primes(const Tables& ctx, int level) {
  std::vector<int> r = first_primes(level + 1);
  for (int k = 0; k < ctx.alpha(); ++k) r.push_back(ctx.p_index(k));
  return r;
}
// How a key's a halves are stored: words, seeds expanded on load, or seeds kept (a compact key).
enum KeyMode : u8 { kExpanded = 0, kSeeded = 1, kCompact = 2 };
}  // namespace

void write_switch_key(Writer& w, const Tables& ctx, const SwitchKey& k, bool compress) {
  const size_t words = static_cast<size_t>(k.limbs()) * ctx.n();
  const bool has_seeds = static_cast<int>(k.a_seeds.size()) == k.digits;
  const u8 mode = k.compact ? kCompact : (compress && has_seeds ? kSeeded : kExpanded);
  w.put<u32>(static_cast<u32>(k.digits));
  w.put<u8>(mode);
  w.put<i32>(k.level);
  for (int j = 0; j < k.digits; ++j) {
    w.words(k.b(j, 0), words);
    if (mode == kExpanded) w.words(k.a(j, 0), words);
    else w.bytes(k.a_seeds[j].data(), sizeof(Seed));
  }
}

std::shared_ptr<SwitchKey> read_switch_key(Reader& r, const Tables& ctx, bool check) {
  const u32 digits = r.get<u32>("key digits");
  const u8 mode = r.get<u8>("key compression flag");
  if (mode > kCompact) throw FormatError("corrupt key: compression flag " + std::to_string(mode) + " is not 0, 1 or 2");
  const i32 level = r.get<i32>("key level");
  if (level < 0 || level > ctx.max_level())
    throw FormatError("corrupt key: level " + std::to_string(level) + " is outside the chain [0, " +
                      std::to_string(ctx.max_level()) + "]");
  if (static_cast<int>(digits) != ctx.num_digits(level))
    throw FormatError("a switching key has " + std::to_string(digits) + " digits; the parameters give " +
                      std::to_string(ctx.num_digits(level)) + " at its level " + std::to_string(level));
  const auto primes = key_primes(ctx, level);
  const size_t words = primes.size() * ctx.n();
  r.need(digits * (words * 8 + (mode == kExpanded ? words * 8 : sizeof(Seed))), "a switching key");
  auto k = std::make_shared<SwitchKey>();
  k->digits = static_cast<int>(digits);
  k->level = level;
  k->alpha = ctx.alpha();
  k->n = ctx.n();
  k->compact = mode == kCompact;
  k->data = Buffer(k->halves() * digits * words, false, false);
  if (mode != kExpanded) k->a_seeds.resize(digits);
  for (u32 j = 0; j < digits; ++j) {
    read_words(r, ctx, primes, k->b(static_cast<int>(j), 0), check, "a switching key");
    if (mode != kExpanded) r.bytes(k->a_seeds[j].data(), sizeof(Seed), "a key seed");
    else read_words(r, ctx, primes, k->a(static_cast<int>(j), 0), check, "a switching key");
  }
  if (mode == kSeeded)
    for (u32 j = 0; j < digits; ++j) expand_uniform(ctx, k->a_seeds[j], k->a(static_cast<int>(j), 0), primes);
  return k;
}

}  // namespace io

using namespace io;

void write_context(Writer& w, const Engine& e, const std::string& attrs, bool with_secret, bool compress) {
  const Tables& ctx = e.tables();
  const KeyChain& keys = e.keys();
  const auto primes = all_primes(ctx);
  const size_t words = primes.size() * ctx.n();
  write_params(w, ctx.params());
  w.put<u8>(with_secret ? 1 : 0);
  if (with_secret) w.words(keys.secret().s.data(), words);
  const PublicKey& pk = keys.public_key();
  w.put<u8>(compress ? 1 : 0);
  w.words(pk.b.data(), words);
  if (compress) w.bytes(pk.a_seed.data(), sizeof(Seed));
  else w.words(pk.a.data(), words);
  write_switch_key(w, ctx, keys.relin_key(), compress);
  const auto elts = keys.galois_elements();
  w.put<u32>(static_cast<u32>(elts.size()));
  for (u64 g : elts) {
    w.put<u64>(g);
    write_switch_key(w, ctx, *keys.galois_key(g), compress);
  }
  auto enc = keys.encapsulation();
  w.put<u8>(enc ? 1 : 0);
  if (enc) {
    const u64 n = ctx.n();
    w.put<i32>(enc->weight);
    w.put<u8>(compress ? 1 : 0);
    w.words(enc->to_sparse.data(), 2 * n);
    if (compress) w.bytes(enc->to_sparse_seed.data(), sizeof(Seed));
    else w.words(enc->to_sparse.data() + 2 * n, 2 * n);
    write_switch_key(w, ctx, enc->to_dense, compress);
  }
  w.str(attrs);
}

LoadedContext load_context(const u8* data, size_t len, bool allow_insecure, Validation v) {
  const bool check = v == Validation::kFull;
  const format::Header h = format::read_header(data, len, check);
  if (h.type != format::Type::kContext)
    throw FormatError(std::string("expected a context, found a ") + format::type_name(h.type));
  Reader r(data + format::kHeaderBytes, len - format::kHeaderBytes);
  std::unique_ptr<Params> params = read_params(r, h.param_hash);
  if (params->literal().allow_insecure && !allow_insecure)
    throw SecurityError("the file holds insecure parameters ('" + params->name() +
                        "'); pass allow_insecure=True to load them (tests only)");
  {
    // The context's tables grow with N and the chain: before building them,
    // the data must hold at least the public and relinearization keys they
    // serve (b parts alone), so a short file cannot make large tables.
    const size_t words = (params->q().size() + params->p().size()) * params->n();
    const size_t digits = static_cast<size_t>(params->max_level() / params->digit_size() + 1);
    r.need((1 + digits) * words * 8, "the keys of these parameters");
  }
  auto ctx = std::make_shared<Tables>(params->literal());
  const auto primes = all_primes(*ctx);
  const u64 n = ctx->n();
  const size_t words = primes.size() * n;

  const u8 has_secret = r.get<u8>("secret flag");
  if (has_secret > 1) throw FormatError("corrupt context: secret flag is not 0 or 1");
  Buffer secret;
  if (has_secret) {
    r.need(words * 8, "the secret key");
    secret = Buffer(words, true, false);
    read_words(r, *ctx, primes, secret.data(), true, "the secret key");
  }
  const u8 pk_seeded = r.get<u8>("public key compression flag");
  if (pk_seeded > 1) throw FormatError("corrupt public key: compression flag is not 0 or 1");
  r.need(words * 8 + (pk_seeded ? sizeof(Seed) : words * 8), "the public key");
  auto pk = std::make_shared<PublicKey>();
  pk->b = Buffer(words, false, false);
  pk->a = Buffer(words, false, false);
  read_words(r, *ctx, primes, pk->b.data(), check, "the public key");
  if (pk_seeded) {
    r.bytes(pk->a_seed.data(), sizeof(Seed), "the public key seed");
    expand_uniform(*ctx, pk->a_seed, pk->a.data(), primes);
  } else {
    read_words(r, *ctx, primes, pk->a.data(), check, "the public key");
  }
  auto relin = read_switch_key(r, *ctx, check);
  if (relin->level != ctx->max_level()) throw FormatError("corrupt context: the relinearization key is trimmed");
  auto keys = std::make_unique<KeyChain>(ctx, pk, relin, std::move(secret));
  if (keys->key_id() != h.key_id) throw FormatError("the key id of the header does not match the keys (corrupt data)");

  const u32 count = r.get<u32>("Galois key count");
  // The smallest key: one digit at level 0 (q_0 and P), seeded.
  const size_t min_key = static_cast<size_t>(1 + ctx->alpha()) * n * 8 + sizeof(Seed);
  if (count > ctx->n() || static_cast<size_t>(count) * min_key > r.left())
    throw FormatError("corrupt context: " + std::to_string(count) + " Galois keys cannot fit in the data left");
  for (u32 i = 0; i < count; ++i) {
    const u64 g = r.get<u64>("Galois element");
    if (g % 2 == 0 || g >= 2 * n) throw FormatError("corrupt context: " + std::to_string(g) + " is not a Galois element");
    if (keys->has_galois_key(g)) throw FormatError("corrupt context: a Galois key appears twice");
    auto key = read_switch_key(r, *ctx, check);
    if (key->compact) keys->set_compact_keys(true);  // keys made after loading stay compact too
    keys->add_galois_key(g, std::move(key));
  }
  const u8 has_enc = r.get<u8>("encapsulation flag");
  if (has_enc > 1) throw FormatError("corrupt context: encapsulation flag is not 0 or 1");
  if (has_enc) {
    auto enc = std::make_shared<EncapsulationKeys>();
    enc->weight = r.get<i32>("encapsulation weight");
    if (enc->weight < 1 || static_cast<u64>(enc->weight) > n)
      throw FormatError("corrupt context: encapsulation weight out of range");
    const u8 seeded = r.get<u8>("encapsulation compression flag");
    if (seeded > 1) throw FormatError("corrupt context: compression flag is not 0 or 1");
    const std::vector<int> two{0, ctx->p_index(0)};
    r.need(2 * n * 8 + (seeded ? sizeof(Seed) : 2 * n * 8), "the encapsulation key");
    enc->to_sparse = Buffer(4 * n, true, false);
    read_words(r, *ctx, two, enc->to_sparse.data(), check, "the encapsulation key");
    if (seeded) {
      r.bytes(enc->to_sparse_seed.data(), sizeof(Seed), "the encapsulation seed");
      expand_uniform(*ctx, enc->to_sparse_seed, enc->to_sparse.data() + 2 * n, two);
    } else {
      read_words(r, *ctx, two, enc->to_sparse.data() + 2 * n, check, "the encapsulation key");
    }
    auto dense = read_switch_key(r, *ctx, check);
    if (dense->level != ctx->max_level()) throw FormatError("corrupt context: the encapsulation key is trimmed");
    enc->to_dense = std::move(*dense);
    keys->set_encapsulation(std::move(enc));
  }
  LoadedContext out;
  out.attrs = r.str(1 << 20, "context attributes");
  r.expect_end("context");
  out.engine = std::make_unique<Engine>(ctx, std::move(keys));
  return out;
}

ParamsLiteral load_params(const u8* data, size_t len, Validation v) {
  const format::Header h = format::read_header(data, len, v == Validation::kFull);
  if (h.type != format::Type::kParams)
    throw FormatError(std::string("expected parameters, found a ") + format::type_name(h.type));
  if (h.key_id != 0) throw FormatError("corrupt header: parameters carry no key id");
  Reader r(data + format::kHeaderBytes, len - format::kHeaderBytes);
  auto p = read_params(r, h.param_hash);
  r.expect_end("parameters");
  return p->literal();
}

}  // namespace ht
