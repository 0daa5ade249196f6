// Linearizability checker for a single-register-per-key store (WGL: Wing &
// Gong's search with Lowe's memoization of (linearized set, state)).
//
// The history is partitioned per key (each operation touches one key, so the
// history is linearizable iff every key's sub-history is — P-compositionality).
// For each key the search walks the list of call/return events: at a call it
// tries to linearize that operation now (the model must accept its result);
// at a return of an operation not yet linearized it backtracks. A cache of the
// (linearized set, model state) pairs already explored cuts repeated work.
//
// Indeterminate operations (timed out) have a call and no return: they may be
// linearized at any point after their call, or never. Indeterminate reads
// carry no information and are dropped before the search.
//
// Pure and deterministic; no dependency on the code under test.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sim/history.h"

namespace raftkv::sim {

struct CheckResult {
  enum class Verdict : uint8_t { kLinearizable, kViolation, kGaveUp };
  Verdict verdict = Verdict::kLinearizable;
  std::string key;      ///< The key whose history failed (or exhausted the budget).
  std::string detail;   ///< The operations of that key, for the report.
  uint64_t steps = 0;   ///< Search steps over all keys.
};

struct CheckOptions {
  /// Search steps per key before giving up (kGaveUp: neither pass nor fail).
  uint64_t max_steps_per_key = 2'000'000;
  /// Value every key holds before the first operation.
  Value initial;
};

/// Checks `ops` for linearizability against the register-per-key model.
CheckResult check_linearizable(const std::vector<Op>& ops, const CheckOptions& options = {});

/// The register model's transition: returns false if `op`'s recorded result
/// is impossible from `state`; otherwise updates `state`. Indeterminate ops
/// are always possible (their result is unknown).
bool model_step(const Op& op, Value& state);

}  // namespace raftkv::sim
