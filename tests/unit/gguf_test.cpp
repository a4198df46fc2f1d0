// GGUF: every ggml type bringup reads decoded bit for bit as gguf-py decodes it (vectors in
// tests/data/gguf), every metadata value type through our writer and reader, the quantizers
// (Q8_0 as ggml's reference, all of them within llama.cpp's error bound), and `convert --to gguf`
// round trips: a GGUF written from a golden opens with the same config and tensors (llama's
// permuted q/k rows included) and scores as the checkpoint it came from.
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <map>
#include <nlohmann/json.hpp>

#include "../cli/cli_runner.h"
#include "../model/model_test_util.h"
#include "core/ggml_quants.h"
#include "core/host_matrix.h"
#include "core/mapped_file.h"
#include "io/gguf.h"
#include "io/gguf_export.h"
#include "io/gguf_writer.h"
#include "models/memory_plan.h"

namespace bringup {
namespace {

namespace fs = std::filesystem;

std::vector<std::byte> from_hex(const std::string& hex) {
  std::vector<std::byte> out(hex.size() / 2);
  for (size_t i = 0; i < out.size(); ++i) {
    out[i] = static_cast<std::byte>(std::stoul(hex.substr(2 * i, 2), nullptr, 16));
  }
  return out;
}

StorageDType dtype_named(const std::string& name) {
  for (StorageDType t :
       {StorageDType::kF32, StorageDType::kBF16, StorageDType::kF16, StorageDType::kQ8_0,
        StorageDType::kQ4_0, StorageDType::kQ4_1, StorageDType::kQ5_0, StorageDType::kQ5_1,
        StorageDType::kQ4_K, StorageDType::kQ5_K, StorageDType::kQ6_K}) {
    if (storage_dtype_name(t) == name) return t;
  }
  ADD_FAILURE() << "unknown type " << name;
  return StorageDType::kF32;
}

TEST(Gguf, DequantizationIsBitExactToGgufPy) {
  const auto j = nlohmann::json::parse(
      test::slurp(fs::path(BRINGUP_TEST_DATA) / "gguf" / "dequant-vectors.json"));
  size_t types = 0;
  for (const auto& v : j["types"]) {
    SCOPED_TRACE(v["type"].get<std::string>());
    const StorageDType t = dtype_named(v["type"]);
    const int64_t n = v["elements"];
    const std::vector<std::byte> bytes = from_hex(v["bytes"]);
    ASSERT_EQ(bytes.size(), storage_bytes(t, n));
    std::vector<float> got(static_cast<size_t>(n));
    convert_to_f32(t, bytes.data(), n, got.data());
    int64_t differ = 0;
    for (int64_t i = 0; i < n; ++i) {
      const uint32_t want = static_cast<uint32_t>(
          std::stoul(v["values_f32_bits"][static_cast<size_t>(i)].get<std::string>(), nullptr, 16));
      uint32_t bits;
      std::memcpy(&bits, &got[static_cast<size_t>(i)], 4);
      differ += bits != want;
    }
    EXPECT_EQ(differ, 0);
    ++types;
  }
  EXPECT_EQ(types, 10u);  // F16, BF16 and the eight block types
}

TEST(Gguf, Q8_0QuantizationFollowsGgml) {
  std::vector<float> x(64);
  for (size_t i = 0; i < x.size(); ++i)
    x[i] = std::sin(static_cast<float>(i)) * (i < 32 ? 1 : 1e-3f);
  std::vector<std::byte> q(storage_bytes(StorageDType::kQ8_0, 64));
  quantize_ggml(StorageDType::kQ8_0, x.data(), 64, q.data());
  std::vector<float> back(64);
  dequantize_ggml(StorageDType::kQ8_0, q.data(), 64, back.data());
  for (int b = 0; b < 2; ++b) {
    float amax = 0;
    for (int j = 0; j < 32; ++j) amax = std::max(amax, std::fabs(x[b * 32 + j]));
    const float d = f16_to_f32(f32_to_f16(amax / 127));
    for (int j = 0; j < 32; ++j) {
      const float want = std::round(x[b * 32 + j] * (1.0f / (amax / 127))) * d;
      EXPECT_EQ(back[b * 32 + j], want) << b << " " << j;
    }
  }
}

// The quantizers against llama.cpp's own bar (tests/test-quantize-fns.cpp: data 0.1 + 2 cos(i +
// offset), 4096 values, sqrt(sum of squared errors) / n below 0.002), each type's error in the
// order its bits imply, and the edge blocks: all zero and constant, of either sign.
TEST(Gguf, QuantizersMeetLlamaCppsErrorBound) {
  constexpr int64_t n = 4096;
  std::vector<float> x(n), back(n);
  for (int64_t i = 0; i < n; ++i) x[i] = 0.1f + 2 * std::cos(static_cast<float>(i) + 0.5f);
  std::map<StorageDType, double> error;
  for (StorageDType t :
       {StorageDType::kQ8_0, StorageDType::kQ5_0, StorageDType::kQ4_K, StorageDType::kQ6_K}) {
    SCOPED_TRACE(std::string(storage_dtype_name(t)));
    ASSERT_TRUE(can_quantize_ggml(t));
    std::vector<std::byte> q(storage_bytes(t, n));
    quantize_ggml(t, x.data(), n, q.data());
    dequantize_ggml(t, q.data(), n, back.data());
    double sum = 0;
    for (int64_t i = 0; i < n; ++i) sum += (back[i] - x[i]) * double{back[i] - x[i]};
    error[t] = std::sqrt(sum) / n;
    EXPECT_LT(error[t], 0.002);
    for (float fill : {0.0f, 0.75f, -0.375f}) {  // all zero, constant
      std::vector<float> same(n, fill);
      quantize_ggml(t, same.data(), n, q.data());
      dequantize_ggml(t, q.data(), n, back.data());
      for (int64_t i = 0; i < n; ++i) {
        ASSERT_NEAR(back[i], fill, std::fabs(fill) * 0.01) << "fill " << fill << " at " << i;
      }
    }
  }
  EXPECT_LT(error[StorageDType::kQ8_0], error[StorageDType::kQ6_K]);
  EXPECT_LT(error[StorageDType::kQ6_K], error[StorageDType::kQ5_0]);
  EXPECT_LT(error[StorageDType::kQ6_K], error[StorageDType::kQ4_K]);
  EXPECT_FALSE(can_quantize_ggml(StorageDType::kQ4_1));
  std::vector<std::byte> q(1024);
  EXPECT_THROW(quantize_ggml(StorageDType::kQ4_K, x.data(), 100, q.data()), Error);
  EXPECT_THROW(quantize_ggml(StorageDType::kQ5_K, x.data(), 256, q.data()), Error);
}

TEST(Gguf, EveryMetadataTypeRoundTrips) {
  test::TempDir tmp("gguf-meta");
  GgufWriter w;
  using W = GgufWriter;
  w.set("u8", W::kU8, 200);
  w.set("i8", W::kI8, -100);
  w.set("u16", W::kU16, 60000);
  w.set("i16", W::kI16, -30000);
  w.set("u32", W::kU32, 4000000000u);
  w.set("i32", W::kI32, -2000000000);
  w.set("f32", W::kF32, 0.5);
  w.set("bool", W::kBool, true);
  w.set("string", W::kString, "héllo");
  w.set("u64", W::kU64, uint64_t{1} << 60);
  w.set("i64", W::kI64, -(int64_t{1} << 60));
  w.set("f64", W::kF64, 0.1);
  w.set("strings", W::kArray, nlohmann::json::array({"a", "", "ccc"}), W::kString);
  w.set("floats", W::kArray, nlohmann::json::array({1.5, -2.0}), W::kF32);
  std::vector<std::byte> data(storage_bytes(StorageDType::kQ8_0, 64));
  for (size_t i = 0; i < data.size(); ++i) data[i] = static_cast<std::byte>(i);
  w.add_tensor("t.weight", {32, 2}, StorageDType::kQ8_0, data);
  w.add_tensor("v.weight", {3}, StorageDType::kF32, std::vector<std::byte>(12, std::byte{1}));
  w.write(tmp / "m.gguf", 64);

  const MappedFile f(tmp / "m.gguf");
  const GgufFile g = parse_gguf(f.data(), f.size(), f.path());
  EXPECT_EQ(g.version, 3u);
  EXPECT_EQ(g.alignment, 64u);
  const auto& m = g.metadata;
  EXPECT_EQ(m["u8"], 200);
  EXPECT_EQ(m["i8"], -100);
  EXPECT_EQ(m["u16"], 60000);
  EXPECT_EQ(m["i16"], -30000);
  EXPECT_EQ(m["u32"], 4000000000u);
  EXPECT_EQ(m["i32"], -2000000000);
  EXPECT_EQ(m["f32"], 0.5);
  EXPECT_EQ(m["bool"], true);
  EXPECT_EQ(m["string"], "héllo");
  EXPECT_EQ(m["u64"], uint64_t{1} << 60);
  EXPECT_EQ(m["i64"], -(int64_t{1} << 60));
  EXPECT_EQ(m["f64"], 0.1);
  EXPECT_EQ(m["strings"], nlohmann::json::array({"a", "", "ccc"}));
  EXPECT_EQ(m["floats"], nlohmann::json::array({1.5, -2.0}));
  ASSERT_EQ(g.tensors.size(), 2u);
  EXPECT_EQ(g.tensors[0].ne, (std::vector<int64_t>{32, 2}));
  EXPECT_EQ(g.tensors[0].dtype, StorageDType::kQ8_0);
  EXPECT_EQ(g.tensors[0].offset % 64, 0u);
  EXPECT_EQ(std::memcmp(f.data() + g.tensors[0].offset, data.data(), data.size()), 0);
  EXPECT_EQ(g.tensors[1].offset, g.tensors[0].offset + 128);
  // Truncated anywhere before its last tensor's end, the file is refused with an error, never
  // read past its end (what follows is only padding).
  for (size_t cut = 0; cut < g.tensors[1].offset + g.tensors[1].bytes; cut += 7) {
    EXPECT_THROW(parse_gguf(f.data(), cut, "cut"), Error) << cut;
  }
}

// A golden written as GGUF in f32 opens as the same checkpoint: config, every tensor bit for bit
// (llama's q/k permuted on the way out and back), and the same logits.
TEST(Gguf, ExportRoundTripsEveryGolden) {
  test::TempDir tmp("gguf-export");
  for (const char* name : {"qwen2-gqa7-small", "qwen2-tied-hd64", "llama-gqa4-small"}) {
    SCOPED_TRACE(name);
    const fs::path dir = fs::path(BRINGUP_TEST_DATA) / "golden" / name;
    const fs::path out = tmp / (std::string(name) + ".gguf");
    export_gguf(dir, StorageDType::kF32, out);
    const Checkpoint a = Checkpoint::open(dir);
    const Checkpoint b = Checkpoint::open(out);
    const ModelConfig &ca = a.config(), &cb = b.config();
    EXPECT_EQ(cb.model_type, ca.model_type);
    EXPECT_EQ(cb.hidden_size, ca.hidden_size);
    EXPECT_EQ(cb.head_dim, ca.head_dim);
    EXPECT_EQ(cb.num_key_value_heads, ca.num_key_value_heads);
    EXPECT_EQ(cb.rope_theta, static_cast<double>(static_cast<float>(ca.rope_theta)));
    EXPECT_EQ(cb.tie_word_embeddings, ca.tie_word_embeddings);
    size_t compared = 0;
    for (const auto& [tn, t] : a.tensors()) {
      if (tn == "lm_head.weight" && ca.tie_word_embeddings) continue;
      const TensorView& u = b.tensor(tn);
      ASSERT_EQ(u.shape, t.shape) << tn;
      for (int64_t i = 0; i < t.numel(); ++i) ASSERT_EQ(u.at(i), t.at(i)) << tn << " " << i;
      ++compared;
    }
    EXPECT_EQ(compared, b.tensors().size());
    const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6};
    auto dev = make_cpu_device(2);
    auto ma = build_model(a, *dev, 64, Precision::kFp32);
    auto mb = build_model(b, *dev, 64, Precision::kFp32);
    auto sa = ma->new_sequence();
    auto sb = mb->new_sequence();
    const auto l1 = ma->prefill(*sa, ids);
    const std::vector<float> want(l1.begin(), l1.end());
    const auto l2 = mb->prefill(*sb, ids);
    EXPECT_TRUE(std::equal(want.begin(), want.end(), l2.begin(), l2.end()));
  }
}

// The native policy keeps Q8_0, Q4_K and Q6_K matrices as the file stores them (kernels of their
// own) and turns the other types into bf16; the plan says so, weight by weight, and counts exactly
// the bytes the model then holds, fewer than a bf16 copy. The model's logits stay those of the
// file's exactly dequantized weights (the fp32 policy) up to the bf16 KV cache.
TEST(Gguf, NativePolicyRunsGgmlTypesAsTheFileStoresThem) {
  test::TempDir tmp("gguf-native");
  const fs::path dir = fs::path(BRINGUP_TEST_DATA) / "golden" / "llama-gqa4-small";
  auto dev = make_cpu_device(2);
  const Checkpoint source = Checkpoint::open(dir);
  const size_t bf16_bytes = build_model(source, *dev, 64, Precision::kBf16)->weight_bytes();
  // llama-gqa4-small: hidden 512 (whole K super-blocks), intermediate 1408 (not: the down
  // projection falls back to Q5_0, which native runs as bf16, or to Q8_0).
  const struct {
    StorageDType type;
    const char *embedding, *qkv, *down;
  } cases[] = {{StorageDType::kQ8_0, "Q8_0", "Q8_0", "Q8_0"},
               {StorageDType::kQ4_K, "Q4_K", "Q4_K", "bf16"},
               {StorageDType::kQ6_K, "Q6_K", "Q6_K", "Q8_0"}};
  for (const auto& c : cases) {
    SCOPED_TRACE(std::string(storage_dtype_name(c.type)));
    const fs::path file = tmp / "m.gguf";
    export_gguf(dir, c.type, file);
    const Checkpoint ck = Checkpoint::open(file);
    EXPECT_EQ(default_precision(file.string()), Precision::kNative);
    ModelOptions o;
    o.precision = Precision::kNative;
    o.max_seq_len = 64;
    const MemoryPlan plan = plan_memory(ck, o, *dev, 0);
    std::map<std::string, std::string> formats;
    for (const auto& w : plan.weights) formats[w.name.substr(0, w.name.find(" ("))] = w.format;
    EXPECT_EQ(formats["embedding [4096 x 512]"], c.embedding);
    EXPECT_EQ(formats["attention q/k/v"], c.qkv);
    EXPECT_EQ(formats["mlp down"], c.down);
    EXPECT_EQ(formats["norms and biases"], "fp32");
    EXPECT_THROW(plan_memory(ck.config(), o, *dev, 0), Error);

    auto native = build_model(ck, *dev, 64, Precision::kNative);
    EXPECT_EQ(native->weight_bytes(), plan.weight_bytes);
    EXPECT_LT(native->weight_bytes(), bf16_bytes * (c.type == StorageDType::kQ4_K ? 0.75 : 0.6));
    auto exact = build_model(ck, *dev, 64, Precision::kFp32);
    const std::vector<int32_t> ids = {3, 1, 4, 1, 5, 9, 2, 6};
    auto sa = native->new_sequence();
    auto sb = exact->new_sequence();
    const auto la = native->prefill(*sa, ids);
    const std::vector<float> a(la.begin(), la.end());
    const auto lb = exact->prefill(*sb, ids);
    ASSERT_EQ(a.size(), lb.size());
    float worst = 0;
    for (size_t i = 0; i < a.size(); ++i) worst = std::max(worst, std::fabs(a[i] - lb[i]));
    EXPECT_LT(worst, 0.05f);
    EXPECT_EQ(std::max_element(a.begin(), a.end()) - a.begin(),
              std::max_element(lb.begin(), lb.end()) - lb.begin());
  }
}

TEST(Gguf, TensorNamesMapBothWays) {
  EXPECT_EQ(hf_tensor_name("blk.12.attn_q.bias"), "model.layers.12.self_attn.q_proj.bias");
  EXPECT_EQ(gguf_tensor_name("model.layers.12.self_attn.q_proj.bias"), "blk.12.attn_q.bias");
  EXPECT_EQ(hf_tensor_name("output.weight"), "lm_head.weight");
  EXPECT_EQ(hf_tensor_name("blk.x.attn_q.bias"), "");
  EXPECT_EQ(hf_tensor_name("blk.1.attn_qq.weight"), "");
  EXPECT_TRUE(rope_permuted("blk.0.attn_k.weight"));
  EXPECT_FALSE(rope_permuted("blk.0.attn_v.weight"));
  // The permutation and its inverse.
  std::vector<std::byte> rows(8);
  for (int i = 0; i < 8; ++i) rows[i] = static_cast<std::byte>(i);
  const auto file = permute_rope_rows(rows.data(), 8, 1, 2, false, "t");
  EXPECT_EQ(static_cast<int>(file[1]), 2);  // head 0: file rows 0 1 2 3 = hf rows 0 2 1 3
  EXPECT_EQ(permute_rope_rows(file.data(), 8, 1, 2, true, "t"), rows);
}

}  // namespace
}  // namespace bringup
