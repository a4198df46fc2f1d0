// The CPU backend: the op set run by the kernels in kernels/cpu on a pool of threads.
#pragma once

#include <memory>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/thread_pool.h"
#include "device/device.h"
#include "kernels/cpu/matmul.h"

namespace bringup {

class CpuDevice final : public Device {
 public:
  // kernels: nullptr picks the fastest set this CPU runs (tests pass each set explicitly).
  explicit CpuDevice(int threads, const cpu::MicroKernels* kernels = nullptr);

  std::string name() const override;
  int threads() const override { return pool_.size(); }
  void time_sync(bool on) override { pool_.time_sync(on); }
  SyncStats sync_stats() const override { return pool_.sync_stats(); }
  ThreadPool& pool() { return pool_; }

  DeviceMemory allocate(size_t bytes) override;
  size_t available_memory() const override;  // MemAvailable in /proc/meminfo
  void write(Tensor& t, std::span<const float> host) override;
  void read(const Tensor& t, std::span<float> host) override;
  size_t workspace_bytes(const StepShape& shape) const override;
  Weight upload_weight(std::span<const HostMatrix> parts, WeightFormat format) override;
  std::string weight_layout() const override;
  WeightImage weight_image(const Weight& w) const override;
  Weight adopt_weight(std::span<const int64_t> layout,
                      std::span<const std::span<const std::byte>> buffers,
                      std::shared_ptr<const void> owner) override;

  void embedding(const Weight& table, std::span<const int32_t> ids, Tensor& out) override;
  void linear(const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out) override;
  void rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) override;
  void rope_tables(std::span<const float> inv_freq, std::span<const int64_t> positions, Tensor& cos,
                   Tensor& sin, float attention_factor) override;
  void rotary_embedding(Tensor& x, const Tensor& cos, const Tensor& sin) override;
  void create_qkv_heads(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) override;
  void concat_heads(const Tensor& heads, Tensor& out) override;
  void paged_update_cache(const KvView& layer, std::span<const KvRow> rows, const Tensor& k,
                          const Tensor& v) override;
  void paged_scaled_dot_product_attention(const Tensor& q, const KvView& layer,
                                          std::span<const KvRow> rows, float scale,
                                          Tensor& out) override;
  void copy_cache_block(const KvView& layer, int32_t from, int32_t to) override;
  void gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) override;
  void silu_mul(const Tensor& gate_up, Tensor& out) override;
  void add(const Tensor& a, const Tensor& b, Tensor& out) override;

 private:
  // Per-thread scratch of at least `floats` floats.
  float* thread_scratch(int thread, size_t floats);
  // Runs fn(row, thread) over rows, in parallel when there is enough work to pay for it.
  void for_rows(int64_t rows, int64_t work_per_row, const std::function<void(int64_t, int)>& fn);
  // Attention for rows [r0, r1) of a step (paged_scaled_dot_product_attention runs passes).
  void attention_pass(const Tensor& q, const KvView& layer, std::span<const KvRow> rows, int64_t r0,
                      int64_t r1, float scale, Tensor& out);

  ThreadPool pool_;
  const cpu::MicroKernels& kernels_;
  cpu::MatmulScratch matmul_scratch_;
  std::vector<AlignedBuffer> scratch_;
  AlignedBuffer partials_;
  std::vector<int64_t> chunk_start_;
  // One attention task per KV head and unit: rows [i0, i1) of a pass (of one sequence) over
  // chunk c of the cache.
  struct AttentionUnit {
    int64_t i0, i1, c;
  };
  std::vector<AttentionUnit> units_;
};

}  // namespace bringup
