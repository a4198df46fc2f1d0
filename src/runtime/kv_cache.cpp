#include "runtime/kv_cache.h"

#include <string>

#include "bringup/error.h"

namespace bringup {

int64_t checked_max_seq_len(const ModelConfig& c, int64_t requested) {
  if (requested < 0) throw Error("max_seq_len must be positive");
  const int64_t len = requested > 0 ? requested : c.max_position_embeddings;
  if (len > c.max_position_embeddings) {
    throw Error("max_seq_len " + std::to_string(len) +
                " exceeds the model's max_position_embeddings " +
                std::to_string(c.max_position_embeddings));
  }
  return len;
}

KvCache::KvCache(const KvCacheShape& s) : shape_(s) {
  if (s.block_size < 1) throw Error("kv cache block size must be positive");
  num_blocks_ = (s.max_seq_len + s.block_size - 1) / s.block_size * s.max_sequences;
  layer_elems_ = static_cast<size_t>(num_blocks_ * s.kv_heads * s.block_size * s.head_dim);
  const size_t elem = s.dtype == CacheDType::kF32 ? 4 : 2;
  k_ = AlignedBuffer(layer_elems_ * s.layers * elem);
  v_ = AlignedBuffer(layer_elems_ * s.layers * elem);
  for (int64_t b = num_blocks_ - 1; b >= 0; --b) free_blocks_.push_back(static_cast<int32_t>(b));
}

size_t KvCache::bytes_per_position() const {
  const size_t elem = shape_.dtype == CacheDType::kF32 ? 4 : 2;
  return 2 * elem * static_cast<size_t>(shape_.layers * shape_.kv_heads * shape_.head_dim);
}

std::unique_ptr<Sequence> KvCache::new_sequence() {
  return std::unique_ptr<Sequence>(new Sequence(this));
}

void KvCache::reserve(Sequence& seq, int64_t length) {
  if (length > shape_.max_seq_len) {
    throw Error("sequence of " + std::to_string(length) + " positions exceeds max_seq_len " +
                std::to_string(shape_.max_seq_len) + " (raise --max-seq-len)");
  }
  const size_t blocks = static_cast<size_t>((length + shape_.block_size - 1) / shape_.block_size);
  while (seq.block_table_.size() < blocks) {
    if (free_blocks_.empty()) {
      throw Error("kv cache has no free blocks: more sequences alive than max_sequences (" +
                  std::to_string(shape_.max_sequences) + ")");
    }
    seq.block_table_.push_back(free_blocks_.back());
    free_blocks_.pop_back();
  }
}

void KvCache::truncate(Sequence& seq, int64_t n) {
  if (n < 0 || n > seq.length_) {
    throw Error("cannot truncate a sequence of " + std::to_string(seq.length_) + " positions to " +
                std::to_string(n));
  }
  const size_t keep = static_cast<size_t>((n + shape_.block_size - 1) / shape_.block_size);
  while (seq.block_table_.size() > keep) {
    free_blocks_.push_back(seq.block_table_.back());
    seq.block_table_.pop_back();
  }
  seq.length_ = n;
}

KvView KvCache::view(const Sequence& seq, int64_t layer) {
  KvView v;
  v.dtype = shape_.dtype;
  const size_t elem = shape_.dtype == CacheDType::kF32 ? 4 : 2;
  v.k = k_.as<std::byte>() + layer * layer_elems_ * elem;
  v.v = v_.as<std::byte>() + layer * layer_elems_ * elem;
  v.kv_heads = shape_.kv_heads;
  v.head_dim = shape_.head_dim;
  v.block_size = shape_.block_size;
  v.block_table = seq.block_table_.data();
  v.table_blocks = static_cast<int64_t>(seq.block_table_.size());
  return v;
}

// Sequence lives in the public header; its cache bookkeeping is here.
Sequence::~Sequence() {
  cache_->release(*this);
}
int64_t Sequence::max_length() const {
  return cache_->shape().max_seq_len;
}
void Sequence::truncate(int64_t n) {
  cache_->truncate(*this, n);
}

}  // namespace bringup
