// Resident memory: the checkpoint is memory-mapped and each tensor's pages are dropped once it is
// converted, so after loading with the bf16 policy the process holds the converted weights, the
// KV cache and little else (measured from /proc/self/status).
#include <gtest/gtest.h>

#include <fstream>

#include "model_test_util.h"

namespace bringup {
namespace {

// A field of /proc/self/status in bytes (VmRSS: resident now, VmHWM: peak).
size_t proc_status_bytes(const std::string& field) {
  std::ifstream in("/proc/self/status");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind(field + ":", 0) == 0) return std::stoull(line.substr(field.size() + 1)) * 1024;
  }
  return 0;
}

#if defined(__SANITIZE_ADDRESS__)
#define BRINGUP_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define BRINGUP_ASAN 1
#endif
#endif

TEST(Memory, Bf16ResidentWithinWeightsPlusCache) {
#ifdef BRINGUP_ASAN
  GTEST_SKIP() << "resident memory under AddressSanitizer includes its shadow memory; the normal "
                  "build measures this";
#endif
  test::TempDir dir("memory");
  SynthOptions o;
  o.config = test::small_config();
  o.config.hidden_size = 1024;
  o.config.num_attention_heads = 8;
  o.config.num_key_value_heads = 2;
  o.config.head_dim = 128;
  o.config.intermediate_size = 2816;
  o.config.num_hidden_layers = 8;
  o.config.vocab_size = 8192;
  o.config.max_position_embeddings = 4096;
  o.shard_bytes = size_t{64} << 20;
  write_synthetic_checkpoint(o, dir.path());

  const Checkpoint ck = Checkpoint::open(dir.path());
  auto dev = make_cpu_device(2);
  auto model = build_model(ck, *dev, 0, Precision::kBf16);
  auto seq = model->new_sequence();
  std::vector<int32_t> prompt(300);
  for (size_t i = 0; i < prompt.size(); ++i) prompt[i] = static_cast<int32_t>(i * 13 % 8192);
  model->prefill(*seq, prompt);
  for (int i = 0; i < 8; ++i) model->decode(*seq, i);

  const double weights = static_cast<double>(model->weight_bytes());
  const double kv = static_cast<double>(model->kv_cache_bytes());
  const double rss = static_cast<double>(proc_status_bytes("VmRSS"));
  const double peak = static_cast<double>(proc_status_bytes("VmHWM"));
  std::printf(
      "weights %.1f MB, kv cache %.1f MB, resident %.1f MB (%.3f x weights+kv), peak %.1f MB\n",
      weights / 1e6, kv / 1e6, rss / 1e6, rss / (weights + kv), peak / 1e6);
  EXPECT_GT(weights, 200e6);  // the model is large enough for the ratio to mean something
  EXPECT_EQ(model->weight_bytes(), ck.weight_bytes());  // bf16 policy on a bf16 checkpoint
  EXPECT_LE(rss, 1.15 * weights + kv);
  EXPECT_LE(peak, 1.15 * weights + kv);
}

}  // namespace
}  // namespace bringup
