#include "device/cpu_device.h"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <thread>

#include "bringup/error.h"
#include "bringup/model.h"
#include "core/dtype.h"
#include "kernels/cpu/packed_weight.h"
#include "kernels/cpu/vector_kernels.h"

namespace bringup {

namespace {

// A weight as this backend stores it: the kernels' packed layout.
struct CpuWeight final : WeightStorage {
  explicit CpuWeight(cpu::PackedWeight p) : packed(std::move(p)) {}
  cpu::PackedWeight packed;
};

const cpu::PackedWeight& packed(const Weight& w) {
  return static_cast<const CpuWeight&>(*w.storage).packed;
}

// Positions per decode-attention task: the sequence is split so both cores share one KV head,
// at a fixed size so the result does not depend on the thread count.
constexpr int64_t kDecodeChunk = 256;
// Chunks whose partial softmaxes one attention pass holds: rows are taken in passes of about this
// many chunks, so the buffer has a fixed size whatever the context (a step of 512 rows at 128K
// positions would otherwise hold 256K chunks' partials).
constexpr int64_t kPassChunks = 4096;

// Rows of one sequence in a pass that share one widening of a chunk's K and V rows: enough to make
// the widening's cost small beside their attention, few enough to leave tasks for every thread.
constexpr int64_t kShareRows = 32;

int64_t chunks_of(const KvRow& row) {
  return row.pos / kDecodeChunk - row.first / kDecodeChunk + 1;
}

void write_cache_rows(const KvView& layer, std::span<const KvRow> rows, void* base,
                      const Tensor& src) {
  const int64_t t = src.dim(1), hd = layer.head_dim;
  for (int64_t r = 0; r < t; ++r) {
    const KvView kv = row_view(layer, rows[r]);
    for (int64_t h = 0; h < kv.kv_heads; ++h) {
      store_cache_row(kv.dtype, src.data() + (h * t + r) * hd, hd, kv.row(base, h, rows[r].pos));
    }
  }
}

struct HostMemory final : DeviceMemory::Storage {
  explicit HostMemory(size_t bytes) : buffer(bytes) {}
  AlignedBuffer buffer;
};

}  // namespace

CpuDevice::CpuDevice(int threads, const cpu::MicroKernels* kernels)
    : pool_(threads > 0 ? threads : std::max(1u, std::thread::hardware_concurrency())),
      kernels_(kernels ? *kernels : cpu::best_kernels()),
      scratch_(pool_.size()) {}

std::string CpuDevice::name() const {
  return "cpu (" + std::to_string(pool_.size()) + " threads, " + kernels_.name + " kernels)";
}

float* CpuDevice::thread_scratch(int thread, size_t floats) {
  if (scratch_[thread].bytes() < floats * sizeof(float)) {
    scratch_[thread] = AlignedBuffer(floats * sizeof(float));
  }
  return scratch_[thread].as<float>();
}

void CpuDevice::for_rows(int64_t rows, int64_t work_per_row,
                         const std::function<void(int64_t, int)>& fn) {
  if (rows > 1 && rows * work_per_row >= 16384) {
    pool_.parallel_for(rows, fn);
  } else {
    for (int64_t r = 0; r < rows; ++r) fn(r, 0);
  }
}

DeviceMemory CpuDevice::allocate(size_t bytes) {
  auto mem = std::make_unique<HostMemory>(bytes);
  void* data = mem->buffer.as<void>();
  return DeviceMemory(std::move(mem), data, bytes);
}

size_t CpuDevice::available_memory() const {
  std::ifstream in("/proc/meminfo");
  for (std::string line; std::getline(in, line);) {
    if (line.rfind("MemAvailable:", 0) == 0) return std::stoull(line.substr(13)) * 1024;
  }
  return 0;
}

void CpuDevice::write(Tensor& t, std::span<const float> host) {
  std::memcpy(t.data(), host.data(), static_cast<size_t>(t.numel()) * sizeof(float));
}

void CpuDevice::read(const Tensor& t, std::span<float> host) {
  std::memcpy(host.data(), t.data(), static_cast<size_t>(t.numel()) * sizeof(float));
}

size_t CpuDevice::workspace_bytes(const StepShape& s) const {
  const size_t threads = static_cast<size_t>(pool_.size());
  const int64_t group = s.kv_heads > 0 ? s.q_heads / s.kv_heads : 0;
  // Attention: per thread one chunk of scores and of K and V rows as fp32, and the partial
  // softmaxes of one pass's chunks (at least one row's, at the longest sequence).
  const int64_t chunks = std::max(kPassChunks, (s.max_seq_len + kDecodeChunk - 1) / kDecodeChunk);
  const size_t scratch = threads * static_cast<size_t>((group + 2 * s.head_dim) * kDecodeChunk) * 4;
  const size_t partials = static_cast<size_t>(s.kv_heads * chunks * group * (s.head_dim + 2)) * 4;
  return cpu::matmul_workspace_bytes(pool_.size(), s.rows, s.max_inputs, s.block_float) + scratch +
         partials;
}

namespace {

// A Weight over packed storage: its shape and bytes as the kernels hold them.
Weight as_weight(cpu::PackedWeight p) {
  Weight w;
  w.format = p.format;
  w.cols = p.k;
  for (int32_t n : p.count) w.rows += n;
  w.bytes = p.values.bytes() + p.exps.bytes() + p.scales.bytes() + p.subscales.bytes();
  w.storage = std::make_unique<CpuWeight>(std::move(p));
  return w;
}

}  // namespace

Weight CpuDevice::upload_weight(std::span<const HostMatrix> parts, WeightFormat format) {
  return as_weight(cpu::pack_weight(pool_, parts, format));
}

// Version 1: packed_weight.h's layouts with groups of 16. Bump it whenever pack.cpp's layout
// changes, so that caches written by older builds are rebuilt rather than misread.
std::string CpuDevice::weight_layout() const {
  return "cpu-packed-v1-group" + std::to_string(cpu::kGroup);
}

// The layout: format, K, groups, then each group's first column and its count.
WeightImage CpuDevice::weight_image(const Weight& w) const {
  const cpu::PackedWeight& p = packed(w);
  WeightImage image;
  image.layout = {static_cast<int64_t>(p.format), p.k, p.groups};
  image.layout.insert(image.layout.end(), p.col0.begin(), p.col0.end());
  image.layout.insert(image.layout.end(), p.count.begin(), p.count.end());
  for (const AlignedBuffer* b : {&p.values, &p.exps, &p.scales, &p.subscales}) {
    image.buffers.emplace_back(b->as<std::byte>(), b->bytes());
  }
  return image;
}

Weight CpuDevice::adopt_weight(std::span<const int64_t> layout,
                               std::span<const std::span<const std::byte>> buffers,
                               std::shared_ptr<const void> owner) {
  auto bad = [](const std::string& why) { return Error("weight layout: " + why); };
  if (layout.size() < 3) throw bad("too short");
  const int64_t format = layout[0], k = layout[1], groups = layout[2];
  if (format < 0 || format > static_cast<int64_t>(WeightFormat::kQ6_K)) throw bad("no such format");
  if (k <= 0 || k > (int64_t{1} << 24)) throw bad("input features out of range");
  if (groups <= 0 || groups > (int64_t{1} << 24)) throw bad("groups out of range");
  if (static_cast<int64_t>(layout.size()) != 3 + 2 * groups) throw bad("wrong length");
  cpu::PackedWeight p;
  p.format = static_cast<WeightFormat>(format);
  p.k = k;
  p.k_pad = (k + 1) / 2 * 2;
  p.groups = groups;
  for (int64_t g = 0; g < groups; ++g) {
    const int64_t col0 = layout[3 + g], count = layout[3 + groups + g];
    const int64_t expected = g == 0 ? 0 : p.col0.back() + p.count.back();
    if (col0 != expected || count < 1 || count > cpu::kGroup) throw bad("groups out of order");
    p.col0.push_back(col0);
    p.count.push_back(static_cast<int32_t>(count));
  }
  const cpu::PackedSize size = cpu::packed_size(p.format, groups, k);
  const size_t sizes[] = {size.values, size.exps, size.scales, size.subscales};
  AlignedBuffer* dst[] = {&p.values, &p.exps, &p.scales, &p.subscales};
  if (buffers.size() != std::size(sizes)) throw bad("wrong number of buffers");
  for (size_t b = 0; b < buffers.size(); ++b) {
    if (buffers[b].size() != sizes[b]) throw bad("a buffer of the wrong size");
    if (owner) {
      *dst[b] = AlignedBuffer::view(buffers[b].data(), buffers[b].size(), owner);
      continue;
    }
    // Copied in 2 MiB pieces on every thread: first touch of fresh pages (the kernel zeroes
    // them) costs more than the copy, and both scale with threads.
    *dst[b] = AlignedBuffer(sizes[b], AlignedBuffer::Pages::kHuge);
    constexpr size_t kPiece = size_t{2} << 20;
    const size_t pieces = (sizes[b] + kPiece - 1) / kPiece;
    std::byte* to = dst[b]->as<std::byte>();
    const std::byte* from = buffers[b].data();
    pool_.parallel_for(static_cast<int64_t>(pieces), [&](int64_t i, int) {
      const size_t at = static_cast<size_t>(i) * kPiece;
      std::memcpy(to + at, from + at, std::min(kPiece, sizes[b] - at));
    });
  }
  return as_weight(std::move(p));
}

void CpuDevice::embedding(const Weight& table, std::span<const int32_t> ids, Tensor& out) {
  for_rows(static_cast<int64_t>(ids.size()), table.cols,
           [&](int64_t r, int) { cpu::unpack_row(packed(table), ids[r], out.row(r)); });
}

void CpuDevice::linear(const Tensor& x, const Weight& w, const Tensor* bias, Tensor& out) {
  cpu::matmul(pool_, matmul_scratch_, kernels_, x.data(), x.dim(0), packed(w),
              bias ? bias->data() : nullptr, out.data());
}

void CpuDevice::rms_norm(const Tensor& x, const Tensor& weight, float eps, Tensor& out) {
  const int64_t n = x.dim(-1);
  for_rows(x.numel() / n, n, [&](int64_t r, int) {
    cpu::rms_norm_row(x.data() + r * n, weight.data(), n, eps, out.data() + r * n);
  });
}

void CpuDevice::rope_tables(std::span<const float> inv_freq, std::span<const int64_t> positions,
                            Tensor& cos, Tensor& sin, float attention_factor) {
  const int64_t half = cos.dim(1);
  const bool per_row = static_cast<int64_t>(inv_freq.size()) != half;
  for (size_t r = 0; r < positions.size(); ++r) {
    const float pos = static_cast<float>(positions[r]);
    const float* f = inv_freq.data() + (per_row ? static_cast<int64_t>(r) * half : 0);
    float* c = cos.row(static_cast<int64_t>(r));
    float* s = sin.row(static_cast<int64_t>(r));
    for (int64_t i = 0; i < half; ++i) {
      const float angle = pos * f[i];  // rounded to fp32 as in the reference
      c[i] = static_cast<float>(std::cos(static_cast<double>(angle)));
      s[i] = static_cast<float>(std::sin(static_cast<double>(angle)));
      if (attention_factor != 1.0f) {  // then rounded again, as the reference scales its tables
        c[i] *= attention_factor;
        s[i] *= attention_factor;
      }
    }
  }
}

void CpuDevice::rotary_embedding(Tensor& x, const Tensor& cos, const Tensor& sin) {
  const int64_t t = x.dim(1), hd = x.dim(2);
  for_rows(x.dim(0) * t, hd, [&](int64_t r, int) {
    cpu::rope_row(x.data() + r * hd, cos.row(r % t), sin.row(r % t), hd / 2);
  });
}

void CpuDevice::create_qkv_heads(const Tensor& qkv, Tensor& q, Tensor& k, Tensor& v) {
  const int64_t t = qkv.dim(0), hd = q.dim(2), nq = q.dim(0), nkv = k.dim(0);
  for (int64_t r = 0; r < t; ++r) {
    const float* src = qkv.row(r);
    for (int64_t h = 0; h < nq; ++h) std::memcpy(q.data() + (h * t + r) * hd, src + h * hd, hd * 4);
    src += nq * hd;
    for (int64_t h = 0; h < nkv; ++h)
      std::memcpy(k.data() + (h * t + r) * hd, src + h * hd, hd * 4);
    src += nkv * hd;
    for (int64_t h = 0; h < nkv; ++h)
      std::memcpy(v.data() + (h * t + r) * hd, src + h * hd, hd * 4);
  }
}

void CpuDevice::concat_heads(const Tensor& heads, Tensor& out) {
  const int64_t nh = heads.dim(0), t = heads.dim(1), hd = heads.dim(2);
  for (int64_t r = 0; r < t; ++r) {
    for (int64_t h = 0; h < nh; ++h) {
      std::memcpy(out.row(r) + h * hd, heads.data() + (h * t + r) * hd, hd * 4);
    }
  }
}

// Every row attends in chunks of kDecodeChunk positions counted from position 0, one task per
// (row, KV head, chunk), and the chunks' partial softmaxes are merged in order: the same
// arithmetic for a row whether it is a decode token or one of many prompt rows, wherever its
// prompt was split into steps and whatever else is in the step. A row with a sliding window skips
// the chunks before its first position and starts the first one it needs there.
void CpuDevice::paged_scaled_dot_product_attention(const Tensor& q, const KvView& layer,
                                                   std::span<const KvRow> rows, float scale,
                                                   Tensor& out) {
  const int64_t t = q.dim(1);
  for (int64_t r0 = 0; r0 < t;) {  // passes of about kPassChunks chunks, at least one row each
    int64_t r1 = r0 + 1, chunks = chunks_of(rows[r0]);
    while (r1 < t && chunks + chunks_of(rows[r1]) <= kPassChunks) chunks += chunks_of(rows[r1++]);
    attention_pass(q, layer, rows, r0, r1, scale, out);
    r0 = r1;
  }
}

// Rows [r0, r1) of a step: one task per (KV head, unit), then the merge of each row's chunks. A
// unit is one row over one chunk, or up to kShareRows consecutive rows of one sequence (a prompt's)
// over one chunk, whose K and V rows are then widened to fp32 once for all of them. Either way each
// row gets the same arithmetic (attend_range and attend_expanded agree to the bit).
void CpuDevice::attention_pass(const Tensor& q, const KvView& layer, std::span<const KvRow> rows,
                               int64_t r0, int64_t r1, float scale, Tensor& out) {
  const int64_t t = q.dim(1), hd = q.dim(2), heads = layer.kv_heads, group = q.dim(0) / heads;
  const int64_t n = r1 - r0;
  chunk_start_.assign(n + 1, 0);
  for (int64_t i = 0; i < n; ++i) chunk_start_[i + 1] = chunk_start_[i] + chunks_of(rows[r0 + i]);
  const int64_t chunks = chunk_start_[n];
  units_.clear();
  for (int64_t i0 = 0; i0 < n;) {
    const KvRow& a = rows[r0 + i0];
    int64_t i1 = i0 + 1, last = a.pos;
    while (i1 < n && i1 - i0 < kShareRows && rows[r0 + i1].block_table == a.block_table &&
           rows[r0 + i1].first == a.first) {
      last = std::max(last, rows[r0 + i1++].pos);
    }
    for (int64_t c = a.first / kDecodeChunk; c <= last / kDecodeChunk; ++c) {
      units_.push_back({i0, i1, c});
    }
    i0 = i1;
  }
  const int64_t units = static_cast<int64_t>(units_.size());
  // Per (KV head, chunk): group * (out[hd], max, sum).
  const int64_t stride = group * (hd + 2);
  const size_t need = static_cast<size_t>(heads * chunks * stride) * sizeof(float);
  if (partials_.bytes() < need) partials_ = AlignedBuffer(need);
  float* partials = partials_.as<float>();
  pool_.parallel_for(heads * units, [&](int64_t task, int thread) {
    const int64_t h = task / units;
    const AttentionUnit& u = units_[task % units];
    const KvView kv = row_view(layer, rows[r0 + u.i0]);
    const int64_t begin = std::max(u.c * kDecodeChunk, rows[r0 + u.i0].first);
    const int64_t chunk_end = (u.c + 1) * kDecodeChunk;
    const float* qs[64];
    std::vector<const float*> many;
    const float** qp = qs;
    if (group > 64) {
      many.resize(group);
      qp = many.data();
    }
    // Row i's query heads and where its partial softmax for this chunk goes.
    const auto row_of = [&](int64_t i) {
      for (int64_t j = 0; j < group; ++j) qp[j] = q.data() + ((h * group + j) * t + r0 + i) * hd;
      const int64_t ci = chunk_start_[i] + u.c - rows[r0 + i].first / kDecodeChunk;
      return partials + (h * chunks + ci) * stride;
    };
    if (u.i1 - u.i0 == 1) {
      const int64_t end = std::min(rows[r0 + u.i0].pos + 1, chunk_end);
      float* scratch = thread_scratch(thread, (group + hd) * (end - begin));
      float* p = row_of(u.i0);
      cpu::attend_range(static_cast<int>(group), qp, kv, h, begin, end, scale, scratch, p,
                        p + group * hd, p + group * hd + group);
      return;
    }
    int64_t end = begin;
    for (int64_t i = u.i0; i < u.i1; ++i) {
      if (rows[r0 + i].pos >= begin) end = std::max(end, std::min(rows[r0 + i].pos + 1, chunk_end));
    }
    float* scores = thread_scratch(thread, (group + 2 * hd) * kDecodeChunk);
    float* kbuf = scores + group * kDecodeChunk;
    float* vbuf = kbuf + hd * kDecodeChunk;
    cpu::expand_range(kv, h, begin, end, kbuf, vbuf);
    for (int64_t i = u.i0; i < u.i1; ++i) {
      if (rows[r0 + i].pos < begin) continue;  // this row ends before the chunk
      const int64_t len = std::min(rows[r0 + i].pos + 1, chunk_end) - begin;
      float* p = row_of(i);
      cpu::attend_expanded(static_cast<int>(group), qp, kbuf, vbuf, hd, len, scale, scores, p,
                           p + group * hd, p + group * hd + group);
    }
  });
  // Merge each row's chunks (log-sum-exp), in chunk order.
  for_rows(n * heads, group * hd * 4, [&](int64_t task, int) {
    const int64_t i = task / heads, h = task % heads, r = r0 + i;
    const int64_t c0 = chunk_start_[i], c1 = chunk_start_[i + 1];
    for (int64_t j = 0; j < group; ++j) {
      float m = -INFINITY;
      for (int64_t c = c0; c < c1; ++c) {
        m = std::max(m, partials[(h * chunks + c) * stride + group * hd + j]);
      }
      float* dst = out.data() + ((h * group + j) * t + r) * hd;
      std::fill(dst, dst + hd, 0.0f);
      float total = 0;
      for (int64_t c = c0; c < c1; ++c) {
        const float* p = partials + (h * chunks + c) * stride;
        const float w = std::exp(p[group * hd + j] - m);
        total += p[group * hd + group + j] * w;
        for (int64_t k = 0; k < hd; ++k) dst[k] += p[j * hd + k] * w;
      }
      const float inv = 1.0f / total;
      for (int64_t k = 0; k < hd; ++k) dst[k] *= inv;
    }
  });
}

void CpuDevice::paged_update_cache(const KvView& layer, std::span<const KvRow> rows,
                                   const Tensor& k, const Tensor& v) {
  write_cache_rows(layer, rows, layer.k, k);
  write_cache_rows(layer, rows, layer.v, v);
}

void CpuDevice::copy_cache_block(const KvView& layer, int32_t from, int32_t to) {
  const size_t bytes = static_cast<size_t>(layer.block_bytes());
  for (void* base : {layer.k, layer.v}) {
    std::byte* b = static_cast<std::byte*>(base);
    std::memcpy(b + to * bytes, b + from * bytes, bytes);
  }
}

void CpuDevice::gather_rows(const Tensor& x, std::span<const int64_t> rows, Tensor& out) {
  const int64_t n = x.dim(1);
  for (size_t i = 0; i < rows.size(); ++i) {
    std::memcpy(out.row(static_cast<int64_t>(i)), x.row(rows[i]), static_cast<size_t>(n) * 4);
  }
}

void CpuDevice::silu_mul(const Tensor& gate_up, Tensor& out) {
  const int64_t n = out.dim(1);
  for_rows(out.dim(0), n, [&](int64_t r, int) {
    cpu::silu_mul_row(gate_up.row(r), gate_up.row(r) + n, n, out.row(r));
  });
}

void CpuDevice::add(const Tensor& a, const Tensor& b, Tensor& out) {
  const int64_t n = a.dim(-1);
  for_rows(a.numel() / n, n, [&](int64_t r, int) {
    cpu::add_row(a.data() + r * n, b.data() + r * n, n, out.data() + r * n);
  });
}

std::string device_name(const Device& device) {
  return device.name();
}

int device_threads(const Device& device) {
  return device.threads();
}

std::shared_ptr<Device> make_cpu_device(int threads) {
  return std::make_shared<CpuDevice>(threads);
}

}  // namespace bringup
