// How an attention op sees one layer of the paged KV cache: fixed-size blocks of positions, found
// through a sequence's block table. K and V are stored once per KV head (never repeated for the
// query heads that share it). A contiguous [kv_heads, S, head_dim] tensor is the special case of
// one block of S positions. In a batched step every row brings its own block table and position
// (KvRow), as TTNN's paged ops take a page table and a position per user.
#pragma once

#include <cstdint>

namespace bringup {

enum class CacheDType { kF32, kBf16 };

struct KvView {
  CacheDType dtype = CacheDType::kF32;
  void* k = nullptr;  // this layer's K blocks: [num_blocks][kv_heads][block_size][head_dim]
  void* v = nullptr;  // same for V
  int64_t kv_heads = 0, head_dim = 0, block_size = 0;
  const int32_t* block_table = nullptr;  // logical block -> physical block
  int64_t table_blocks = 0;              // entries in block_table

  int64_t capacity() const { return table_blocks * block_size; }
  // Element offset of (head, position) in the K or V blocks.
  int64_t offset(int64_t head, int64_t pos) const {
    const int64_t block = block_table[pos / block_size];
    return ((block * kv_heads + head) * block_size + pos % block_size) * head_dim;
  }
  // Elements of one block of K (or V): every head's block_size positions.
  int64_t block_elems() const { return kv_heads * block_size * head_dim; }
};

// One row of a batched step: the block table of its sequence and the row's position in it.
struct KvRow {
  const int32_t* block_table = nullptr;
  int64_t table_blocks = 0;
  int64_t pos = 0;
  int64_t first = 0;  // the first position it attends to (a sliding window's start)
};

// The layer seen through one row's block table.
inline KvView row_view(const KvView& layer, const KvRow& row) {
  KvView v = layer;
  v.block_table = row.block_table;
  v.table_blocks = row.table_blocks;
  return v;
}

}  // namespace bringup
