// The smallest complete use of the public API: open a checkpoint, build it on the CPU device,
// prefill a prompt and decode greedily.
//   minimal_generate CHECKPOINT_DIR [ID ...]
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <vector>

#include "bringup/bringup.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s CHECKPOINT_DIR [ID ...]\n", argv[0]);
    return 2;
  }
  try {
    const bringup::Checkpoint ck = bringup::Checkpoint::open(argv[1]);
    auto device = bringup::make_cpu_device();
    auto model = bringup::build_model(ck, *device, 256, bringup::Precision::kBfp8Mixed);
    std::vector<int32_t> prompt;
    for (int i = 2; i < argc; ++i) prompt.push_back(std::atoi(argv[i]));
    if (prompt.empty()) prompt = {1, 2, 3, 4};

    auto seq = model->new_sequence();
    std::span<const float> logits = model->prefill(*seq, prompt);
    for (int step = 0; step < 8; ++step) {
      const int32_t next =
          static_cast<int32_t>(std::max_element(logits.begin(), logits.end()) - logits.begin());
      std::printf("%d ", next);
      logits = model->decode(*seq, next);
    }
    std::printf("\n");
  } catch (const bringup::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
