// How an attention op sees one layer of the paged KV cache: fixed-size blocks of positions, found
// through a sequence's block table. K and V are stored once per KV head (never repeated for the
// query heads that share it). A contiguous [kv_heads, S, head_dim] tensor is the special case of
// one block of S positions. In a batched step every row brings its own block table and position
// (KvRow), as TTNN's paged ops take a page table and a position per user.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace bringup {

// How one K or V row (head_dim values of one head at one position) is stored:
//   kF32, kBf16: head_dim values;
//   kBfp8: bfloat8_b along head_dim, as tt-metal can store K and V: a shared exponent per 16
//          values (the last block of a head_dim that is not a multiple of 16 is shorter), then
//          head_dim sign-magnitude codes of 7 bits, so each row is ceil(head_dim/16) + head_dim
//          bytes, about half of bf16's.
enum class CacheDType { kF32, kBf16, kBfp8 };

int64_t cache_row_bytes(CacheDType dtype, int64_t head_dim);
// "fp32", "bf16" or "bfp8", as --kv-precision spells it.
std::string_view cache_dtype_name(CacheDType dtype);
// One row, stored and read back the reference way (the device's kernels must agree with these).
void store_cache_row(CacheDType dtype, const float* values, int64_t head_dim, void* row);
void load_cache_row(CacheDType dtype, const void* row, int64_t head_dim, float* values);

struct KvView {
  CacheDType dtype = CacheDType::kF32;
  void* k = nullptr;  // this layer's K blocks: [num_blocks][kv_heads][block_size] rows
  void* v = nullptr;  // same for V
  int64_t kv_heads = 0, head_dim = 0, block_size = 0;
  const int32_t* block_table = nullptr;  // logical block -> physical block
  int64_t table_blocks = 0;              // entries in block_table

  int64_t capacity() const { return table_blocks * block_size; }
  int64_t row_bytes() const { return cache_row_bytes(dtype, head_dim); }
  // The row of (head, position) in the K or V blocks at base.
  std::byte* row(void* base, int64_t head, int64_t pos) const {
    const int64_t block = block_table[pos / block_size];
    const int64_t index = (block * kv_heads + head) * block_size + pos % block_size;
    return static_cast<std::byte*>(base) + index * row_bytes();
  }
  const std::byte* row(const void* base, int64_t head, int64_t pos) const {
    return row(const_cast<void*>(base), head, pos);
  }
  // Bytes of one block of K (or V): every head's block_size rows.
  int64_t block_bytes() const { return kv_heads * block_size * row_bytes(); }
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
