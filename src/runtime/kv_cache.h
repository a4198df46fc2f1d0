// The paged KV pool shared by every sequence of a model: per layer one device allocation of
// fixed-size blocks of positions for K and for V, and a block table per sequence (vLLM's and
// TTNN's paged attention layout). The pool is sized by a token budget, not by sequences x
// max_seq_len: blocks are taken as sequences grow and returned when they shrink or end. Blocks
// carry a reference count, so a forked sequence shares its parent's blocks until one of them
// writes into a shared block, which is then copied (copy-on-write).
#pragma once

#include <cstdint>
#include <list>
#include <memory>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "bringup/model.h"
#include "core/kv_view.h"
#include "device/device.h"

namespace bringup {

// The cache length to use: `requested`, or the model's context (ModelConfig::context_length) when
// it is 0; more than that context is an Error.
int64_t checked_max_seq_len(const ModelConfig& c, int64_t requested);
// The one length check: `what()` (e.g. "prompt of 5 tokens plus 256 new tokens") needs
// `positions` cache positions; more than max_seq_len is an Error whose message says both. The
// message is built only when the check fails (it runs on every forward step).
[[noreturn]] void throw_seq_len(int64_t positions, int64_t max_seq_len, const std::string& what);
template <class What>
void check_seq_len(int64_t positions, int64_t max_seq_len, What&& what) {
  if (positions > max_seq_len) throw_seq_len(positions, max_seq_len, what());
}

// The largest pool: block ids and positions stay within int32.
constexpr int64_t kMaxKvBudgetTokens = int64_t{1} << 31;

struct KvCacheShape {
  int64_t layers = 0, kv_heads = 0, head_dim = 0;
  int64_t block_size = 32;
  int64_t max_seq_len = 0;    // longest sequence
  int64_t budget_tokens = 0;  // positions the pool holds, all sequences together
  CacheDType dtype = CacheDType::kBf16;

  int64_t num_blocks() const { return (budget_tokens + block_size - 1) / block_size; }
  size_t bytes_per_position() const;  // K and V, every layer
  size_t bytes() const;               // the whole pool
};

// The pool shape from model options: budget = kv_budget_tokens, or max_sequences x max_seq_len
// when it is 0. Throws Error for bad options.
KvCacheShape kv_cache_shape(const ModelConfig& c, const ModelOptions& o, CacheDType dtype);

class KvCache {
 public:
  KvCache(const KvCacheShape& shape, Device& dev);

  std::unique_ptr<Sequence> new_sequence();
  // A sequence holding the same positions as `parent`, sharing its blocks.
  std::unique_ptr<Sequence> fork(const Sequence& parent);
  // Makes room in seq for positions [0, length) and gives it blocks of its own for the positions
  // from seq.length() on, which are about to be written; throws Error past max_seq_len or when
  // the pool has no free block.
  void reserve(Sequence& seq, int64_t length);
  // Blocks reserve(seq, length) would take from the pool.
  int64_t blocks_to_grow(const Sequence& seq, int64_t length) const;
  void set_length(Sequence& seq, int64_t length) { seq.length_ = length; }
  // Keeps the first n positions of seq and returns the blocks past them to the pool.
  void truncate(Sequence& seq, int64_t n);
  void release(Sequence& seq) { truncate(seq, 0); }
  // Prefix caching (Model::reuse_prefix / cache_prefix).
  int64_t reuse_prefix(Sequence& seq, std::span<const int32_t> tokens);
  void cache_prefix(Sequence& seq, std::span<const int32_t> tokens);
  bool owns(const Sequence& seq) const { return seq.cache_ == this; }

  // One layer of the pool; its block_table is unset (attention ops take one per row).
  KvView layer(int64_t layer) const;
  KvView view(const Sequence& seq, int64_t layer) const;
  const KvCacheShape& shape() const { return shape_; }
  int64_t num_blocks() const { return shape_.num_blocks(); }
  int64_t free_blocks() const { return static_cast<int64_t>(free_.size() + lru_.size()); }
  int64_t cached_blocks() const { return static_cast<int64_t>(index_.size()); }
  int64_t prefix_queries() const { return prefix_queries_; }
  int64_t prefix_hits() const { return prefix_hits_; }
  size_t bytes() const { return shape_.bytes(); }

 private:
  int32_t take_block();
  void drop_block(int32_t block);
  void uncache(int32_t block);  // forgets a block's prefix key
  // The cached block holding `tokens` after the prefix ending in block `parent` (-1: none).
  int32_t find_cached(uint64_t hash, int32_t parent, std::span<const int32_t> tokens) const;

  KvCacheShape shape_;
  Device& dev_;
  std::vector<DeviceMemory> k_, v_;  // per layer
  std::vector<int32_t> refs_;        // per block
  std::vector<int32_t> free_;
  // The prefix cache: per cached block its key (hash of its tokens and all before them), the
  // block before it and its tokens (compared on every hit, so a hash collision cannot hand out
  // wrong KV); unreferenced cached blocks wait in LRU order.
  std::unordered_multimap<uint64_t, int32_t> index_;
  std::vector<uint64_t> hash_;
  std::vector<int32_t> parent_;
  std::vector<int32_t> tokens_;  // [block][block_size]
  std::vector<char> cached_;
  std::list<int32_t> lru_;
  std::vector<std::list<int32_t>::iterator> lru_pos_;
  int64_t prefix_queries_ = 0, prefix_hits_ = 0;
};

}  // namespace bringup
