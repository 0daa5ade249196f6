// Key-range permission logic of the auth store: does the union of a user's
// granted ranges cover a requested range? Pure; any thread.
//
// Ranges use etcd's forms for (key, range_end):
//   range_end empty      the key alone            -> [key, key + "\0")
//   range_end == "\0"    every key >= key         -> [key, +inf)
//   otherwise            [key, range_end)
// A request whose range_end <= key (an empty range in etcd) is treated as the
// key alone, so it still needs a permission on that key.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "etcd/authpb/auth.pb.h"

namespace raftkv::kv {

enum class PermKind { kRead, kWrite };

/// A half-open key interval [begin, end), or [begin, +inf) when unbounded.
struct KeyInterval {
  std::string begin;
  std::string end;
  bool unbounded = false;

  /// The interval etcd's (key, range_end) pair denotes (forms above).
  static KeyInterval of(std::string_view key, std::string_view range_end);
};

/// The union of granted intervals of one kind, merged as they are added
/// (roles hold few permissions), answering "is this
/// interval entirely inside the union?".
class PermissionSet {
 public:
  void add(KeyInterval iv);
  /// True if every key of `want` lies in some granted interval.
  bool covers(const KeyInterval& want) const;
  bool empty() const { return merged_.empty(); }

 private:
  std::vector<KeyInterval> merged_;  ///< Sorted, disjoint, non-adjacent.
};

/// Read and write sets of a role list.
struct UserPermissions {
  bool root = false;  ///< Holds the root role: everything is allowed.
  PermissionSet read;
  PermissionSet write;

  bool allows(PermKind kind, const KeyInterval& want) const {
    if (root) return true;
    return kind == PermKind::kRead ? read.covers(want) : write.covers(want);
  }
};

/// Adds `perm` of a role to `out` (READ -> read, WRITE -> write, READWRITE -> both).
void add_permission(const authpb::Permission& perm, UserPermissions* out);

}  // namespace raftkv::kv
