// From runtime tile sizes to the compile-time ones the micro-kernels are instantiated for:
// fn.template operator()<rows, groups>(first_row) for each pass of at most MaxRows rows.
// Header-only and free of library calls, so that it is safe in the AVX-512 translation unit
// (instantiated there only with that file's own lambdas).
#pragma once

#include <utility>

namespace bringup::cpu {

template <int MaxRows, class Fn>
inline void dispatch_tile(int rows, int groups, Fn&& fn) {
  for (int m0 = 0; m0 < rows; m0 += MaxRows) {
    const int r = rows - m0 < MaxRows ? rows - m0 : MaxRows;
    [&]<int... R>(std::integer_sequence<int, R...>) {
      (void)((r == R + 1 && (groups == 2 ? (fn.template operator()<R + 1, 2>(m0), true)
                                         : (fn.template operator()<R + 1, 1>(m0), true))) ||
             ...);
    }
    (std::make_integer_sequence<int, MaxRows>{});
  }
}

}  // namespace bringup::cpu
