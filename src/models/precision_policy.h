// What each precision policy stores each weight group in.
#pragma once

#include <span>

#include "bringup/precision.h"
#include "core/kv_view.h"
#include "device/weight.h"

namespace bringup {

struct WeightPolicy {
  WeightFormat embedding, lm_head, attention, gate_up, down;
  bool vectors_bf16;  // biases and norm weights rounded to bf16
  CacheDType cache;
  bool native;  // each matrix in its checkpoint's own format (device_format), not the above
};

WeightPolicy weight_policy(Precision p);
// The KV cache's format under policy p with kv asked for.
CacheDType cache_dtype(Precision p, KvPrecision kv);

// The format of a weight stacked from `parts` whose group the policy puts in `group`: that one,
// or under a native policy the parts' own where a kernel reads it (bfp tiles, Q8_0, Q4_K and
// Q6_K blocks, F32 and BF16 rows), else bf16 (F16, the other ggml types, parts stored
// differently).
WeightFormat device_format(const WeightPolicy& p, WeightFormat group,
                           std::span<const HostMatrix> parts);

}  // namespace bringup
