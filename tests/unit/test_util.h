// Helpers shared by the unit tests: random data, the devices to test on, reference helpers.
#pragma once

#include <cmath>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "core/dtype.h"
#include "core/tensor.h"
#include "device/cpu_device.h"
#include "kernels/cpu/microkernels.h"

namespace bringup::test {

inline std::vector<float> random_vector(size_t n, uint32_t seed, float scale = 1.0f) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> dist(0.0f, scale);
  std::vector<float> v(n);
  for (float& x : v) x = dist(rng);
  return v;
}

inline Tensor random_tensor(std::vector<int64_t> shape, uint32_t seed, float scale = 1.0f) {
  Tensor t(std::move(shape));
  const auto v = random_vector(static_cast<size_t>(t.numel()), seed, scale);
  std::copy(v.begin(), v.end(), t.data());
  return t;
}

// Every kernel set this machine can run: the portable Highway one, and AVX512-BF16 and AMX if
// present.
inline std::vector<std::pair<std::string, const cpu::MicroKernels*>> kernel_sets() {
  std::vector<std::pair<std::string, const cpu::MicroKernels*>> sets = {
      {"portable", &cpu::portable_kernels()}};
  if (const auto* fast = cpu::avx512_bf16_kernels()) sets.push_back({"avx512-bf16", fast});
  if (const auto* amx = cpu::amx_bf16_kernels()) sets.push_back({"avx512-amx", amx});
  return sets;
}

// |a - b| <= atol + rtol * |b|, reporting the first failure.
inline ::testing::AssertionResult near_all(const float* got, const std::vector<double>& want,
                                           double atol, double rtol) {
  for (size_t i = 0; i < want.size(); ++i) {
    const double err = std::fabs(got[i] - want[i]);
    if (!(err <= atol + rtol * std::fabs(want[i]))) {
      return ::testing::AssertionFailure()
             << "element " << i << ": got " << got[i] << ", want " << want[i];
    }
  }
  return ::testing::AssertionSuccess();
}

}  // namespace bringup::test
