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

void throw_seq_len(int64_t positions, int64_t max_seq_len, const std::string& what) {
  throw Error(what + " exceeds max_seq_len " + std::to_string(max_seq_len) + " (" +
              std::to_string(positions) + " positions)");
}

size_t KvCacheShape::bytes_per_position() const {
  const size_t elem = dtype == CacheDType::kF32 ? 4 : 2;
  return 2 * elem * static_cast<size_t>(layers * kv_heads * head_dim);
}

size_t KvCacheShape::bytes() const {
  return bytes_per_position() * static_cast<size_t>(num_blocks() * block_size);
}

KvCacheShape kv_cache_shape(const ModelConfig& c, const ModelOptions& o, CacheDType dtype) {
  KvCacheShape s;
  s.layers = c.num_hidden_layers;
  s.kv_heads = c.num_key_value_heads;
  s.head_dim = c.head_dim;
  s.block_size = o.kv_block_size;
  s.max_seq_len = checked_max_seq_len(c, o.max_seq_len);
  s.dtype = dtype;
  if (o.kv_block_size < 1) throw Error("kv cache block size must be positive");
  if (o.max_sequences < 1) throw Error("max_sequences must be at least 1");
  if (o.kv_budget_tokens < 0) throw Error("kv budget must not be negative");
  // By default, room for max_sequences sequences of max_seq_len positions in whole blocks.
  const int64_t per_seq = (s.max_seq_len + s.block_size - 1) / s.block_size * s.block_size;
  s.budget_tokens = o.kv_budget_tokens > 0 ? o.kv_budget_tokens : per_seq * o.max_sequences;
  if (s.budget_tokens > kMaxKvBudgetTokens) {
    throw Error("kv budget of " + std::to_string(s.budget_tokens) + " tokens is too large");
  }
  return s;
}

KvCache::KvCache(const KvCacheShape& s, Device& dev) : shape_(s), dev_(dev) {
  const size_t layer_bytes = shape_.bytes() / 2 / static_cast<size_t>(s.layers);
  for (int64_t l = 0; l < s.layers; ++l) {
    k_.push_back(dev.allocate(layer_bytes));
    v_.push_back(dev.allocate(layer_bytes));
  }
  refs_.assign(num_blocks(), 0);
  for (int64_t b = num_blocks() - 1; b >= 0; --b) free_.push_back(static_cast<int32_t>(b));
}

std::unique_ptr<Sequence> KvCache::new_sequence() {
  return std::unique_ptr<Sequence>(new Sequence(this));
}

std::unique_ptr<Sequence> KvCache::fork(const Sequence& parent) {
  if (!owns(parent)) throw Error("fork: the sequence belongs to another model");
  std::unique_ptr<Sequence> child(new Sequence(this));
  child->block_table_ = parent.block_table_;
  child->length_ = parent.length_;
  for (int32_t b : child->block_table_) ++refs_[b];
  return child;
}

int32_t KvCache::take_block() {
  if (free_.empty()) {
    throw Error("kv cache is full: all " + std::to_string(num_blocks()) + " blocks (budget " +
                std::to_string(shape_.budget_tokens) + " tokens) are in use by live sequences");
  }
  const int32_t b = free_.back();
  free_.pop_back();
  refs_[b] = 1;
  return b;
}

void KvCache::drop_block(int32_t block) {
  if (--refs_[block] == 0) free_.push_back(block);
}

void KvCache::reserve(Sequence& seq, int64_t length) {
  check_seq_len(length, shape_.max_seq_len,
                [&] { return "a sequence of " + std::to_string(length) + " positions"; });
  const int64_t bs = shape_.block_size;
  // Shared blocks about to be written get a copy of their own.
  for (int64_t i = seq.length_ / bs;
       i < (length + bs - 1) / bs && i < static_cast<int64_t>(seq.block_table_.size()); ++i) {
    const int32_t shared = seq.block_table_[i];
    if (refs_[shared] == 1) continue;
    const int32_t own = take_block();
    for (int64_t l = 0; l < shape_.layers; ++l) dev_.copy_cache_block(layer(l), shared, own);
    drop_block(shared);
    seq.block_table_[i] = own;
  }
  const size_t blocks = static_cast<size_t>((length + bs - 1) / bs);
  while (seq.block_table_.size() < blocks) seq.block_table_.push_back(take_block());
}

void KvCache::truncate(Sequence& seq, int64_t n) {
  if (n < 0 || n > seq.length_) {
    throw Error("cannot truncate a sequence of " + std::to_string(seq.length_) + " positions to " +
                std::to_string(n));
  }
  const size_t keep = static_cast<size_t>((n + shape_.block_size - 1) / shape_.block_size);
  while (seq.block_table_.size() > keep) {
    drop_block(seq.block_table_.back());
    seq.block_table_.pop_back();
  }
  seq.length_ = n;
}

KvView KvCache::layer(int64_t l) const {
  KvView v;
  v.dtype = shape_.dtype;
  v.k = k_[l].data();
  v.v = v_[l].data();
  v.kv_heads = shape_.kv_heads;
  v.head_dim = shape_.head_dim;
  v.block_size = shape_.block_size;
  return v;
}

KvView KvCache::view(const Sequence& seq, int64_t l) const {
  KvView v = layer(l);
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
