// CUDA error handling: every runtime call goes through HT_CUDA_CHECK, which
// turns a failure into std::runtime_error naming the file, line, call and the
// CUDA error string (pybind11 raises it as RuntimeError). Never exit/abort.
#pragma once
#include <cuda_runtime.h>

#include <stdexcept>
#include <string>

namespace ht::cuda {

struct CudaError : std::runtime_error {
  cudaError_t code;
  CudaError(const std::string& what, cudaError_t c) : std::runtime_error(what), code(c) {}
};

[[noreturn]] inline void throw_cuda_error(cudaError_t err, const char* expr, const char* file, int line) {
  (void)cudaGetLastError();  // clear a non-sticky error so later calls start clean
  throw CudaError(std::string("CUDA error ") + cudaGetErrorName(err) + " (" + cudaGetErrorString(err) +
                      ") in " + expr + " at " + file + ":" + std::to_string(line),
                  err);
}

// Throws std::runtime_error("cannot <op> on CUDA: ...") unless available().
void require_device(const char* op);

}  // namespace ht::cuda

#define HT_CUDA_CHECK(expr)                                                         \
  do {                                                                              \
    const cudaError_t ht_cuda_err_ = (expr);                                        \
    if (ht_cuda_err_ != cudaSuccess) ::ht::cuda::throw_cuda_error(ht_cuda_err_, #expr, __FILE__, __LINE__); \
  } while (0)
