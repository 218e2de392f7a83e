#include "runtime/parallel.hpp"

#include "core/error.hpp"

namespace ht {

int max_num_threads() {
#ifdef _OPENMP
  // More threads than 4 per processor only adds contention; libgomp fails to
  // start thousands of threads and takes the process down.
  const int procs = omp_get_num_procs();
  return procs < 1 ? 4 : (procs > 256 ? 1024 : 4 * procs);
#else
  return 1;
#endif
}

int set_num_threads(int threads) {
  if (threads < 1) throw InvalidArgument("set_num_threads needs a positive thread count");
  const int used = threads < max_num_threads() ? threads : max_num_threads();
#ifdef _OPENMP
  omp_set_num_threads(used);
#endif
  return used;
}

int get_num_threads() {
#ifdef _OPENMP
  return omp_get_max_threads();
#else
  return 1;
#endif
}

}  // namespace ht
