// Building a model on a device and running it: forward steps over a batch of rows from many
// sequences (continuous batching), with prefill and decode of one sequence as thin wrappers. All
// sequences share one paged KV pool sized by a token budget.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <memory>
#include <span>
#include <string>
#include <string_view>
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

// One sequence's KV cache: a block table into the model's paged pool and the number of positions
// it holds. Create it with Model::new_sequence() or Model::fork(); it must not outlive the model.
class Sequence {
 public:
  Sequence(const Sequence&) = delete;
  Sequence& operator=(const Sequence&) = delete;
  ~Sequence();

  int64_t length() const { return length_; }
  int64_t max_length() const;
  // Forgets positions from n on (n <= length), returning whole blocks to the pool.
  void truncate(int64_t n);
  // Blocks of the pool that growing to `length` positions takes: new blocks, and copies of
  // shared blocks about to be written. A scheduler checks a step fits before running it.
  int64_t blocks_to_grow(int64_t length) const;
  const std::vector<int32_t>& block_table() const { return block_table_; }

 private:
  friend class KvCache;
  explicit Sequence(KvCache* cache) : cache_(cache) {}
  KvCache* cache_;
  std::vector<int32_t> block_table_;
  int64_t length_ = 0;
  int64_t published_ = 0;    // leading full blocks offered to the prefix cache
  uint64_t chain_hash_ = 0;  // prefix hash of those blocks
};

struct ModelOptions {
  int64_t max_seq_len = 0;  // 0: the model's context (max_position_embeddings, or scaled)
  Precision precision = Precision::kBfp8Mixed;
  KvPrecision kv_precision = KvPrecision::kDefault;  // how the KV cache stores K and V
  // Positions the shared KV pool holds, all sequences together. 0: what fits in the device's
  // memory beside the weights and buffers (leaving 10% of it free), at least max_sequences x
  // max_seq_len. Pages of the pool that no sequence has reached cost no resident memory on the CPU.
  int64_t kv_budget_tokens = 0;
  int max_sequences = 1;        // sequences of max_seq_len the pool must hold at once
  int kv_block_size = 32;       // positions per KV-cache block
  int64_t prefill_chunk = 512;  // the most rows one forward step runs
  // The most rows of a step whose logits it returns (the host buffer they are read back into).
  // 0: every row of a step, as eval's all-position prefill needs; generation needs one per
  // sequence decoding together.
  int64_t max_logit_rows = 0;
  // The packed-weight cache (as tt-metal caches converted tensors): a directory where the first
  // load writes every weight in the device's layout, keyed by the checkpoint's files, the
  // precision policy and the device's layout version, for later loads to read instead of
  // converting. Empty: no cache. A stale or damaged cache file is rebuilt, never used.
  std::filesystem::path weight_cache;
  // Read a cached load's matrices where the mapped cache file holds them (as llama.cpp maps a
  // GGUF): done in a fraction of a second, with no second copy in memory competing with the page
  // cache, but on this machine decode from page-cache pages measured 10-40% slower than from the
  // device's own memory, even with every page mapped 2 MiB at a time. false (the default): copy
  // them into the device's own memory (2 MiB pages).
  bool map_weight_cache = false;
};

// What a load did with the packed-weight cache (Model::weight_cache()).
struct WeightCacheReport {
  enum class State {
    kOff,         // no cache asked for, or the checkpoint has no files to key it by
    kLoaded,      // weights read from the cache file
    kWritten,     // converted, and the cache file written (`reason` says why it was not usable)
    kNotWritten,  // converted, but the cache file could not be written (`reason` says why)
  };
  State state = State::kOff;
  std::filesystem::path file;
  std::string reason;   // empty when there was simply no cache file yet
  size_t bytes = 0;     // size of the cache file
  bool mapped = false;  // kLoaded: the matrices are the mapped file, not a copy
};
// "off", "loaded", "written", "not written"
std::string_view weight_cache_state_name(WeightCacheReport::State s);

// One row of a batched forward step: the next token of one sequence. A step may hold several
// rows of one sequence (a prompt chunk), in order, and rows of many sequences in any order.
struct BatchRow {
  Sequence* seq = nullptr;
  int32_t id = 0;
  int64_t pos = 0;      // must be the sequence's next position (its length, plus its earlier rows)
  bool logits = false;  // whether step() returns this row's logits
};

// The KV pool's state, for schedulers and metrics.
struct KvPoolStats {
  int64_t block_size = 0;
  int64_t total_blocks = 0;
  int64_t free_blocks = 0;  // no sequence holds them (cached prefix blocks among them)
  int64_t budget_tokens = 0;
  int64_t cached_blocks = 0;   // full blocks kept for prefix reuse
  int64_t prefix_queries = 0;  // prompt tokens looked up in the prefix cache, since the start
  int64_t prefix_hits = 0;     // of which found
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
  virtual KvPrecision kv_precision() const = 0;  // as asked for in ModelOptions
  virtual int64_t max_seq_len() const = 0;
  // Bytes of weights as stored on the device under this precision policy.
  virtual size_t weight_bytes() const = 0;
  virtual const WeightCacheReport& weight_cache() const = 0;
  // Bytes of weights read to decode one token (every matrix once, one embedding row).
  virtual size_t weight_bytes_per_token() const = 0;
  // Bytes of the KV pool (its whole token budget).
  virtual size_t kv_cache_bytes() const = 0;
  // Bytes of the activations of one step at max_step_rows() rows (device memory).
  virtual size_t activation_bytes() const = 0;

  // A new empty sequence; it takes KV blocks only as it grows.
  virtual std::unique_ptr<Sequence> new_sequence() = 0;
  // A sequence with the same positions as seq, sharing its KV blocks until either writes into a
  // shared one (copy-on-write): n samples of one prompt, beam search, prefix reuse.
  virtual std::unique_ptr<Sequence> fork(const Sequence& seq) = 0;
  virtual KvPoolStats kv_pool() const = 0;
  // Prefix caching (vLLM's automatic prefix caching): full KV blocks offered with
  // cache_prefix() stay in the pool after their sequences end, keyed by their tokens and every
  // token before them, until the pool needs the room (least recently used first).
  // reuse_prefix() gives an empty sequence the cached blocks of the longest prefix of `tokens`
  // (whole blocks, always leaving the last token to compute) and returns the positions it now
  // holds. Reused positions are bit-identical to computing them (steps are batch-invariant).
  virtual int64_t reuse_prefix(Sequence& seq, std::span<const int32_t> tokens) = 0;
  // Offers seq's full blocks to the cache; tokens[i] is the id at position i (at least
  // seq.length() of them).
  virtual void cache_prefix(Sequence& seq, std::span<const int32_t> tokens) = 0;
  // The most rows one step() may hold.
  virtual int64_t max_step_rows() const = 0;

  // One forward step over rows of any sequences: every linear runs once over all rows, each row
  // attends to its own sequence. Returns the logits of the rows with `logits` set, in row order
  // ([n * vocab], a host copy); valid until the next call on this model. A sequence's logits are
  // bit-identical whatever else shares its steps and wherever its prompt is split into steps.
  // Throws Error for ids outside the vocabulary, positions that do not continue their sequence,
  // sequences growing past max_seq_len, or a KV pool without room (nothing is computed then, and no
  // sequence changes length).
  virtual std::span<const float> step(std::span<const BatchRow> rows) = 0;
  // Runs ids after what seq already holds, in steps of at most max_step_rows(). Returns the logits
  // of the last position ([vocab]), or of every position ([ids.size() * vocab]) when
  // all_positions. The span stays valid until the next call on this model.
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
