#include "runtime/kv_cache.h"

#include <algorithm>
#include <string>

#include "bringup/error.h"

namespace bringup {

int64_t checked_max_seq_len(const ModelConfig& c, int64_t requested) {
  if (requested < 0) throw Error("max_seq_len must be positive");
  const int64_t context = c.context_length();
  const int64_t len = requested > 0 ? requested : context;
  if (len > context) {
    throw Error("max_seq_len " + std::to_string(len) + " exceeds the model's context of " +
                std::to_string(context) +
                (c.rope_scaling.type == "default"
                     ? std::string(" (max_position_embeddings)")
                     : " (" + c.rope_scaling.type + " RoPE scaling, factor " +
                           std::to_string(c.rope_scaling.factor) + ")"));
  }
  return len;
}

void throw_seq_len(int64_t positions, int64_t max_seq_len, const std::string& what) {
  throw Error(what + " exceeds max_seq_len " + std::to_string(max_seq_len) + " (" +
              std::to_string(positions) + " positions)");
}

size_t KvCacheShape::bytes_per_position() const {
  return 2 * static_cast<size_t>(layers * kv_heads * cache_row_bytes(dtype, head_dim));
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
  hash_.assign(num_blocks(), 0);
  parent_.assign(num_blocks(), -1);
  cached_.assign(num_blocks(), 0);
  lru_pos_.resize(num_blocks());
}

std::unique_ptr<Sequence> KvCache::new_sequence() {
  return std::unique_ptr<Sequence>(new Sequence(this));
}

std::unique_ptr<Sequence> KvCache::fork(const Sequence& parent) {
  if (!owns(parent)) throw Error("fork: the sequence belongs to another model");
  std::unique_ptr<Sequence> child(new Sequence(this));
  child->block_table_ = parent.block_table_;
  child->length_ = parent.length_;
  child->published_ = parent.published_;
  child->chain_hash_ = parent.chain_hash_;
  for (int32_t b : child->block_table_) ++refs_[b];
  return child;
}

int32_t KvCache::take_block() {
  if (free_.empty() && lru_.empty()) {
    throw Error("kv cache is full: all " + std::to_string(num_blocks()) + " blocks (budget " +
                std::to_string(shape_.budget_tokens) + " tokens) are in use by live sequences");
  }
  int32_t b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
  } else {  // the least recently used cached prefix block gives way
    b = lru_.front();
    lru_.pop_front();
    uncache(b);
  }
  refs_[b] = 1;
  return b;
}

void KvCache::drop_block(int32_t block) {
  if (--refs_[block] > 0) return;
  if (cached_[block]) {
    lru_pos_[block] = lru_.insert(lru_.end(), block);
  } else {
    free_.push_back(block);
  }
}

void KvCache::uncache(int32_t block) {
  if (!cached_[block]) return;
  const auto [first, last] = index_.equal_range(hash_[block]);
  for (auto it = first; it != last; ++it) {
    if (it->second == block) {
      index_.erase(it);
      break;
    }
  }
  cached_[block] = 0;
}

namespace {

// A 64-bit key of a block's tokens after the prefix whose key is `seed` (splitmix64 steps).
uint64_t chain(uint64_t seed, std::span<const int32_t> tokens) {
  uint64_t h = seed ^ 0x9E3779B97F4A7C15ull;
  for (int32_t t : tokens) {
    h += static_cast<uint64_t>(static_cast<uint32_t>(t)) + 0x9E3779B97F4A7C15ull;
    h = (h ^ (h >> 30)) * 0xBF58476D1CE4E5B9ull;
    h = (h ^ (h >> 27)) * 0x94D049BB133111EBull;
    h ^= h >> 31;
  }
  return h;
}

}  // namespace

int32_t KvCache::find_cached(uint64_t hash, int32_t parent, std::span<const int32_t> tokens) const {
  const auto [first, last] = index_.equal_range(hash);
  const size_t bs = static_cast<size_t>(shape_.block_size);
  for (auto it = first; it != last; ++it) {
    const int32_t b = it->second;
    if (parent_[b] == parent &&
        std::equal(tokens.begin(), tokens.end(), tokens_.begin() + b * bs)) {
      return b;
    }
  }
  return -1;
}

int64_t KvCache::reuse_prefix(Sequence& seq, std::span<const int32_t> tokens) {
  if (!owns(seq) || seq.length_ != 0 || !seq.block_table_.empty()) {
    throw Error("reuse_prefix needs an empty sequence of this model");
  }
  const int64_t bs = shape_.block_size;
  const int64_t blocks = tokens.empty() ? 0 : (static_cast<int64_t>(tokens.size()) - 1) / bs;
  uint64_t h = 0;
  int32_t parent = -1;
  for (int64_t i = 0; i < blocks; ++i) {
    const std::span<const int32_t> t = tokens.subspan(i * bs, bs);
    const uint64_t next = chain(h, t);
    const int32_t b = find_cached(next, parent, t);
    if (b < 0) break;
    if (refs_[b]++ == 0) lru_.erase(lru_pos_[b]);
    seq.block_table_.push_back(b);
    h = next;
    parent = b;
  }
  seq.length_ = static_cast<int64_t>(seq.block_table_.size()) * bs;
  seq.published_ = static_cast<int64_t>(seq.block_table_.size());
  seq.chain_hash_ = h;
  prefix_queries_ += static_cast<int64_t>(tokens.size());
  prefix_hits_ += seq.length_;
  return seq.length_;
}

void KvCache::cache_prefix(Sequence& seq, std::span<const int32_t> tokens) {
  if (!owns(seq)) throw Error("cache_prefix: the sequence belongs to another model");
  if (static_cast<int64_t>(tokens.size()) < seq.length_) {
    throw Error("cache_prefix needs the ids of all " + std::to_string(seq.length_) + " positions");
  }
  const int64_t bs = shape_.block_size;
  const size_t ubs = static_cast<size_t>(bs);
  for (int64_t i = seq.published_; i < seq.length_ / bs; ++i) {
    const std::span<const int32_t> t = tokens.subspan(i * bs, ubs);
    const int32_t b = seq.block_table_[i];
    const int32_t parent = i > 0 ? seq.block_table_[i - 1] : -1;
    seq.chain_hash_ = chain(seq.chain_hash_, t);
    if (cached_[b] || find_cached(seq.chain_hash_, parent, t) >= 0) continue;
    cached_[b] = 1;
    hash_[b] = seq.chain_hash_;
    parent_[b] = parent;
    if (tokens_.empty()) tokens_.resize(static_cast<size_t>(num_blocks()) * ubs);
    std::copy(t.begin(), t.end(), tokens_.begin() + b * bs);
    index_.emplace(seq.chain_hash_, b);
  }
  seq.published_ = std::max(seq.published_, seq.length_ / bs);
}

void KvCache::reserve(Sequence& seq, int64_t length) {
  check_seq_len(length, shape_.max_seq_len,
                [&] { return "a sequence of " + std::to_string(length) + " positions"; });
  const int64_t bs = shape_.block_size;
  // Shared blocks about to be written get a copy of their own.
  for (int64_t i = seq.length_ / bs;
       i < (length + bs - 1) / bs && i < static_cast<int64_t>(seq.block_table_.size()); ++i) {
    const int32_t shared = seq.block_table_[i];
    if (refs_[shared] == 1) {
      uncache(shared);  // its positions are about to change
      continue;
    }
    const int32_t own = take_block();
    for (int64_t l = 0; l < shape_.layers; ++l) dev_.copy_cache_block(layer(l), shared, own);
    drop_block(shared);
    seq.block_table_[i] = own;
  }
  const size_t blocks = static_cast<size_t>((length + bs - 1) / bs);
  while (seq.block_table_.size() < blocks) seq.block_table_.push_back(take_block());
}

int64_t KvCache::blocks_to_grow(const Sequence& seq, int64_t length) const {
  const int64_t bs = shape_.block_size;
  const int64_t have = static_cast<int64_t>(seq.block_table_.size());
  const int64_t blocks = (length + bs - 1) / bs;
  int64_t n = std::max<int64_t>(0, blocks - have);
  for (int64_t i = seq.length_ / bs; i < blocks && i < have; ++i)
    n += refs_[seq.block_table_[i]] > 1;
  return n;
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
  if (seq.published_ > n / shape_.block_size) {  // offered blocks past n are rewritten from here
    seq.published_ = 0;
    seq.chain_hash_ = 0;
  }
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

int64_t Sequence::blocks_to_grow(int64_t length) const {
  return cache_->blocks_to_grow(*this, length);
}

}  // namespace bringup
