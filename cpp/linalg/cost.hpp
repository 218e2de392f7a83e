// Operation counts of the linalg layer, per ciphertext: a rotation of a batch
// of B ciphertexts counts B key switches. The Python layer sums them into a
// MatmulCost record for every product.
#pragma once

namespace ht::linalg {

struct Cost {
  long rotations = 0;          // slot rotations (each one key switch), hoisted ones included
  long hoisted = 0;            // of those, the ones that reused a decomposition
  long decompositions = 0;     // ModUp decompositions (one per hoisting group)
  long relinearizations = 0;   // relinearizations (each one key switch)
  long plain_mults = 0;        // ciphertext x plaintext products
  long tensor_products = 0;    // ciphertext x ciphertext products (before relinearization)
  long rescales = 0;
  long encodes = 0;            // plaintexts encoded during the operation (streamed diagonals)

  long key_switches() const { return rotations + relinearizations; }
  void add(const Cost& o) {
    rotations += o.rotations;
    hoisted += o.hoisted;
    decompositions += o.decompositions;
    relinearizations += o.relinearizations;
    plain_mults += o.plain_mults;
    tensor_products += o.tensor_products;
    rescales += o.rescales;
    encodes += o.encodes;
  }
};

}  // namespace ht::linalg
