// Building a model on a device and running it: prefill a sequence of ids, then decode one id at a
// time against the sequence's KV cache.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "bringup/checkpoint.h"
#include "bringup/config.h"
#include "bringup/precision.h"

namespace bringup {

// A compute device. Today the CPU of this machine; the op set behind it is the seam where another
// backend slots in.
class Device;
// threads = 0 uses every core.
std::shared_ptr<Device> make_cpu_device(int threads = 0);
// e.g. "cpu (2 threads, avx512-bf16 kernels)"
std::string device_name(const Device& device);
int device_threads(const Device& device);

class KvCache;

// One sequence's KV cache: a block table into the model's paged cache and the number of positions
// it holds. Create it with Model::new_sequence(); it must not outlive the model.
class Sequence {
 public:
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;
  ~Sequence();

  int64_t length() const { return length_; }
  int64_t max_length() const;
  // Forgets positions from n on (n <= length), returning whole blocks to the pool.
  void truncate(int64_t n);
  const std::vector<int32_t>& block_table() const { return block_table_; }

 private:
  friend class KvCache;
  explicit Sequence(KvCache* cache) : cache_(cache) {}
  KvCache* cache_;
  std::vector<int32_t> block_table_;
  int64_t length_ = 0;
};

struct ModelOptions {
  int64_t max_seq_len = 0;  // 0: the model's max_position_embeddings
  Precision precision = Precision::kBfp8Mixed;
  int max_sequences = 1;        // sequences that may hold cache blocks at once
  int kv_block_size = 32;       // positions per KV-cache block
  int64_t prefill_chunk = 512;  // prompt tokens processed per forward pass
};

// Where `compare` and other tools can look inside the forward pass: the residual stream after each
// decoder layer, and inside a layer after attention and after the MLP. rows x cols fp32, rows are
// the positions of the current forward pass.
struct Tap {
  enum class Stage { kEmbedding, kAfterAttention, kAfterMlp, kFinalNorm };
  Stage stage;
  int64_t layer;  // as in model.layers.N; -1 for embedding and final norm
  int64_t first_position;
  int64_t rows, cols;
  const float* data;
};
using TapFn = std::function<void(const Tap&)>;

class Model {
 public:
  virtual ~Model() = default;
  virtual const ModelConfig& config() const = 0;
  virtual Precision precision() const = 0;
  virtual int64_t max_seq_len() const = 0;
  // Bytes of weights as stored on the device under this precision policy.
  virtual size_t weight_bytes() const = 0;
  // Bytes of weights read to decode one token (every matrix once, one embedding row).
  virtual size_t weight_bytes_per_token() const = 0;
  // Bytes the KV cache takes when every sequence is at max_seq_len.
  virtual size_t kv_cache_bytes() const = 0;

  // Throws Error when no cache blocks are free (more than max_sequences alive).
  virtual std::unique_ptr<Sequence> new_sequence() = 0;
  // Runs ids after what seq already holds. Returns the logits of the last position ([vocab]),
  // or of every position ([ids.size() * vocab]) when all_positions. The span stays valid until
  // the next call on this model. Throws Error for ids outside the vocabulary or a sequence that
  // would grow past max_seq_len.
  virtual std::span<const float> prefill(Sequence& seq, std::span<const int32_t> ids,
                                         bool all_positions = false) = 0;
  // One decode step: the single-token path with paged_update_cache and decode attention.
  virtual std::span<const float> decode(Sequence& seq, int32_t id) = 0;
  // Called for every tap while set; nullptr to stop.
  virtual void set_tap(TapFn fn) = 0;
};

std::unique_ptr<Model> build_model(const Checkpoint& checkpoint, Device& device,
                                   int64_t max_seq_len, Precision precision);
std::unique_ptr<Model> build_model(const Checkpoint& checkpoint, Device& device,
                                   const ModelOptions& options);

}  // namespace bringup
