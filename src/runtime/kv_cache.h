// The paged KV cache: one pool of fixed-size blocks of positions per layer for K and for V, and a
// block table per sequence (vLLM's and TTNN's paged attention layout). Blocks are taken as a
// sequence grows, so memory follows the tokens actually held; the pool is reserved for
// max_sequences sequences of max_seq_len positions, but pages never written stay unbacked.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "bringup/model.h"
#include "core/aligned_buffer.h"
#include "device/kv_view.h"

namespace bringup {

// The cache length to use: `requested`, or the model's max_position_embeddings when it is 0;
// more than max_position_embeddings is an Error.
int64_t checked_max_seq_len(const ModelConfig& c, int64_t requested);

struct KvCacheShape {
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  int64_t block_size = 32;
  int64_t max_seq_len = 0;
  int64_t max_sequences = 1;
  CacheDType dtype = CacheDType::kBf16;
};

class KvCache {
 public:
  explicit KvCache(const KvCacheShape& shape);

  std::unique_ptr<Sequence> new_sequence();
  // Makes room in seq for positions [0, length); throws Error past max_seq_len or when the pool
  // is exhausted.
  void reserve(Sequence& seq, int64_t length);
  void set_length(Sequence& seq, int64_t length) { seq.length_ = length; }
  // Keeps the first n positions of seq and returns the blocks past them to the pool.
  void truncate(Sequence& seq, int64_t n);
  void release(Sequence& seq) { truncate(seq, 0); }

  KvView view(const Sequence& seq, int64_t layer);
  const KvCacheShape& shape() const { return shape_; }
  int64_t num_blocks() const { return num_blocks_; }
  // Bytes of the whole pool (K and V, every layer).
  size_t bytes() const { return k_.bytes() + v_.bytes(); }
  // Bytes one position takes in every layer (K and V).
  size_t bytes_per_position() const;

 private:
  KvCacheShape shape_;
  int64_t num_blocks_ = 0;
  size_t layer_elems_ = 0;  // elements of one layer's K (or V) pool
  AlignedBuffer k_, v_;
  std::vector<int32_t> free_blocks_;
};

}  // namespace bringup
