// The blocking around the micro-kernels. Work is split over panels of kTileGroups groups (32
// output features), so each output is computed by one thread in a fixed order and results do not
// depend on the thread count; for few rows, threads take runs of consecutive panels. Within a
// panel, inputs are taken kBlockK at a time so the panel's weights for that block stay in L1 while
// every row tile passes over them. A row's result depends on its own inputs alone, whatever the
// number of rows (the kernels' contract, microkernels.h), so a sequence's logits do not change with
// what else shares its batch.
#include "kernels/cpu/matmul.h"

#include <algorithm>
#include <cstring>

#include "core/dtype.h"

namespace bringup::cpu {

namespace {

// Inputs per block: even, so bf16 pairs never split, and whole Q4_K super-blocks (256).
constexpr int64_t kBlockK = 512;
static_assert(kBlockK % kQ4KBlock == 0 && kBlockK % kQ8Block == 0);
// Few rows: panels are handed out in runs of consecutive ones, so that a thread mostly knows which
// panel comes next. Each run takes 1 / (kRunShare x threads) of the panels left, so runs shrink
// towards the end and threads that a neighbour slows still finish together.
constexpr int64_t kRunShare = 4;
// Lines of each group of the next panel brought in while a panel's last block runs (few rows).
constexpr int kNextPanelLines = 8;

void ensure(AlignedBuffer& b, size_t bytes) {
  if (b.bytes() < bytes) b = AlignedBuffer(bytes);
}

}  // namespace

size_t matmul_workspace_bytes(int threads, int64_t m, int64_t k, bool block_float) {
  const size_t kp = static_cast<size_t>((k + 1) / 2 * 2);
  const size_t activations = static_cast<size_t>(m) * kp * 2;
  const size_t acc = static_cast<size_t>(m * kAccStride) * 4;
  const size_t panel = block_float ? static_cast<size_t>(kTileGroups * kBlockK * kGroup) * 2 : 0;
  return activations + static_cast<size_t>(threads) * (acc + panel);
}

void matmul(ThreadPool& pool, MatmulScratch& s, const MicroKernels& mk, const float* x, int64_t m,
            const PackedWeight& w, const float* bias, float* out) {
  const int64_t k = w.k, kp = w.k_pad;
  const int64_t n = w.col0.empty() ? 0 : w.col0.back() + w.count.back();
  const bool q8_0 = w.format == WeightFormat::kQ8_0, q4_k = w.format == WeightFormat::kQ4_K;
  const bool q6_k = w.format == WeightFormat::kQ6_K;
  const bool f32 = w.format == WeightFormat::kF32 || q8_0 || q4_k || q6_k;  // fp32 activations
  const bool bfp = w.format == WeightFormat::kBfp8 || w.format == WeightFormat::kBfp4;

  // Activations in the form the kernels read: fp32 rounded to bf16 pairs (a hardware bf16 dot
  // product rounds its inputs the same way), or fp32 unchanged under the fp32 policy and for
  // ggml's block types.
  const uint16_t* a16 = nullptr;
  bool in_window = true;  // every non-zero activation within the direct block-float kernel's range
  if (!f32) {
    ensure(s.activations, static_cast<size_t>(m * kp) * 2);
    uint16_t* dst = s.activations.as<uint16_t>();
    auto convert_row = [&](int64_t r, int) {
      for (int64_t i = 0; i < k; ++i) dst[r * kp + i] = f32_to_bf16(x[r * k + i]);
      if (kp > k) dst[r * kp + k] = 0;
    };
    if (m >= 16) {
      pool.parallel_for(m, convert_row);
    } else {
      for (int64_t r = 0; r < m; ++r) convert_row(r, 0);
    }
    a16 = dst;
    if (bfp && mk.bfp && m <= mk.bfp_direct_rows) {
      for (int64_t i = 0; i < m * kp && in_window; ++i) {
        const int e = (dst[i] >> 7) & 0xFF;
        in_window =
            (dst[i] & 0x7FFF) == 0 || (e >= kBfpActivationExpLo && e <= kBfpActivationExpHi);
      }
    }
  }
  // Few rows (as many as the set says) use block-float weights directly; activations outside the
  // direct kernel's range (never seen in practice) take the decoded path, which gives the same
  // bits.
  const bool bfp_direct = bfp && mk.bfp && m <= mk.bfp_direct_rows && in_window;
  // Inputs a kernel call takes: kBlockK, or all of k where the set asks for it (few rows of bf16
  // or direct block float: one row tile, nothing to keep in L1 for the next).
  const int64_t block_k =
      m <= mk.whole_k_rows && ((!f32 && !bfp) || bfp_direct) ? std::max<int64_t>(k, 1) : kBlockK;

  const int64_t tile_rows = mk.tile_rows;
  const int threads = pool.size();
  s.acc.resize(threads);
  s.panel.resize(threads);
  const int64_t panels = (w.groups + kTileGroups - 1) / kTileGroups;
  // Panel p, on thread t; `then` is the panel the thread takes next, or -1 when unknown.
  auto run_panel = [&](int64_t p, int64_t then, int t) {
    const int64_t g0 = p * kTileGroups;
    const int ng = static_cast<int>(std::min<int64_t>(kTileGroups, w.groups - g0));
    ensure(s.acc[t], static_cast<size_t>(m * kAccStride) * 4);
    float* acc = s.acc[t].as<float>();
    std::memset(acc, 0, static_cast<size_t>(m * kAccStride) * 4);
    if (bfp) ensure(s.panel[t], static_cast<size_t>(kTileGroups * kBlockK * kGroup) * 2);
    // Block k0 of the panel's block-float groups decoded to bf16 (s.panel), into b16.
    auto decode_block = [&](int64_t k0, int64_t kn, const uint16_t** b16) {
      for (int g = 0; g < ng; ++g) {
        uint16_t* dst = s.panel[t].as<uint16_t>() + g * kBlockK * kGroup;
        mk.bfp_to_bf16(w.code_group(g0 + g) + k0 * kGroup, w.exp_group(g0 + g) + k0, kn,
                       w.exponent_bias(), dst);
        b16[g] = dst;
      }
    };

    for (int64_t k0 = 0; k0 < k; k0 += block_k) {
      const int64_t kn = std::min(block_k, k - k0);
      const float* b32[kTileGroups] = {};
      const uint16_t* b16[kTileGroups] = {};
      // Many rows: the first row tile decodes the block into the panel (below), or if that
      // kernel declines it, BfpToBf16 before it; every later row tile reads the panel.
      bool decoded = false;
      if (bfp && !bfp_direct) {
        for (int g = 0; g < ng; ++g) b16[g] = s.panel[t].as<uint16_t>() + g * kBlockK * kGroup;
      } else if (f32 && !q8_0 && !q4_k && !q6_k) {
        for (int g = 0; g < ng; ++g) b32[g] = w.f32_group(g0 + g) + k0 * kGroup;
      } else if (!f32 && !bfp) {
        for (int g = 0; g < ng; ++g) b16[g] = w.bf16_group(g0 + g) + k0 * kGroup;
      }  // ggml's block types and the direct block-float kernel read the weights below
      // The next block of this panel's weights, brought towards the cache while this block's row
      // tiles run: each tile takes an even share, so memory streams through all of them, not only
      // through the first (which reads this block from memory). Not across panels: the pool hands
      // panels out as threads come free, so the next panel's owner is not known here.
      Ahead next;
      const int64_t k1 = k0 + block_k;
      const bool streamed = (bfp && !bfp_direct) || (!f32 && !bfp);
      if (streamed && k1 < k && m > tile_rows / 2) {
        const int64_t kn1 = std::min(block_k, k - k1);
        for (int g = 0; g < ng; ++g) {
          next.at[g] = bfp ? reinterpret_cast<const char*>(w.code_group(g0 + g) + k1 * kGroup)
                           : reinterpret_cast<const char*>(w.bf16_group(g0 + g) + k1 * kGroup);
        }
        next.bytes = (bfp ? kn1 : (kn1 + 1) / 2 * 2 * 2) * kGroup;
      }
      // Few rows stream the weights in the kernels' own loops, and each panel would start cold:
      // its weights lie elsewhere and its first lines would wait the full latency of memory. So
      // while the last block runs, the next panel's first lines come in (docs/kernels.md: decode
      // of one sequence 12-19% faster).
      if (then >= 0 && k1 >= k && !f32) {
        for (int64_t g = then * kTileGroups; g < std::min(w.groups, (then + 1) * kTileGroups);
             ++g) {
          const char* at = bfp ? reinterpret_cast<const char*>(w.code_group(g))
                               : reinterpret_cast<const char*>(w.bf16_group(g));
          for (int l = 0; l < kNextPanelLines; ++l) __builtin_prefetch(at + l * 64, 0, 3);
          if (bfp) __builtin_prefetch(w.exp_group(g), 0, 3);
        }
      }
      const int64_t row_tiles = (m + tile_rows - 1) / tile_rows;
      for (int64_t r0 = 0; r0 < m; r0 += tile_rows) {
        const int rows = static_cast<int>(std::min<int64_t>(tile_rows, m - r0));
        float* c = acc + r0 * kAccStride;
        const Ahead ahead = share(next, r0 / tile_rows, row_tiles);
        if (q8_0) {
          const int8_t* codes[kTileGroups];
          const uint16_t* scales[kTileGroups];
          for (int g = 0; g < ng; ++g) {
            codes[g] = w.code_group(g0 + g) + k0 * kGroup;
            scales[g] = w.q8_0_scales(g0 + g) + (k0 / kQ8Block) * kGroup;
          }
          mk.q8_0(rows, ng, x + r0 * k + k0, k, codes, scales, kn, c);
        } else if (q4_k) {
          const uint8_t* codes[kTileGroups];
          const uint16_t* scales[kTileGroups];
          const uint8_t* subs[kTileGroups];
          for (int g = 0; g < ng; ++g) {
            codes[g] = w.q4_k_codes(g0 + g) + (k0 / 2) * kGroup;
            scales[g] = w.q4_k_scales(g0 + g) + (k0 / kQ4KBlock) * 2 * kGroup;
            subs[g] = w.q4_k_subscales(g0 + g) + (k0 / kQ8Block) * 2 * kGroup;
          }
          mk.q4_k(rows, ng, x + r0 * k + k0, k, codes, scales, subs, kn, c);
        } else if (q6_k) {
          const int8_t* codes[kTileGroups];
          const uint16_t* scales[kTileGroups];
          const int8_t* subs[kTileGroups];
          for (int g = 0; g < ng; ++g) {
            codes[g] = w.code_group(g0 + g) + k0 * kGroup;
            scales[g] = w.q6_k_scales(g0 + g) + (k0 / kQ4KBlock) * kGroup;
            subs[g] = w.q6_k_subscales(g0 + g) + (k0 / kQ6KSubBlock) * kGroup;
          }
          mk.q6_k(rows, ng, x + r0 * k + k0, k, codes, scales, subs, kn, c);
        } else if (f32) {
          mk.f32(rows, ng, x + r0 * k + k0, k, b32, kn, c);
        } else if (bfp_direct) {
          const int8_t* codes[kTileGroups];
          const uint8_t* exps[kTileGroups];
          for (int g = 0; g < ng; ++g) {
            codes[g] = w.code_group(g0 + g) + k0 * kGroup;
            exps[g] = w.exp_group(g0 + g) + k0;
          }
          if (!mk.bfp(rows, ng, a16 + r0 * kp + k0, kp, codes, exps, kn, w.exponent_bias(), c)) {
            // Exponents outside the direct kernel's range (or a call it declines): decoded a
            // panel's block at a time.
            for (int64_t kb = k0; kb < k0 + kn; kb += kBlockK) {
              const int64_t knb = std::min(kBlockK, k0 + kn - kb);
              decode_block(kb, knb, b16);
              mk.bf16(rows, ng, a16 + r0 * kp + kb, kp, b16, (knb + 1) / 2, c, ahead);
            }
          }
        } else if (bfp && !decoded) {
          const int8_t* codes[kTileGroups];
          const uint8_t* exps[kTileGroups];
          uint16_t* panel[kTileGroups];
          for (int g = 0; g < ng; ++g) {
            codes[g] = w.code_group(g0 + g) + k0 * kGroup;
            exps[g] = w.exp_group(g0 + g) + k0;
            panel[g] = s.panel[t].as<uint16_t>() + g * kBlockK * kGroup;
          }
          decoded = true;
          if (!mk.bfp_decoding(rows, ng, a16 + r0 * kp + k0, kp, codes, exps, kn, w.exponent_bias(),
                               panel, c, ahead)) {
            decode_block(k0, kn, b16);  // exponents this kernel leaves to BfpToBf16
            mk.bf16(rows, ng, a16 + r0 * kp + k0, kp, b16, (kn + 1) / 2, c, ahead);
          }
        } else {
          mk.bf16(rows, ng, a16 + r0 * kp + k0, kp, b16, (kn + 1) / 2, c, ahead);
        }
      }
    }

    for (int g = 0; g < ng; ++g) {
      const int64_t col0 = w.col0[g0 + g];
      const int count = w.count[g0 + g];
      for (int64_t r = 0; r < m; ++r) {
        const float* c = acc + r * kAccStride + g * kGroup;
        float* o = out + r * n + col0;
        if (bias) {
          for (int l = 0; l < count; ++l) o[l] = c[l] + bias[col0 + l];
        } else {
          std::memcpy(o, c, static_cast<size_t>(count) * 4);
        }
      }
    }
  };
  // Many rows take one panel at a time, as they come: runs were no faster at 16 rows
  // (docs/kernels.md).
  if (m > mk.bfp_direct_rows) {
    pool.parallel_for(panels, [&](int64_t p, int t) { run_panel(p, -1, t); });
    return;
  }
  s.runs.assign(1, 0);
  while (s.runs.back() < panels) {
    const int64_t left = panels - s.runs.back();
    s.runs.push_back(s.runs.back() + std::max<int64_t>(1, left / (kRunShare * threads)));
  }
  pool.parallel_for(static_cast<int64_t>(s.runs.size()) - 1, [&](int64_t r, int t) {
    const int64_t end = s.runs[r + 1];
    for (int64_t p = s.runs[r]; p < end; ++p) run_panel(p, p + 1 < end ? p + 1 : -1, t);
  });
}

}  // namespace bringup::cpu
