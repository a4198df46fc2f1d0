// The device conformance suite: every op through the Device interface only (ops/ops.h over a
// Device&), against a plain reference loop on random inputs of odd and even sizes, for every
// backend and kernel set. A set this CPU cannot run is reported as skipped, never left out
// silently; a second backend is proven by adding it to the instantiation below and passing.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstring>
#include <numeric>

#include "bringup/error.h"
#include "core/ggml_quants.h"
#include "kernels/cpu/packed_weight.h"
#include "ops/ops.h"
#include "test_util.h"

namespace bringup {
namespace {

using test::random_tensor;
using test::random_vector;

class Conformance : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    const cpu::MicroKernels* k = GetParam() == "cpu_portable"     ? &cpu::portable_kernels()
                                 : GetParam() == "cpu_avx512_amx" ? cpu::amx_bf16_kernels()
                                                                  : cpu::avx512_bf16_kernels();
    if (!k) GTEST_SKIP() << "this CPU cannot run the " << GetParam() << " kernel set";
    device_ = std::make_unique<CpuDevice>(2, k);
  }
  Device& device() { return *device_; }

 private:
  std::unique_ptr<Device> device_;
};

INSTANTIATE_TEST_SUITE_P(Backends, Conformance,
                         ::testing::Values("cpu_portable", "cpu_avx512_bf16", "cpu_avx512_amx"));

// ---------------------------------------------------------------- linear and its weight formats

struct Part {
  int64_t rows;
  std::vector<float> data;  // [rows, k]
};

std::vector<Part> make_parts(const std::vector<int64_t>& rows, int64_t k, uint32_t seed) {
  std::vector<Part> parts;
  for (int64_t r : rows) {
    Part p{r, random_vector(static_cast<size_t>(r * k), seed++)};
    // Rows of very different magnitude, so that which values share a block matters.
    for (int64_t i = 0; i < r; ++i) {
      for (int64_t j = 0; j < k; ++j)
        p.data[i * k + j] *= std::ldexp(1.0f, static_cast<int>(i % 9) - 4);
    }
    parts.push_back(std::move(p));
  }
  return parts;
}

// The weights as the device holds them: bf16 rounding, or block float with blocks of 16 output
// channels at one input index, counted from the first row of each part.
std::vector<double> reference_weights(const std::vector<Part>& parts, int64_t k, WeightFormat f) {
  std::vector<double> w;
  for (const Part& p : parts) {
    std::vector<double> d(p.data.begin(), p.data.end());
    if (f == WeightFormat::kBf16) {
      for (size_t i = 0; i < d.size(); ++i) d[i] = round_to_bf16(p.data[i]);
    } else if (f == WeightFormat::kBfp8 || f == WeightFormat::kBfp4) {
      const int bits = f == WeightFormat::kBfp8 ? kBfp8MantissaBits : kBfp4MantissaBits;
      for (int64_t r0 = 0; r0 < p.rows; r0 += 16) {
        for (int64_t j = 0; j < k; ++j) {
          float block[16] = {}, out[16];
          for (int64_t l = 0; l < 16 && r0 + l < p.rows; ++l) block[l] = p.data[(r0 + l) * k + j];
          bfp_decode_block(bfp_encode_block(block, bits), bits, out);
          for (int64_t l = 0; l < 16 && r0 + l < p.rows; ++l) d[(r0 + l) * k + j] = out[l];
        }
      }
    }
    w.insert(w.end(), d.begin(), d.end());
  }
  return w;
}

struct LinearCase {
  int64_t m, k;
  std::vector<int64_t> parts;
  bool bias;
};

TEST_P(Conformance, Linear_MatchesReferenceLoopInEveryFormat) {
  const std::vector<LinearCase> cases = {
      {1, 64, {32}, false},         {1, 7, {17}, true},      {3, 129, {20, 13, 45}, true},
      {5, 600, {48}, false},        {8, 33, {16, 16}, true}, {13, 1031, {70}, true},
      {37, 96, {31, 1, 64}, false}, {2, 1, {5}, true},       {64, 515, {40}, true},
  };
  for (WeightFormat format :
       {WeightFormat::kF32, WeightFormat::kBf16, WeightFormat::kBfp8, WeightFormat::kBfp4}) {
    Device& dev = device();
    uint32_t seed = 1;
    for (const LinearCase& c : cases) {
      SCOPED_TRACE(std::string(weight_format_name(format)) + " m=" + std::to_string(c.m) +
                   " k=" + std::to_string(c.k));
      const auto parts = make_parts(c.parts, c.k, seed += 10);
      std::vector<HostMatrix> hosts;
      for (const Part& p : parts) hosts.push_back(HostMatrix::of(p.data.data(), p.rows, c.k));
      const Weight w = dev.upload_weight(hosts, format);
      const int64_t n = w.rows;
      const Tensor x = random_tensor({c.m, c.k}, seed + 1);
      const Tensor bias = random_tensor({n}, seed + 2);
      Tensor out;
      ops::linear(dev, x, w, c.bias ? &bias : nullptr, out);
      ASSERT_EQ(out.shape(), (std::vector<int64_t>{c.m, n}));

      const std::vector<double> wd = reference_weights(parts, c.k, format);
      const bool round_x = format != WeightFormat::kF32;
      for (int64_t r = 0; r < c.m; ++r) {
        for (int64_t o = 0; o < n; ++o) {
          double want = c.bias ? bias.data()[o] : 0.0, mag = 0;
          for (int64_t j = 0; j < c.k; ++j) {
            const float xv = x.data()[r * c.k + j];
            const double xr = round_x ? round_to_bf16(xv) : xv;
            want += xr * wd[o * c.k + j];
            mag += std::fabs(xr * wd[o * c.k + j]);
          }
          ASSERT_NEAR(out.data()[r * n + o], want, 1e-5 * mag + 1e-6)
              << "row " << r << " col " << o;
        }
      }
    }
  }
}

// Two uploads of one weight give the same outputs, bit for bit, on m random rows.
void expect_same_outputs(Device& dev, const Weight& a, const Weight& b, int64_t m, int64_t k) {
  ASSERT_EQ(a.rows, b.rows);
  const Tensor x = random_tensor({m, k}, 5);
  Tensor ya, yb;
  ops::linear(dev, x, a, nullptr, ya);
  ops::linear(dev, x, b, nullptr, yb);
  ASSERT_EQ(ya.shape(), yb.shape());
  EXPECT_EQ(0, std::memcmp(ya.data(), yb.data(), static_cast<size_t>(ya.numel()) * 4));
}

// Every row of w, decoded, holds exactly the reference's values.
void expect_decodes_to(Device& dev, const Weight& w, const std::vector<double>& want) {
  std::vector<int32_t> ids(static_cast<size_t>(w.rows));
  std::iota(ids.begin(), ids.end(), 0);
  Tensor table;
  ops::embedding(dev, w, ids, table);
  ASSERT_EQ(static_cast<size_t>(table.numel()), want.size());
  for (size_t i = 0; i < want.size(); ++i) ASSERT_EQ(table.data()[i], want[i]) << i;
}

// A weight uploaded already quantized (bfp tiles, as tt-metal stores it) is taken code for code:
// the same weight, bit for bit, as one encoded by the device from fp32 rows, in stacked parts of
// sizes that are not multiples of a tile. Tiles uploaded to another format decode exactly.
TEST_P(Conformance, Upload_QuantizedTilesEqualEncodingFromRows) {
  Device& dev = device();
  for (WeightFormat format : {WeightFormat::kBfp8, WeightFormat::kBfp4}) {
    for (const LinearCase& c : {LinearCase{3, 70, {20, 13, 45}, true},
                                LinearCase{5, 600, {48}, false}, LinearCase{1, 33, {64}, true}}) {
      SCOPED_TRACE(std::string(weight_format_name(format)) + " k=" + std::to_string(c.k));
      const auto parts = make_parts(c.parts, c.k, 77);
      std::vector<HostMatrix> rows;
      std::vector<std::vector<std::byte>> encoded;
      std::vector<HostMatrix> tiles;
      for (const Part& p : parts) {
        rows.push_back(HostMatrix::of(p.data.data(), p.rows, c.k));
        encoded.push_back(encode_bfp_tiles(rows.back(), format));
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        tiles.push_back(HostMatrix::bfp_tiles(format, encoded[i].data(), encoded[i].size(),
                                              parts[i].rows, c.k));
      }
      const Weight from_rows = dev.upload_weight(rows, format);
      const Weight from_tiles = dev.upload_weight(tiles, format);
      EXPECT_EQ(from_tiles.bytes, from_rows.bytes);
      expect_same_outputs(dev, from_rows, from_tiles, c.m, c.k);
      // Decoded to fp32, the tiles give the block-float values of the reference.
      expect_decodes_to(dev, dev.upload_weight(tiles, WeightFormat::kF32),
                        reference_weights(parts, c.k, format));
    }
  }
  const std::vector<std::byte> short_data(100);
  try {
    (void)HostMatrix::bfp_tiles(WeightFormat::kBfp8, short_data.data(), short_data.size(), 40, 70);
    ADD_FAILURE() << "a wrong tile byte count must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("tiles of a 40 x 70 matrix take 6528 bytes, not 100"),
              std::string::npos)
        << e.what();
  }
}

// A bf16 checkpoint's rows give the same weight, bit for bit, as those values given as fp32 rows:
// bf16 moves them as they are (pairs as 32-bit words, no fp32 round trip), block float converts
// them; in stacked parts whose rows are not multiples of a group, with odd input counts (bf16
// pairs the last input with zero) and over several K blocks.
TEST_P(Conformance, Upload_Bf16RowsEqualTheirFp32Values) {
  Device& dev = device();
  for (WeightFormat format : {WeightFormat::kBf16, WeightFormat::kBfp8, WeightFormat::kBfp4}) {
    for (const LinearCase& c :
         {LinearCase{3, 7, {20, 13, 45}, false}, LinearCase{5, 64, {16, 3}, false},
          LinearCase{2, 1031, {40}, false}}) {
      SCOPED_TRACE(std::string(weight_format_name(format)) + " k=" + std::to_string(c.k));
      auto parts = make_parts(c.parts, c.k, 91);
      std::vector<std::vector<uint16_t>> bf16(parts.size());
      std::vector<HostMatrix> as_bf16, as_f32;
      for (size_t i = 0; i < parts.size(); ++i) {
        for (float& v : parts[i].data) {
          bf16[i].push_back(f32_to_bf16(v));
          v = bf16_to_f32(bf16[i].back());
        }
        as_f32.push_back(HostMatrix::of(parts[i].data.data(), parts[i].rows, c.k));
        as_bf16.push_back(HostMatrix{StorageDType::kBF16,
                                     reinterpret_cast<const std::byte*>(bf16[i].data()),
                                     parts[i].rows, c.k});
      }
      const Weight from_bf16 = dev.upload_weight(as_bf16, format);
      expect_same_outputs(dev, from_bf16, dev.upload_weight(as_f32, format), c.m, c.k);
      expect_decodes_to(dev, from_bf16, reference_weights(parts, c.k, format));
    }
  }
}

// A row's output is bit-identical whatever other rows share the call (row counts on both sides
// of every kernel switch: the direct block-float kernel and decode-to-bf16, register and strided
// partial sums), and whatever the input count (odd tails, several K blocks).
TEST_P(Conformance, Linear_RowsAreIndependentOfTheBatch) {
  Device& dev = device();
  for (WeightFormat format :
       {WeightFormat::kF32, WeightFormat::kBf16, WeightFormat::kBfp8, WeightFormat::kBfp4}) {
    for (int64_t k : {7, 64, 513, 1088, 1100}) {  // 1088: whole AMX steps over three K blocks
      SCOPED_TRACE(std::string(weight_format_name(format)) + " k=" + std::to_string(k));
      const auto parts = make_parts({48, 16}, k, 5);
      std::vector<HostMatrix> hosts;
      for (const Part& p : parts) hosts.push_back(HostMatrix::of(p.data.data(), p.rows, k));
      const Weight w = dev.upload_weight(hosts, format);
      const Tensor x = random_tensor({21, k}, 17);
      Tensor all, one, row({1, k});
      ops::linear(dev, x, w, nullptr, all);
      for (int64_t m : {1, 2, 3, 4, 5, 8, 9, 16, 17, 21}) {
        Tensor some({m, k});
        std::memcpy(some.data(), x.data(), static_cast<size_t>(m * k) * 4);
        Tensor out;
        ops::linear(dev, some, w, nullptr, out);
        for (int64_t r = 0; r < m; ++r) {
          ASSERT_EQ(0, std::memcmp(out.row(r), all.row(r), static_cast<size_t>(w.rows) * 4))
              << "row " << r << " of " << m << " differs from the same row among 21";
        }
      }
    }
  }
}

// The direct block-float kernel scales activations by integer adds to their exponent fields, valid
// only within a range of activations and block exponents; outside it (tiny or huge weights, tiny,
// huge or subnormal activations) a row must still get the bits of the decoded path used for many
// rows.
TEST_P(Conformance, Linear_BlockFloatAtExtremeMagnitudesIsIndependentOfTheBatch) {
  Device& dev = device();
  for (int64_t k : {600, 608})  // 608: whole AMX steps
    for (WeightFormat format : {WeightFormat::kBfp8, WeightFormat::kBfp4}) {
      for (float weight_scale : {1e-30f, 1.0f, 1e22f}) {
        char scale[32];
        std::snprintf(scale, sizeof scale, "%g", weight_scale);
        SCOPED_TRACE(std::string(weight_format_name(format)) + " k=" + std::to_string(k) +
                     ", weights scaled by " + scale);
        auto parts = make_parts({32, 16}, k, 41);
        for (float& v : parts[0].data) v *= weight_scale;  // the second part stays as it is
        std::vector<HostMatrix> hosts;
        for (const Part& p : parts) hosts.push_back(HostMatrix::of(p.data.data(), p.rows, k));
        const Weight w = dev.upload_weight(hosts, format);
        Tensor x = random_tensor({9, k}, 43);
        for (int64_t i = 0; i < k; ++i) {
          x.row(1)[i] *= 1e-25f;                            // below the direct kernel's range
          x.row(2)[i] *= 1e25f;                             // above it
          x.row(3)[i] = i % 7 == 0 ? 1e-39f : x.row(3)[i];  // some subnormal
          // within the range, but not times 2^-100 (the weights at 1e-30)
          x.row(4)[i] = std::ldexp((i % 2 ? 1.0f : -1.0f) * (1.0f + i % 13 / 16.0f), -50);
        }
        Tensor all;
        ops::linear(dev, x, w, nullptr, all);
        for (int64_t r = 0; r < 9; ++r) {
          for (int64_t m : {1, 4}) {  // rows r .. r + m - 1 alone, on the direct kernel's side
            if (r + m > 9) continue;
            Tensor some({m, k}), out;
            std::memcpy(some.data(), x.row(r), static_cast<size_t>(m * k) * 4);
            ops::linear(dev, some, w, nullptr, out);
            for (int64_t i = 0; i < m; ++i) {
              ASSERT_EQ(0, std::memcmp(out.row(i), all.row(r + i), static_cast<size_t>(w.rows) * 4))
                  << "row " << r + i << " alone among " << m
                  << " differs from the same row among 9";
            }
          }
        }
      }
    }
}

// Weights scaled by 2^120 put most blocks' exponents past BfpToBf16's fast range (and the direct
// kernel's), so every kernel set declines them and matmul decodes them first. Scaling by a power
// of two changes no code and no rounding, so the outputs must be exactly 2^120 times the unscaled
// ones: a block declined and then dropped, or decoded wrong, breaks that.
TEST_P(Conformance, Linear_BlockFloatPastTheFastDecodeScalesExactly) {
  Device& dev = device();
  const int64_t k = 600;
  for (WeightFormat format : {WeightFormat::kBfp8, WeightFormat::kBfp4}) {
    SCOPED_TRACE(weight_format_name(format));
    auto parts = make_parts({32, 16}, k, 51);
    std::vector<HostMatrix> hosts, big_hosts;
    std::vector<std::vector<float>> big(parts.size());
    for (size_t i = 0; i < parts.size(); ++i) {
      for (float v : parts[i].data) big[i].push_back(std::ldexp(v, 120));
      hosts.push_back(HostMatrix::of(parts[i].data.data(), parts[i].rows, k));
      big_hosts.push_back(HostMatrix::of(big[i].data(), parts[i].rows, k));
    }
    const Weight w = dev.upload_weight(hosts, format), w_big = dev.upload_weight(big_hosts, format);
    for (int64_t m : {1, 9}) {
      Tensor x = random_tensor({m, k}, 53);
      for (int64_t i = 0; i < m * k; ++i) x.data()[i] = std::ldexp(x.data()[i], -10);
      Tensor out, out_big;
      ops::linear(dev, x, w, nullptr, out);
      ops::linear(dev, x, w_big, nullptr, out_big);
      for (int64_t i = 0; i < m * w.rows; ++i) {
        ASSERT_EQ(std::ldexp(out.data()[i], 120), out_big.data()[i])
            << "output " << i << " of " << m << " rows";
      }
    }
  }
}

// ggml's block types (GGUF Q8_0, Q4_K and Q6_K), uploaded from fp32 rows (quantized by the device
// as ggml's reference quantizer does) and from the blocks themselves: the same weight either way,
// decoded exactly as dequantize_ggml decodes it, and linear equals, bit for bit, the loop
// acc = fma(x, w, acc) over those values (fp32 activations), whatever rows share the call.
TEST_P(Conformance, Linear_GgmlBlockTypesMatchTheDequantizedLoopExactly) {
  Device& dev = device();
  for (WeightFormat format : {WeightFormat::kQ8_0, WeightFormat::kQ4_K, WeightFormat::kQ6_K}) {
    const StorageDType type = *ggml_type_of(format);
    for (const LinearCase& c :
         {LinearCase{1, 256, {20, 13, 45}, true}, LinearCase{9, 768, {48}, false},
          LinearCase{3, 1024, {70}, true}, LinearCase{21, 512, {16, 17}, true}}) {
      SCOPED_TRACE(std::string(weight_format_name(format)) + " m=" + std::to_string(c.m) +
                   " k=" + std::to_string(c.k));
      const auto parts = make_parts(c.parts, c.k, 31);
      std::vector<HostMatrix> rows, blocks;
      std::vector<std::vector<std::byte>> encoded;
      std::vector<float> want_w;  // the dequantized weights, all parts
      for (const Part& p : parts) {
        rows.push_back(HostMatrix::of(p.data.data(), p.rows, c.k));
        encoded.emplace_back(storage_bytes(type, p.rows * c.k));
        for (int64_t r = 0; r < p.rows; ++r) {
          quantize_ggml(type, p.data.data() + r * c.k, c.k,
                        encoded.back().data() + r * storage_bytes(type, c.k));
        }
        std::vector<float> w(static_cast<size_t>(p.rows * c.k));
        dequantize_ggml(type, encoded.back().data(), p.rows * c.k, w.data());
        want_w.insert(want_w.end(), w.begin(), w.end());
      }
      for (size_t i = 0; i < parts.size(); ++i) {
        HostMatrix m;
        m.dtype = type;
        m.data = encoded[i].data();
        m.rows = parts[i].rows;
        m.cols = c.k;
        blocks.push_back(m);
      }
      const Weight from_rows = dev.upload_weight(rows, format);
      const Weight from_blocks = dev.upload_weight(blocks, format);
      EXPECT_EQ(from_rows.bytes, from_blocks.bytes);
      EXPECT_EQ(from_rows.bytes, cpu::packed_bytes(format, c.parts, c.k));
      const int64_t n = from_rows.rows;
      // Fewer bytes than bf16: the file's bytes per weight, regrouped (Q6_K's codes a byte each).
      EXPECT_LT(from_rows.bytes, cpu::packed_bytes(WeightFormat::kBf16, c.parts, c.k) * 0.6);

      std::vector<int32_t> ids(static_cast<size_t>(n));
      std::iota(ids.begin(), ids.end(), 0);
      Tensor table;
      ops::embedding(dev, from_blocks, ids, table);
      for (size_t i = 0; i < want_w.size(); ++i) ASSERT_EQ(table.data()[i], want_w[i]) << i;

      const Tensor x = random_tensor({c.m, c.k}, 7);
      const Tensor bias = random_tensor({n}, 8);
      Tensor a, b;
      ops::linear(dev, x, from_rows, c.bias ? &bias : nullptr, a);
      ops::linear(dev, x, from_blocks, c.bias ? &bias : nullptr, b);
      ASSERT_EQ(0, std::memcmp(a.data(), b.data(), static_cast<size_t>(a.numel()) * 4));
      for (int64_t r = 0; r < c.m; ++r) {
        for (int64_t o = 0; o < n; ++o) {
          float acc = 0.0f;
          for (int64_t j = 0; j < c.k; ++j) {
            acc = std::fma(x.data()[r * c.k + j], want_w[o * c.k + j], acc);
          }
          if (c.bias) acc += bias.data()[o];
          ASSERT_EQ(a.data()[r * n + o], acc) << "row " << r << " col " << o;
        }
      }
      Tensor one({1, c.k}), single;
      std::memcpy(one.data(), x.row(c.m - 1), static_cast<size_t>(c.k) * 4);
      ops::linear(dev, one, from_rows, c.bias ? &bias : nullptr, single);
      EXPECT_EQ(0, std::memcmp(single.data(), a.row(c.m - 1), static_cast<size_t>(n) * 4));
    }
    const std::vector<float> odd(16 * 96, 1.0f);
    const HostMatrix bad = HostMatrix::of(odd.data(), 16, 96);
    if (format != WeightFormat::kQ8_0) {
      try {
        (void)dev.upload_weight({&bad, 1}, format);
        ADD_FAILURE() << "K not whole Q4_K super-blocks must throw";
      } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find(std::string(weight_format_name(format)) +
                                             " weights need input features in whole blocks "
                                             "of 256, not 96"),
                  std::string::npos)
            << e.what();
      }
    }
  }
}

TEST_P(Conformance, Linear_RejectsMismatchedInput) {
  Device& dev = device();
  const auto data = random_vector(8 * 4, 1);
  const HostMatrix m = HostMatrix::of(data.data(), 8, 4);
  const Weight w = dev.upload_weight({&m, 1}, WeightFormat::kF32);
  Tensor x({2, 5}), out;
  EXPECT_THROW(ops::linear(dev, x, w, nullptr, out), Error);
}

// ---------------------------------------------------------------- embedding

TEST_P(Conformance, Embedding_GathersDecodedRows) {
  for (WeightFormat f : {WeightFormat::kF32, WeightFormat::kBf16, WeightFormat::kBfp8}) {
    Device& dev = device();
    const int64_t vocab = 37, hidden = 19;
    const auto parts = make_parts({vocab}, hidden, 3);
    const HostMatrix m = HostMatrix::of(parts[0].data.data(), vocab, hidden);
    const Weight table = dev.upload_weight({&m, 1}, f);
    const std::vector<double> want = reference_weights(parts, hidden, f);
    const std::vector<int32_t> ids = {0, 36, 5, 16, 5};
    Tensor out;
    ops::embedding(dev, table, ids, out);
    ASSERT_EQ(out.shape(), (std::vector<int64_t>{5, hidden}));
    for (size_t r = 0; r < ids.size(); ++r) {
      for (int64_t j = 0; j < hidden; ++j) {
        EXPECT_EQ(out.data()[r * hidden + j], want[ids[r] * hidden + j]);
      }
    }
    const std::vector<int32_t> bad = {37};
    EXPECT_THROW(ops::embedding(dev, table, bad, out), Error);
  }
}

// ---------------------------------------------------------------- norms, activations, rotary

TEST_P(Conformance, RmsNorm_MatchesReference) {
  Device& dev = device();
  for (int64_t n : {1, 7, 64, 448, 3585}) {
    const Tensor x = random_tensor({5, n}, 11, 4.0f);
    const Tensor w = random_tensor({n}, 12);
    Tensor out;
    ops::rms_norm(dev, x, w, 1e-6f, out);
    for (int64_t r = 0; r < 5; ++r) {
      double ss = 0;
      for (int64_t i = 0; i < n; ++i) ss += double{x.row(r)[i]} * x.row(r)[i];
      const double inv = 1.0 / std::sqrt(ss / n + 1e-6);
      std::vector<double> want(n);
      for (int64_t i = 0; i < n; ++i) want[i] = w.data()[i] * (x.row(r)[i] * inv);
      EXPECT_TRUE(test::near_all(out.row(r), want, 1e-6, 1e-5)) << "n=" << n;
    }
  }
}

TEST_P(Conformance, SiluMul_MatchesReference) {
  Device& dev = device();
  for (int64_t n : {1, 15, 16, 1216}) {
    Tensor gu = random_tensor({3, 2 * n}, 21, 5.0f);
    gu.data()[0] = -200.0f;  // exp overflow territory
    Tensor out;
    ops::silu_mul(dev, gu, out);
    ASSERT_EQ(out.shape(), (std::vector<int64_t>{3, n}));
    for (int64_t r = 0; r < 3; ++r) {
      std::vector<double> want(n);
      for (int64_t i = 0; i < n; ++i) {
        const double g = gu.row(r)[i], u = gu.row(r)[n + i];
        want[i] = g / (1.0 + std::exp(-g)) * u;
      }
      EXPECT_TRUE(test::near_all(out.row(r), want, 1e-6, 1e-5));
    }
  }
}

TEST_P(Conformance, GatherRows_PicksRowsInOrder) {
  Device& dev = device();
  const Tensor x = random_tensor({5, 7}, 3);
  const std::vector<int64_t> rows = {4, 0, 4, 2};
  Tensor out;
  ops::gather_rows(dev, x, rows, out);
  ASSERT_EQ(out.shape(), (std::vector<int64_t>{4, 7}));
  for (size_t i = 0; i < rows.size(); ++i) {
    EXPECT_EQ(0, std::memcmp(out.row(static_cast<int64_t>(i)), x.row(rows[i]), 7 * 4));
  }
  const std::vector<int64_t> bad = {5};
  EXPECT_THROW(ops::gather_rows(dev, x, bad, out), Error);
}

TEST_P(Conformance, Add_AddsElementwise) {
  Device& dev = device();
  const Tensor a = random_tensor({3, 33}, 1), b = random_tensor({3, 33}, 2);
  Tensor out;
  ops::add(dev, a, b, out);
  for (int64_t i = 0; i < a.numel(); ++i) EXPECT_EQ(out.data()[i], a.data()[i] + b.data()[i]);
  const Tensor c = random_tensor({3, 32}, 3);
  EXPECT_THROW(ops::add(dev, a, c, out), Error);
}

TEST_P(Conformance, Rope_InvFreqMatchesHuggingFaceFormula) {
  const auto inv = ops::rope_inv_freq(128, 1e6);
  ASSERT_EQ(inv.size(), 64u);
  EXPECT_EQ(inv[0], 1.0f);
  for (size_t i = 0; i < inv.size(); ++i) {
    EXPECT_NEAR(inv[i], 1.0 / std::pow(1e6, 2.0 * i / 128.0),
                1e-7 * (1.0 / std::pow(1e6, 2.0 * i / 128.0)) + 1e-12);
  }
}

// rotate_half convention: the first half of a head pairs with the second half.
TEST_P(Conformance, Rope_RotatesHalvesAtAnyOffset) {
  Device& dev = device();
  for (int64_t hd : {2, 34, 128}) {
    for (int64_t pos0 : {0, 7, 31000}) {
      const int64_t heads = 3, t = 5;
      Tensor x = random_tensor({heads, t, hd}, 31);
      const Tensor x0 = random_tensor({heads, t, hd}, 31);
      const auto inv = ops::rope_inv_freq(hd, 10000.0);
      Tensor cos, sin;
      std::vector<int64_t> positions(t);
      for (int64_t r = 0; r < t; ++r) positions[r] = pos0 + r;
      ops::rope_tables(dev, inv, positions, cos, sin);
      ops::rotary_embedding(dev, x, cos, sin);
      const int64_t half = hd / 2;
      for (int64_t h = 0; h < heads; ++h) {
        for (int64_t r = 0; r < t; ++r) {
          const float* in = x0.data() + (h * t + r) * hd;
          std::vector<double> want(hd);
          for (int64_t i = 0; i < half; ++i) {
            const float angle = static_cast<float>(pos0 + r) * inv[i];
            const double c = std::cos(double{angle}), s = std::sin(double{angle});
            want[i] = in[i] * c - in[i + half] * s;
            want[i + half] = in[i + half] * c + in[i] * s;
          }
          EXPECT_TRUE(test::near_all(x.data() + (h * t + r) * hd, want, 1e-5, 1e-5))
              << "hd=" << hd << " pos0=" << pos0;
        }
      }
    }
  }
}

// ---------------------------------------------------------------- heads

TEST_P(Conformance, Heads_CreateAndConcatAreInverse) {
  Device& dev = device();
  const int64_t t = 5, nq = 7, nkv = 1, hd = 6;
  const Tensor qkv = random_tensor({t, (nq + 2 * nkv) * hd}, 41);
  Tensor q, k, v, cat;
  ops::create_qkv_heads(dev, qkv, nq, nkv, hd, q, k, v);
  ASSERT_EQ(q.shape(), (std::vector<int64_t>{nq, t, hd}));
  ASSERT_EQ(k.shape(), (std::vector<int64_t>{nkv, t, hd}));
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t i = 0; i < hd; ++i) {
      EXPECT_EQ(q.data()[(3 * t + r) * hd + i], qkv.row(r)[3 * hd + i]);
      EXPECT_EQ(k.data()[r * hd + i], qkv.row(r)[nq * hd + i]);
      EXPECT_EQ(v.data()[r * hd + i], qkv.row(r)[(nq + 1) * hd + i]);
    }
  }
  ops::concat_heads(dev, q, cat);
  ASSERT_EQ(cat.shape(), (std::vector<int64_t>{t, nq * hd}));
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t i = 0; i < nq * hd; ++i) EXPECT_EQ(cat.row(r)[i], qkv.row(r)[i]);
  }
  Tensor bad({t, 10});
  EXPECT_THROW(ops::create_qkv_heads(dev, bad, nq, nkv, hd, q, k, v), Error);
}

// ---------------------------------------------------------------- KV cache and attention

constexpr CacheDType kCacheDTypes[] = {CacheDType::kF32, CacheDType::kBf16, CacheDType::kBfp8};

// A paged cache for tests: blocks handed out in a scrambled order.
struct PagedCache {
  PagedCache(int64_t kv_heads, int64_t hd, int64_t block, int64_t positions, CacheDType dtype) {
    const int64_t blocks = (positions + block - 1) / block;
    table.resize(blocks);
    std::iota(table.begin(), table.end(), 0);
    std::reverse(table.begin(), table.end());
    if (blocks > 2) std::swap(table[0], table[blocks / 2]);
    const size_t elems = static_cast<size_t>(blocks * kv_heads * block * hd);
    k.assign(elems * 4, 0);
    v.assign(elems * 4, 0);
    view.dtype = dtype;
    view.k = k.data();
    view.v = v.data();
    view.kv_heads = kv_heads;
    view.head_dim = hd;
    view.block_size = block;
    view.block_table = table.data();
    view.table_blocks = blocks;
  }
  float read(bool is_k, int64_t head, int64_t pos, int64_t i) const {
    std::vector<float> row(static_cast<size_t>(view.head_dim));
    load_cache_row(view.dtype, view.row(is_k ? k.data() : v.data(), head, pos), view.head_dim,
                   row.data());
    return row[static_cast<size_t>(i)];
  }
  std::vector<int32_t> table;
  std::vector<uint8_t> k, v;
  KvView view;
};

TEST_P(Conformance, Cache_FillAndUpdateWriteThroughTheBlockTable) {
  for (CacheDType dtype : kCacheDTypes) {
    Device& dev = device();
    const int64_t nkv = 2, hd = 10, block = 4, t = 11;
    PagedCache cache(nkv, hd, block, 16, dtype);
    const Tensor k = random_tensor({nkv, t, hd}, 51), v = random_tensor({nkv, t, hd}, 52);
    ops::fill_cache(dev, cache.view, k, v, 2);
    const Tensor k1 = random_tensor({nkv, 1, hd}, 53), v1 = random_tensor({nkv, 1, hd}, 54);
    ops::paged_update_cache(dev, cache.view, k1, v1, 13);
    // What a row of the source reads back as once stored in this format.
    auto stored = [&](const float* row, int64_t i) {
      std::vector<std::byte> bytes(static_cast<size_t>(cache_row_bytes(dtype, hd)));
      std::vector<float> back(static_cast<size_t>(hd));
      store_cache_row(dtype, row, hd, bytes.data());
      load_cache_row(dtype, bytes.data(), hd, back.data());
      return back[static_cast<size_t>(i)];
    };
    for (int64_t h = 0; h < nkv; ++h) {
      for (int64_t i = 0; i < hd; ++i) {
        for (int64_t r = 0; r < t; ++r) {
          EXPECT_EQ(cache.read(true, h, 2 + r, i), stored(k.data() + (h * t + r) * hd, i));
          EXPECT_EQ(cache.read(false, h, 2 + r, i), stored(v.data() + (h * t + r) * hd, i));
        }
        EXPECT_EQ(cache.read(true, h, 13, i), stored(k1.data() + h * hd, i));
        EXPECT_EQ(cache.read(false, h, 13, i), stored(v1.data() + h * hd, i));
      }
    }
    EXPECT_THROW(ops::fill_cache(dev, cache.view, k, v, 6), Error);  // past the 16 positions
  }
}

// bfloat8_b rows: a shared exponent per 16 values along head_dim (a short last block for 40),
// codes of 7 bits: each value within half a step of the block's largest, zeros kept.
TEST(CacheRows, Bfp8IsBlockFloatAlongHeadDim) {
  const int64_t hd = 40;
  EXPECT_EQ(cache_row_bytes(CacheDType::kBfp8, hd), 3 + 40);
  EXPECT_EQ(cache_row_bytes(CacheDType::kBfp8, 128), 8 + 128);
  EXPECT_EQ(cache_row_bytes(CacheDType::kBf16, 128), 256);
  std::vector<float> x(hd), back(hd);
  for (int64_t i = 0; i < hd; ++i) x[i] = std::ldexp(std::sin(0.7f * i), static_cast<int>(i % 9));
  x[5] = 0.0f;
  std::vector<std::byte> row(static_cast<size_t>(cache_row_bytes(CacheDType::kBfp8, hd)));
  store_cache_row(CacheDType::kBfp8, x.data(), hd, row.data());
  load_cache_row(CacheDType::kBfp8, row.data(), hd, back.data());
  for (int64_t b = 0; b * 16 < hd; ++b) {
    float top = 0.0f;
    for (int64_t i = b * 16; i < std::min<int64_t>(hd, b * 16 + 16); ++i) {
      top = std::max(top, std::fabs(x[i]));
    }
    // The largest value's exponent is shared: a step is 2^(e - 6) for codes of 7 bits.
    const float step = std::ldexp(1.0f, std::ilogb(top) - 6);
    for (int64_t i = b * 16; i < std::min<int64_t>(hd, b * 16 + 16); ++i) {
      EXPECT_LE(std::fabs(back[i] - x[i]), step / 2) << i;
    }
  }
  EXPECT_EQ(back[5], 0.0f);
  EXPECT_NE(back[7], x[7]);  // rounded: not a copy
}

// Reference: K/V heads repeated for the query heads (only here), softmax in double.
std::vector<double> reference_attention(const Tensor& q, const PagedCache& c, int64_t pos0,
                                        float scale) {
  const int64_t nq = q.dim(0), t = q.dim(1), hd = q.dim(2), group = nq / c.view.kv_heads;
  std::vector<double> out(q.numel());
  for (int64_t j = 0; j < nq; ++j) {
    const int64_t h = j / group;
    for (int64_t r = 0; r < t; ++r) {
      const int64_t len = pos0 + r + 1;
      const float* qv = q.data() + (j * t + r) * hd;
      std::vector<double> s(len);
      for (int64_t p = 0; p < len; ++p) {
        double d = 0;
        for (int64_t i = 0; i < hd; ++i) d += double{qv[i]} * c.read(true, h, p, i);
        s[p] = d * scale;
      }
      const double m = *std::max_element(s.begin(), s.end());
      double sum = 0;
      for (double& e : s) sum += (e = std::exp(e - m));
      for (int64_t i = 0; i < hd; ++i) {
        double acc = 0;
        for (int64_t p = 0; p < len; ++p) acc += s[p] / sum * c.read(false, h, p, i);
        out[(j * t + r) * hd + i] = acc;
      }
    }
  }
  return out;
}

struct AttentionCase {
  int64_t nq, nkv, hd, block, pos0, t;
};

TEST_P(Conformance, Attention_PrefillIsCausalGroupedQueryOverPagedCache) {
  const std::vector<AttentionCase> cases = {
      {14, 2, 32, 16, 0, 37}, {7, 1, 128, 32, 5, 9},    {4, 2, 64, 4, 0, 1},
      {6, 3, 18, 5, 11, 13},  {28, 4, 128, 32, 40, 24},
  };
  for (CacheDType dtype : kCacheDTypes) {
    Device& dev = device();
    for (const AttentionCase& c : cases) {
      SCOPED_TRACE("nq=" + std::to_string(c.nq) + " nkv=" + std::to_string(c.nkv) +
                   " hd=" + std::to_string(c.hd) + " pos0=" + std::to_string(c.pos0));
      const int64_t len = c.pos0 + c.t;
      PagedCache cache(c.nkv, c.hd, c.block, len, dtype);
      const Tensor k = random_tensor({c.nkv, len, c.hd}, 61, 2.0f);
      const Tensor v = random_tensor({c.nkv, len, c.hd}, 62);
      ops::fill_cache(dev, cache.view, k, v, 0);
      const Tensor q = random_tensor({c.nq, c.t, c.hd}, 63, 2.0f);  // peaked softmax
      const float scale = 1.0f / std::sqrt(static_cast<float>(c.hd));
      Tensor out;
      ops::scaled_dot_product_attention(dev, q, cache.view, c.pos0, scale, out);
      EXPECT_TRUE(
          test::near_all(out.data(), reference_attention(q, cache, c.pos0, scale), 1e-5, 1e-4));
    }
  }
}

TEST_P(Conformance, Attention_DecodeMatchesReferenceAcrossChunks) {
  for (CacheDType dtype : kCacheDTypes) {
    Device& dev = device();
    for (int64_t pos : {0, 255, 256, 700}) {
      const int64_t nq = 7, nkv = 1, hd = 128;
      PagedCache cache(nkv, hd, 32, pos + 1, dtype);
      const Tensor k = random_tensor({nkv, pos + 1, hd}, 71, 2.0f);
      const Tensor v = random_tensor({nkv, pos + 1, hd}, 72);
      ops::fill_cache(dev, cache.view, k, v, 0);
      const Tensor q = random_tensor({nq, 1, hd}, 73, 2.0f);
      const float scale = 1.0f / std::sqrt(128.0f);
      Tensor out;
      ops::scaled_dot_product_attention_decode(dev, q, cache.view, pos, scale, out);
      EXPECT_TRUE(test::near_all(out.data(), reference_attention(q, cache, pos, scale), 1e-5, 1e-4))
          << "pos=" << pos;
    }
  }
}

// A query head's output is the same to the bit whether it shares its K/V head with nine others
// or attends alone: kernels may weight V for several heads per read, never in another order.
TEST_P(Conformance, Attention_AHeadDoesNotDependOnItsGroup) {
  Device& dev = device();
  for (CacheDType dtype : kCacheDTypes) {
    const int64_t nq = 10, hd = 72, pos = 300;  // 10: more heads than one pass takes; 72: a tail
    PagedCache cache(1, hd, 16, pos + 1, dtype);
    const Tensor k = random_tensor({1, pos + 1, hd}, 74, 2.0f);
    const Tensor v = random_tensor({1, pos + 1, hd}, 75);
    ops::fill_cache(dev, cache.view, k, v, 0);
    const Tensor q = random_tensor({nq, 1, hd}, 76, 2.0f);
    const float scale = 1.0f / std::sqrt(static_cast<float>(hd));
    Tensor all;
    ops::scaled_dot_product_attention_decode(dev, q, cache.view, pos, scale, all);
    for (int64_t j = 0; j < nq; ++j) {
      Tensor one({1, 1, hd});
      std::copy_n(q.data() + j * hd, hd, one.data());
      Tensor alone;
      ops::scaled_dot_product_attention_decode(dev, one, cache.view, pos, scale, alone);
      for (int64_t i = 0; i < hd; ++i) ASSERT_EQ(alone.data()[i], all.data()[j * hd + i]) << j;
    }
  }
}

// One step holding rows of two sequences (each its own block table in one pool), interleaved
// and at unrelated positions: every row attends to its own sequence only.
TEST_P(Conformance, Attention_BatchedRowsEachOverTheirOwnSequence) {
  Device& dev = device();
  for (CacheDType dtype : kCacheDTypes) {
    const int64_t nq = 6, nkv = 2, hd = 16, block = 4, len = 300;
    PagedCache cache(nkv, hd, block, 2 * len, dtype);
    const int64_t half = cache.view.table_blocks / 2;
    const int32_t* tables[2] = {cache.table.data(), cache.table.data() + half};
    // Fill both sequences with one batched update each, rows in scrambled order.
    for (int s = 0; s < 2; ++s) {
      std::vector<KvRow> rows;
      for (int64_t p = 0; p < len; ++p) rows.push_back({tables[s], half, (p * 7) % len});
      const Tensor k = random_tensor({nkv, len, hd}, 80 + s, 2.0f);
      const Tensor v = random_tensor({nkv, len, hd}, 90 + s);
      ops::paged_update_cache(dev, cache.view, rows, k, v);
    }
    const std::vector<std::pair<int, int64_t>> who = {{0, 0},   {1, 299}, {0, 256}, {1, 3},
                                                      {0, 255}, {1, 257}, {0, 100}};
    std::vector<KvRow> rows;
    for (const auto& [s, pos] : who) rows.push_back({tables[s], half, pos});
    const int64_t t = static_cast<int64_t>(who.size());
    const Tensor q = random_tensor({nq, t, hd}, 99, 2.0f);
    const float scale = 0.25f;
    Tensor out;
    ops::paged_scaled_dot_product_attention(dev, q, cache.view, rows, scale, out);
    for (int64_t r = 0; r < t; ++r) {
      Tensor qr({nq, 1, hd});
      for (int64_t j = 0; j < nq; ++j) {
        std::memcpy(qr.data() + j * hd, q.data() + (j * t + r) * hd, hd * 4);
      }
      PagedCache& c = cache;
      c.view.block_table = tables[who[r].first];
      c.view.table_blocks = half;
      const std::vector<double> want = reference_attention(qr, c, who[r].second, scale);
      std::vector<float> got(nq * hd);
      for (int64_t j = 0; j < nq; ++j) {
        std::memcpy(got.data() + j * hd, out.data() + (j * t + r) * hd, hd * 4);
      }
      EXPECT_TRUE(test::near_all(got.data(), want, 1e-5, 1e-4)) << "row " << r;
    }
    cache.view.block_table = cache.table.data();
    cache.view.table_blocks = 2 * half;
    // Copy-on-write's block copy: every head and position of the block, K and V.
    dev.copy_cache_block(cache.view, cache.table[0], cache.table[1]);
    for (int64_t h = 0; h < nkv; ++h) {
      for (int64_t p = 0; p < block; ++p) {
        for (int64_t i = 0; i < hd; ++i) {
          EXPECT_EQ(cache.read(true, h, block + p, i), cache.read(true, h, p, i));
          EXPECT_EQ(cache.read(false, h, block + p, i), cache.read(false, h, p, i));
        }
      }
    }
  }
}

// Device memory comes zeroed and sized as asked.
TEST_P(Conformance, Memory_AllocateGivesZeroedBytes) {
  const DeviceMemory m = device().allocate(size_t{3} << 20);
  ASSERT_EQ(m.bytes(), size_t{3} << 20);
  const auto* b = static_cast<const uint8_t*>(m.data());
  EXPECT_EQ(std::count(b, b + m.bytes(), 0), static_cast<std::ptrdiff_t>(m.bytes()));
}

// A device tensor lives in its allocation: host data goes in and out through the device, and a
// shape past its capacity is refused by name instead of reallocated.
TEST_P(Conformance, Memory_DeviceTensorsTransferAndKeepTheirCapacity) {
  Device& dev = device();
  Tensor t = Tensor::on(dev.allocate(24 * sizeof(float)), "scores");
  ASSERT_TRUE(t.on_device());
  t.resize({4, 6});
  const Tensor src = random_tensor({4, 6}, 9);
  dev.write(t, {src.data(), 24});
  Tensor sum = Tensor::on(dev.allocate(24 * sizeof(float)), "sum");
  ops::add(dev, t, t, sum);
  std::vector<float> back(24);
  dev.read(sum, back);
  for (int i = 0; i < 24; ++i) EXPECT_EQ(back[i], src.data()[i] + src.data()[i]);
  t.resize({2, 3});  // smaller shapes reuse the allocation
  EXPECT_EQ(t.capacity_bytes(), 24 * sizeof(float));
  try {
    t.resize({5, 6});
    ADD_FAILURE() << "a resize past the allocation must throw";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("device tensor 'scores' holds 96 bytes"),
              std::string::npos)
        << e.what();
  }
}

// Rotary tables come from the device: fp32 position times fp32 frequency, cos and sin of that
// fp32 angle rounded once to fp32 (Hugging Face's order of operations).
TEST_P(Conformance, Rope_TablesFollowTheReferenceRounding) {
  Device& dev = device();
  const auto inv = ops::rope_inv_freq(64, 1e6);
  const std::vector<int64_t> positions = {0, 5, 4095, 131071, 17};
  Tensor cos, sin;
  ops::rope_tables(dev, inv, positions, cos, sin);
  ASSERT_EQ(cos.shape(), (std::vector<int64_t>{5, 32}));
  for (size_t r = 0; r < positions.size(); ++r) {
    for (size_t i = 0; i < inv.size(); ++i) {
      const float angle = static_cast<float>(positions[r]) * inv[i];
      EXPECT_EQ(cos.row(static_cast<int64_t>(r))[i], static_cast<float>(std::cos(double{angle})));
      EXPECT_EQ(sin.row(static_cast<int64_t>(r))[i], static_cast<float>(std::sin(double{angle})));
    }
  }
  const std::vector<int64_t> negative = {3, -1};
  EXPECT_THROW(ops::rope_tables(dev, inv, negative, cos, sin), Error);
}

TEST_P(Conformance, Attention_RejectsPositionsPastTheCache) {
  Device& dev = device();
  PagedCache cache(1, 8, 4, 8, CacheDType::kF32);
  const Tensor q = random_tensor({2, 1, 8}, 1);
  Tensor out;
  EXPECT_THROW(ops::scaled_dot_product_attention_decode(dev, q, cache.view, 8, 1.0f, out), Error);
}

}  // namespace
}  // namespace bringup
