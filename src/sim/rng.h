// Rng: the simulator's only source of randomness — xoshiro256** seeded
// through splitmix64 from the run's 64-bit seed. Never std::random_device,
// never a clock: the same seed yields the same stream on every machine
// (DESIGN invariant 7). Distributions are written here rather than taken from
// <random>, whose distributions are not specified bit-for-bit across library
// versions.
//
// Threading: one Rng per run, used by the single simulator thread.
#pragma once

#include <cstdint>

#include "base/check.h"

namespace raftkv::sim {

__extension__ typedef unsigned __int128 Uint128;  // -Wpedantic: a GCC/Clang extension

/// splitmix64 step: also used to derive independent seeds (per node, per run).
constexpr uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9E3779B97F4A7C15ull);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

class Rng {
 public:
  explicit Rng(uint64_t seed) {
    uint64_t sm = seed;
    for (uint64_t& w : s_) w = splitmix64(sm);
  }

  /// Next 64 uniformly distributed bits (xoshiro256**).
  uint64_t next() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }

  /// Uniform in [0, n). REQUIRES: n > 0. (Multiply-shift; the bias is < 2^-32
  /// for the small n the simulator uses.)
  uint64_t below(uint64_t n) {
    RAFTKV_CHECK(n > 0);
    return static_cast<uint64_t>((static_cast<Uint128>(next()) * n) >> 64);
  }

  /// Uniform in [lo, hi]. REQUIRES: lo <= hi.
  uint64_t range(uint64_t lo, uint64_t hi) {
    RAFTKV_CHECK(lo <= hi);
    return lo + below(hi - lo + 1);
  }

  /// Uniform in [0, 1).
  double unit() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /// True with probability p.
  bool chance(double p) { return unit() < p; }

  /// A fresh seed for a sub-generator (so adding a draw in one part of the
  /// simulation does not shift every other part's stream).
  uint64_t fork() { return next() ^ 0xD1B54A32D192ED03ull; }

 private:
  static constexpr uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace raftkv::sim
