// The client history of one simulated run, and what the checker needs to
// judge it. Plain values, no dependency on the code under test, so the
// checker stays independent of what it checks (TigerBeetle's rule).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace raftkv::sim {

/// A key's value; std::nullopt = the key does not exist.
using Value = std::optional<std::string>;

enum class OpKind : uint8_t {
  kPut,     ///< put(key, value) -> ok; with a lease: ok = took effect (the lease existed)
  kGet,     ///< linearizable get(key) -> value
  kDelete,  ///< delete(key) -> whether a key was deleted; also a key deleted by a lease revoke
  kCas,     ///< if value(key) == expected then put(key, value); -> succeeded
};

/// One client operation as the client saw it. Times are simulated
/// microseconds. An indeterminate operation timed out (or its node crashed):
/// it may or may not have taken effect, at any time after its invocation.
struct Op {
  uint64_t id = 0;
  int client = 0;
  OpKind kind = OpKind::kPut;
  std::string key;
  std::string value;  ///< kPut / kCas: the value written.
  Value expected;     ///< kCas: the value compared against.
  uint64_t invoke_us = 0;
  uint64_t complete_us = 0;  ///< Meaningless when indeterminate.
  bool indeterminate = false;
  // Results (when not indeterminate).
  Value read;          ///< kGet.
  /// kCas: succeeded; kDelete: a key was deleted; kPut with a lease: took effect.
  bool ok = false;
  /// kPut: the lease attached (0: none); a put with a lease that does not
  /// exist is refused and changes nothing. kDelete: the key was deleted by
  /// the revoke of this lease (a write no client issued: invoked when the
  /// revoke was proposed, complete when a member first applied it).
  int64_t lease = 0;
};

std::string describe(const Op& op);

}  // namespace raftkv::sim
