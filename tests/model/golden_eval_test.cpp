// Teacher forcing against the Hugging Face transformers references of both golden checkpoints,
// every precision policy, with the thresholds the bring-up must meet.
#include <gtest/gtest.h>

#include "device/cpu_device.h"
#include "model_test_util.h"

namespace bringup {
namespace {

struct Threshold {
  Precision precision;
  double top1, top5;
};

class GoldenEval : public ::testing::TestWithParam<std::tuple<std::string, Threshold>> {};

TEST_P(GoldenEval, MeetsThresholds) {
  const auto& [name, th] = GetParam();
  const Checkpoint ck = Checkpoint::open(test::golden(name));
  const Reference ref = load_reference(test::golden(name) / "reference.json");
  auto dev = make_cpu_device(2);
  auto model = build_model(ck, *dev, 0, th.precision);
  EvalTotals total;
  for (const ReferenceCase& c : ref.cases) {
    const CaseScore s = teacher_force(*model, c, {});
    total.add(s);
    if (th.precision == Precision::kFp32) {
      // The project's reference path: every case exact, logits within 5e-3 of transformers.
      EXPECT_EQ(s.top1, s.steps) << c.name;
      EXPECT_EQ(s.top5, s.steps) << c.name;
      EXPECT_LE(s.max_abs_logit_err, 5e-3) << c.name;
    }
  }
  const double top1 = test::frac(total.top1, total.steps), top5 = test::frac(total.top5, total.steps);
  RecordProperty("top1", std::to_string(top1));
  RecordProperty("top5", std::to_string(top5));
  EXPECT_GE(top1, th.top1) << precision_name(th.precision);
  EXPECT_GE(top5, th.top5) << precision_name(th.precision);
}

INSTANTIATE_TEST_SUITE_P(
    Policies, GoldenEval,
    ::testing::Combine(::testing::Values("qwen2-gqa7-small", "qwen2-tied-hd64"),
                       ::testing::Values(Threshold{Precision::kFp32, 1.0, 1.0},
                                         Threshold{Precision::kBf16, 0.97, 0.99},
                                         Threshold{Precision::kBfp8Mixed, 0.92, 0.99},
                                         Threshold{Precision::kBfp8, 0.90, 0.99})),
    [](const auto& info) {
      std::string n = std::get<0>(info.param) + "_" +
                      std::string(precision_name(std::get<1>(info.param).precision));
      for (char& ch : n) ch = std::isalnum(static_cast<unsigned char>(ch)) ? ch : '_';
      return n;
    });

// The portable kernels score the same way (they are the fallback on CPUs without AVX512-BF16).
TEST(GoldenEvalPortable, Bfp8MixedMeetsThresholds) {
  const Checkpoint ck = Checkpoint::open(test::golden("qwen2-gqa7-small"));
  const Reference ref = load_reference(test::golden("qwen2-gqa7-small") / "reference.json");
  CpuDevice dev(2, &cpu::portable_kernels());
  auto model = build_model(ck, dev, 0, Precision::kBfp8Mixed);
  const EvalTotals total = test::score(*model, ref);
  EXPECT_GE(test::frac(total.top1, total.steps), 0.92);
  EXPECT_GE(test::frac(total.top5, total.steps), 0.99);
}

}  // namespace
}  // namespace bringup
