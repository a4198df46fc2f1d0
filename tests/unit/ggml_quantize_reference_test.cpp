// bringup's quantizers (core/ggml_quantize.cpp) against ggml's own reference quantizers,
// quantize_row_*_ref from ggml-quants.c of the llama.cpp source that `make deps` unpacks from the
// npm package node-llama-cpp (compiled here as a test reference only): the same bytes for rows of
// many magnitudes, offsets and zero runs. Built only when that source is present.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdlib>
#include <random>
#include <string>
#include <vector>

#include "core/ggml_quants.h"

extern "C" {
void quantize_row_q8_0_ref(const float* x, void* y, int64_t k);
void quantize_row_q5_0_ref(const float* x, void* y, int64_t k);
void quantize_row_q4_K_ref(const float* x, void* y, int64_t k);
void quantize_row_q6_K_ref(const float* x, void* y, int64_t k);
// ggml.c functions ggml-quants.c names outside the reference quantizers, never reached by them.
[[noreturn]] void ggml_abort(const char*, int, const char*, ...) {
  std::abort();
}
size_t ggml_row_size(int, int64_t) {
  std::abort();
}
const char* ggml_type_name(int) {
  return "";
}
size_t ggml_type_size(int) {
  std::abort();
}
}

namespace bringup {
namespace {

TEST(GgmlQuantizeReference, EveryQuantizerWritesGgmlsBytes) {
  const struct {
    StorageDType type;
    void (*ref)(const float*, void*, int64_t);
  } types[] = {{StorageDType::kQ8_0, quantize_row_q8_0_ref},
               {StorageDType::kQ5_0, quantize_row_q5_0_ref},
               {StorageDType::kQ4_K, quantize_row_q4_K_ref},
               {StorageDType::kQ6_K, quantize_row_q6_K_ref}};
  constexpr int64_t n = 256 * 16;
  for (const auto& t : types) {
    SCOPED_TRACE(std::string(storage_dtype_name(t.type)));
    std::mt19937 rng(7);
    for (int trial = 0; trial < 60; ++trial) {
      const float scale = std::ldexp(1.0f, trial % 20 - 12);
      std::normal_distribution<float> dist(trial % 3 == 0 ? 0.5f * scale : 0.0f, scale);
      std::vector<float> x(n);
      for (float& v : x) v = dist(rng);
      if (trial % 7 == 0) {
        for (int64_t i = 0; i < n; i += 3) x[i] = 0;
      }
      if (trial % 11 == 0) {
        for (int64_t i = 0; i < 256; ++i) x[i] = 0;  // an all-zero super-block
      }
      std::vector<std::byte> mine(storage_bytes(t.type, n)), theirs(mine.size());
      quantize_ggml(t.type, x.data(), n, mine.data());
      t.ref(x.data(), theirs.data(), n);
      for (size_t i = 0; i < mine.size(); ++i) {
        ASSERT_EQ(mine[i], theirs[i]) << "trial " << trial << ", byte " << i;
      }
    }
  }
}

}  // namespace
}  // namespace bringup
