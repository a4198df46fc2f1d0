// The load-time conversions of convert.h, written once with Highway and compiled for every SIMD
// target it knows; the best one for this CPU is picked at run time.
#undef HWY_TARGET_INCLUDE
#define HWY_TARGET_INCLUDE "kernels/cpu/convert.cpp"
#include "hwy/foreach_target.h"  // IWYU pragma: keep
// foreach_target.h must come first.
#include "hwy/highway.h"

#include "kernels/cpu/convert.h"

HWY_BEFORE_NAMESPACE();
namespace bringup::cpu::HWY_NAMESPACE {
namespace hn = hwy::HWY_NAMESPACE;

// At most one block per vector: a block is 16 lanes, taken as 16 / N vectors of N lanes.
using DU = hn::CappedTag<uint32_t, 16>;

// The scalar encoder's steps on every lane at once: the block's largest exponent among its
// nonzero values, each mantissa (hidden one included) shifted down to it, rounded to nearest even
// at mantissa_bits + 1 bits, clamped, and signed.
void EncodeBfpBlocks(const float* values, int64_t blocks, int mantissa_bits, int8_t* codes,
                     uint8_t* exps) {
  const DU du;
  const hn::RebindToSigned<DU> di;
  const hn::Rebind<int8_t, DU> d8;
  const size_t n = hn::Lanes(du);
  const size_t vecs = 16 / n;
  const uint32_t drop = 24u - static_cast<uint32_t>(mantissa_bits);
  const auto abs_mask = hn::Set(du, 0x7fffffffu);
  const auto exp_mask = hn::Set(du, 0xffu);
  const auto hidden = hn::Set(du, 1u << 23);
  const auto frac_mask = hn::Set(du, 0x7fffffu);
  const auto rest_mask = hn::Set(du, (1u << drop) - 1);
  const auto half = hn::Set(du, 1u << (drop - 1));
  const auto one = hn::Set(du, 1u);
  const auto max_mag = hn::Set(du, (1u << mantissa_bits) - 1);
  const auto k31 = hn::Set(du, 31u);
  for (int64_t b = 0; b < blocks; ++b) {
    const uint32_t* in = reinterpret_cast<const uint32_t*>(values + b * 16);
    auto shared = hn::Zero(du);
    for (size_t v = 0; v < vecs; ++v) {
      const auto u = hn::LoadU(du, in + v * n);
      const auto nonzero = hn::Ne(hn::And(u, abs_mask), hn::Zero(du));
      shared =
          hn::Max(shared, hn::IfThenElseZero(nonzero, hn::And(hn::ShiftRight<23>(u), exp_mask)));
    }
    const uint32_t s = hn::GetLane(hn::MaxOfLanes(du, shared));
    exps[b] = static_cast<uint8_t>(s);
    const auto sv = hn::Set(du, s);
    for (size_t v = 0; v < vecs; ++v) {  // the block's values again, from L1
      const auto u = hn::LoadU(du, in + v * n);
      const auto e = hn::And(hn::ShiftRight<23>(u), exp_mask);
      const auto shift = hn::Sub(sv, e);  // zeros give garbage here, masked below
      const auto m = hn::Or(hidden, hn::And(u, frac_mask));
      // A shift of 32 or more leaves nothing (and is undefined for some targets).
      const auto shifted = hn::IfThenZeroElse(hn::Gt(shift, k31), hn::Shr(m, hn::Min(shift, k31)));
      auto mag = hn::ShiftRightSame(shifted, static_cast<int>(drop));
      const auto rest = hn::And(shifted, rest_mask);
      const auto up =
          hn::Or(hn::Gt(rest, half), hn::And(hn::Eq(rest, half), hn::Eq(hn::And(mag, one), one)));
      mag = hn::Min(hn::Add(mag, hn::IfThenElseZero(up, one)), max_mag);
      const auto zero = hn::Eq(hn::And(u, abs_mask), hn::Zero(du));
      mag = hn::IfThenZeroElse(zero, mag);
      const auto negative = hn::RebindMask(di, hn::Ne(hn::ShiftRight<31>(u), hn::Zero(du)));
      const auto signed_mag = hn::BitCast(di, mag);
      const auto code = hn::IfThenElse(negative, hn::Neg(signed_mag), signed_mag);
      hn::StoreU(hn::DemoteTo(d8, code), d8, codes + b * 16 + v * n);
    }
  }
}

}  // namespace bringup::cpu::HWY_NAMESPACE
HWY_AFTER_NAMESPACE();

#if HWY_ONCE
namespace bringup::cpu {

HWY_EXPORT(EncodeBfpBlocks);

void encode_bfp_blocks(const float* values, int64_t blocks, int mantissa_bits, int8_t* codes,
                       uint8_t* exps) {
  HWY_DYNAMIC_DISPATCH(EncodeBfpBlocks)(values, blocks, mantissa_bits, codes, exps);
}

}  // namespace bringup::cpu
#endif
