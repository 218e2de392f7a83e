// Device discovery for the CUDA backend: whether a usable GPU is present,
// how many, their names. Safe without a driver: every query reports
// "no device" instead of throwing or aborting.
#include <stdexcept>
#include <string>

#include "check.cuh"
#include "cuda_api.hpp"

namespace ht::cuda {
namespace {

__global__ void probe_kernel() {}

// A device is usable when the runtime initializes and this build carries code
// (SASS or PTX) that the current device can run.
bool probe(std::string* why) {
  int count = 0;
  cudaError_t err = cudaGetDeviceCount(&count);
  if (err == cudaSuccess && count == 0) err = cudaErrorNoDevice;
  if (err == cudaSuccess) {
    cudaFuncAttributes attr{};
    err = cudaFuncGetAttributes(&attr, probe_kernel);
  }
  if (err == cudaSuccess) return true;
  (void)cudaGetLastError();
  if (why) *why = std::string(cudaGetErrorName(err)) + ": " + cudaGetErrorString(err);
  return false;
}

struct Probe {
  bool ok;
  std::string why;
  Probe() { ok = probe(&why); }
};

const Probe& cached_probe() {
  static const Probe p;  // thread-safe, runs once per process
  return p;
}

}  // namespace

bool available() {
  try {
    return cached_probe().ok;
  } catch (...) {
    return false;
  }
}

int device_count() {
  int count = 0;
  if (cudaGetDeviceCount(&count) != cudaSuccess) {
    (void)cudaGetLastError();
    return 0;
  }
  return count;
}

std::string device_name(int device) {
  const int count = device_count();
  if (device < 0 || device >= count)
    throw std::out_of_range("cannot get CUDA device name: device " + std::to_string(device) + " is not in [0, " +
                            std::to_string(count) + ")");
  cudaDeviceProp prop{};
  HT_CUDA_CHECK(cudaGetDeviceProperties(&prop, device));
  return prop.name;
}

void require_device(const char* op) {
  const Probe& p = cached_probe();
  if (!p.ok) throw std::runtime_error(std::string("cannot ") + op + " on CUDA: no usable CUDA device (" + p.why + ")");
}

}  // namespace ht::cuda
