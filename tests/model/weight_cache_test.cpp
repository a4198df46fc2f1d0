// The packed-weight cache: a model loaded from it computes bit for bit what a converted one does,
// under every policy and weight format; a stale, truncated or damaged cache file is rebuilt (and
// says why), never used; a cache that cannot be written leaves the model working.
#include <gtest/gtest.h>

#include <cstring>
#include <fstream>

#include "core/mapped_file.h"
#include "io/gguf_export.h"
#include "model_test_util.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;
using State = WeightCacheReport::State;

// Logits of every position of a fixed prompt.
std::vector<float> logits_of(Model& m) {
  const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6, 5, 3, 5};
  auto seq = m.new_sequence();
  const auto out = m.prefill(*seq, ids, true);
  return {out.begin(), out.end()};
}

struct Loaded {
  std::vector<float> logits;
  WeightCacheReport report;
  size_t weight_bytes = 0;
};

Loaded load(const fs::path& model, Precision p, const fs::path& cache, bool map = false) {
  const Checkpoint ck = Checkpoint::open(model);
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.precision = p;
  o.max_seq_len = 64;
  o.weight_cache = cache;
  o.map_weight_cache = map;
  auto m = build_model(ck, *dev, o);
  return {logits_of(*m), m->weight_cache(), m->weight_bytes()};
}

fs::path synth(const fs::path& dir, uint64_t seed) {
  SynthOptions so;
  so.config = test::small_config();
  so.seed = seed;
  write_synthetic_checkpoint(so, dir);
  return dir;
}

void expect_bits_equal(const std::vector<float>& a, const std::vector<float>& b) {
  ASSERT_EQ(a.size(), b.size());
  EXPECT_EQ(std::memcmp(a.data(), b.data(), a.size() * sizeof(float)), 0);
}

// Written by the first load, read by the second (copied, the default) and third (mapped); the
// same logits as no cache, bit for bit.
void expect_round_trip(const fs::path& model, Precision p, const fs::path& cache) {
  SCOPED_TRACE(std::string(precision_name(p)));
  const Loaded plain = load(model, p, {});
  EXPECT_EQ(plain.report.state, State::kOff);
  const Loaded first = load(model, p, cache);
  EXPECT_EQ(first.report.state, State::kWritten);
  EXPECT_EQ(first.report.reason, "");
  EXPECT_GE(first.report.bytes, plain.weight_bytes);
  const Loaded second = load(model, p, cache);
  EXPECT_EQ(second.report.state, State::kLoaded) << second.report.reason;
  EXPECT_FALSE(second.report.mapped);
  EXPECT_EQ(second.weight_bytes, plain.weight_bytes);
  const Loaded mapped = load(model, p, cache, true);
  EXPECT_EQ(mapped.report.state, State::kLoaded) << mapped.report.reason;
  EXPECT_TRUE(mapped.report.mapped);
  EXPECT_EQ(mapped.weight_bytes, plain.weight_bytes);
  expect_bits_equal(first.logits, plain.logits);
  expect_bits_equal(second.logits, plain.logits);
  expect_bits_equal(mapped.logits, plain.logits);
}

TEST(WeightCache, LogitsUnchangedUnderEveryPolicy) {
  test::TempDir tmp("wcache-policies");
  const fs::path model = synth(tmp / "m", 1);
  for (Precision p :
       {Precision::kFp32, Precision::kBf16, Precision::kBfp8Mixed, Precision::kBfp8}) {
    expect_round_trip(model, p, tmp / "cache");
  }
  // Each policy has a file of its own.
  EXPECT_TRUE(fs::exists(tmp / "cache" / "m.bfp8.weights"));
  EXPECT_TRUE(fs::exists(tmp / "cache" / "m.fp32.weights"));
}

// ggml block types keep their scales (and Q4_K its sub-block scales) in buffers of their own.
TEST(WeightCache, LogitsUnchangedForGgufBlockTypes) {
  test::TempDir tmp("wcache-gguf");
  const fs::path model = synth(tmp / "m", 2);
  for (StorageDType t : {StorageDType::kQ8_0, StorageDType::kQ4_K, StorageDType::kQ6_K}) {
    SCOPED_TRACE(std::string(storage_dtype_name(t)));
    const fs::path file = tmp / (std::string(storage_dtype_name(t)) + ".gguf");
    export_gguf(model, t, file);
    expect_round_trip(file, Precision::kNative, tmp / "cache");
  }
}

class WeightCacheFile : public ::testing::Test {
 protected:
  void SetUp() override {
    model_ = synth(tmp_ / "m", 3);
    reference_ = load(model_, Precision::kBfp8Mixed, {}).logits;
    ASSERT_EQ(load(model_, Precision::kBfp8Mixed, tmp_ / "cache").report.state, State::kWritten);
  }
  fs::path file() const { return tmp_ / "cache" / "m.bfp8-mixed.weights"; }
  // The next load rebuilds the file, says why, computes the reference logits, and the load after
  // it reads the rebuilt file.
  void expect_rebuilt(const std::string& why) {
    const Loaded l = load(model_, Precision::kBfp8Mixed, tmp_ / "cache");
    EXPECT_EQ(l.report.state, State::kWritten);
    EXPECT_NE(l.report.reason.find(why), std::string::npos) << l.report.reason;
    expect_bits_equal(l.logits, reference_);
    const Loaded again = load(model_, Precision::kBfp8Mixed, tmp_ / "cache");
    EXPECT_EQ(again.report.state, State::kLoaded) << again.report.reason;
    expect_bits_equal(again.logits, reference_);
  }
  void flip_byte(std::streamoff at) {
    std::fstream f(file(), std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(at);
    const char c = static_cast<char>(f.get() ^ 0x20);
    f.seekp(at);
    f.put(c);
  }

  test::TempDir tmp_{"wcache-file"};
  fs::path model_;
  std::vector<float> reference_;
};

TEST_F(WeightCacheFile, StaleKeyIsRebuilt) {
  // The checkpoint rewritten with other weights (same names and shapes): the old file is stale.
  synth(model_, 4);
  reference_ = load(model_, Precision::kBfp8Mixed, {}).logits;
  expect_rebuilt("stale");
}

TEST_F(WeightCacheFile, TruncatedFileIsRebuilt) {
  fs::resize_file(file(), fs::file_size(file()) - 4096);
  expect_rebuilt("truncated");
  fs::resize_file(file(), 40);
  expect_rebuilt("truncated");
}

TEST_F(WeightCacheFile, FlippedHeaderByteIsRebuilt) {
  flip_byte(200);  // inside the entries' layouts
  expect_rebuilt("corrupt header");
  flip_byte(30);  // inside the key
  expect_rebuilt("corrupt header");
  flip_byte(2);  // the magic
  expect_rebuilt("not a bringup weight cache");
}

TEST_F(WeightCacheFile, UnwritableDirectoryLeavesTheModelWorking) {
  // A regular file where the cache directory should be.
  std::ofstream(tmp_ / "blocker") << "x";
  const Loaded l = load(model_, Precision::kBfp8Mixed, tmp_ / "blocker" / "cache");
  EXPECT_EQ(l.report.state, State::kNotWritten);
  EXPECT_NE(l.report.reason.find("cannot create"), std::string::npos) << l.report.reason;
  expect_bits_equal(l.logits, reference_);
}

// A checkpoint held in memory has no files to key a cache by: no cache, and no error.
TEST_F(WeightCacheFile, CheckpointInMemoryIsNotCached) {
  const Checkpoint on_disk = Checkpoint::open(model_);
  std::vector<TensorView> views;
  for (const auto& [name, v] : on_disk.tensors()) views.push_back(v);
  const Checkpoint ck =
      Checkpoint::from_memory("in-memory", read_text_file(model_ / "config.json"), "", views);
  auto dev = make_cpu_device(2);
  ModelOptions o;
  o.max_seq_len = 64;
  o.weight_cache = tmp_ / "cache2";
  auto m = build_model(ck, *dev, o);
  EXPECT_EQ(m->weight_cache().state, State::kOff);
  EXPECT_FALSE(fs::exists(tmp_ / "cache2"));
  expect_bits_equal(logits_of(*m), reference_);
}

}  // namespace
}  // namespace bringup
