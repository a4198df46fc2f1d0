// What each precision policy stores each weight group in.
#pragma once

#include "bringup/precision.h"
#include "core/kv_view.h"
#include "device/weight.h"

namespace bringup {

struct WeightPolicy {
  WeightFormat embedding, lm_head, attention, gate_up, down;
  bool vectors_bf16;  // biases and norm weights rounded to bf16
  CacheDType cache;
};

WeightPolicy weight_policy(Precision p);

}  // namespace bringup
