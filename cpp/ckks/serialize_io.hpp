// Helpers shared by the readers and writers of serialize_*.cpp (not public).
#pragma once
#include <memory>
#include <vector>

#include "ckks/format.hpp"
#include "ckks/keys.hpp"

namespace ht::io {

std::vector<int> first_primes(int count);
std::vector<int> all_primes(const Tables& ctx);
std::unique_ptr<Params> read_params(format::Reader& r, u64 expected_hash);
// count(primes) x N residues; with `check`, each below its prime.
void read_words(format::Reader& r, const Tables& ctx, const std::vector<int>& primes, u64* out, bool check,
                const char* what);
void write_switch_key(format::Writer& w, const Tables& ctx, const SwitchKey& k, bool compress);
std::shared_ptr<SwitchKey> read_switch_key(format::Reader& r, const Tables& ctx, bool check);

}  // namespace ht::io
