// Several sequences generated together through the public API: each step of Model::step holds
// the next token of every sequence, so the weights are read once per step for all of them.
// Prompts are given as comma-separated ids; each sequence gets 8 greedy tokens, one line each.
//   batch_generate CHECKPOINT_DIR IDS [IDS ...]     e.g. batch_generate ckpt 1,2,3 7,7 42
#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <sstream>
#include <string>
#include <vector>

#include "bringup/bringup.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s CHECKPOINT_DIR IDS [IDS ...]\n", argv[0]);
    return 2;
  }
  try {
    const bringup::Checkpoint ck = bringup::Checkpoint::open(argv[1]);
    auto device = bringup::make_cpu_device();
    bringup::ModelOptions options;
    options.max_seq_len = 256;
    options.kv_budget_tokens = 256 * (argc - 2);  // the KV pool all sequences share
    auto model = bringup::build_model(ck, *device, options);
    const size_t vocab = static_cast<size_t>(model->config().vocab_size);

    // Every prompt in one step; the last row of each asks for logits.
    std::vector<std::unique_ptr<bringup::Sequence>> seqs;
    std::vector<bringup::BatchRow> rows;
    for (int i = 2; i < argc; ++i) {
      seqs.push_back(model->new_sequence());
      std::vector<int32_t> ids;
      std::stringstream in(argv[i]);
      for (std::string id; std::getline(in, id, ',');) ids.push_back(std::atoi(id.c_str()));
      for (size_t j = 0; j < ids.size(); ++j) {
        rows.push_back({seqs.back().get(), ids[j], static_cast<int64_t>(j), j + 1 == ids.size()});
      }
    }
    std::vector<std::vector<int32_t>> out(seqs.size());
    std::span<const float> logits = model->step(rows);
    for (int step = 0; step < 8; ++step) {
      rows.clear();
      for (size_t s = 0; s < seqs.size(); ++s) {
        const auto row = logits.subspan(s * vocab, vocab);
        const auto next =
            static_cast<int32_t>(std::max_element(row.begin(), row.end()) - row.begin());
        out[s].push_back(next);
        rows.push_back({seqs[s].get(), next, seqs[s]->length(), true});
      }
      if (step < 7) logits = model->step(rows);
    }
    for (const auto& ids : out) {
      for (int32_t id : ids) std::printf("%d ", id);
      std::printf("\n");
    }
  } catch (const bringup::Error& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 0;
}
