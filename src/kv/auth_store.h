// kv::AuthStore: the replicated auth state of raftkv — the enabled flag, users
// (bcrypt password hashes, roles), roles (key-range permissions) and the auth
// revision — with etcd v3's rules for changing it (docs/security.md).
//
// It is part of kv::Store: auth requests are applied by Store::apply in log
// order, their records written in the same RocksDB batch as the applied index,
// carried in the store's snapshot stream and rebuilt by Store::open. Applying
// is deterministic and cheap: passwords arrive already hashed by the member
// that proposed the request.
//
// RocksDB records (see kv/keys.h for the other kinds):
//   'a' 'u' | user name   ->  authpb.User (password = bcrypt hash, roles sorted)
//   'a' 'r' | role name   ->  authpb.Role (permissions sorted by key, range_end)
//   'm' "auth_enabled"    ->  one byte, 0 or 1
//   'm' "auth_revision"   ->  8 bytes big-endian
//
// The auth revision starts at 1 and grows by one with every change of the
// auth state (etcd's). A request checked by the API layer carries the
// revision it was checked against (RequestHeader.auth_revision); applying it
// refuses it with "etcdserver: revision of auth store is old" when the auth
// state changed since, so a revoked permission takes effect at once on every
// member.
//
// Threading: the apply thread mutates (apply, load); any thread reads. Reads
// see whole requests (one mutex).
#pragma once

#include <cstdint>
#include <map>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/status.h"
#include "etcd/authpb/auth.pb.h"
#include "kv/auth_perms.h"
#include "raftkv/internal.pb.h"

namespace raftkv::kv {

/// etcd's auth errors (rpctypes/error.go): exact codes and messages.
namespace auth_errors {
inline Status root_user_not_exist() {
  return Status::failed_precondition("etcdserver: root user does not exist");
}
inline Status root_role_not_exist() {
  return Status::failed_precondition("etcdserver: root user does not have root role");
}
inline Status user_already_exist() {
  return Status::failed_precondition("etcdserver: user name already exists");
}
inline Status user_empty() { return Status::invalid_argument("etcdserver: user name is empty"); }
inline Status user_not_found() {
  return Status::failed_precondition("etcdserver: user name not found");
}
inline Status role_already_exist() {
  return Status::failed_precondition("etcdserver: role name already exists");
}
inline Status role_not_found() {
  return Status::failed_precondition("etcdserver: role name not found");
}
inline Status role_empty() { return Status::invalid_argument("etcdserver: role name is empty"); }
inline Status auth_failed() {
  return Status::invalid_argument("etcdserver: authentication failed, invalid user ID or password");
}
inline Status permission_denied() {
  return Status(Code::kPermissionDenied, "etcdserver: permission denied");
}
inline Status role_not_granted() {
  return Status::failed_precondition("etcdserver: role is not granted to the user");
}
inline Status permission_not_granted() {
  return Status::failed_precondition("etcdserver: permission is not granted to the role");
}
inline Status auth_not_enabled() {
  return Status::failed_precondition("etcdserver: authentication is not enabled");
}
inline Status invalid_auth_token() {
  return Status(Code::kUnauthenticated, "etcdserver: invalid auth token");
}
inline Status invalid_auth_mgmt() {
  return Status::invalid_argument("etcdserver: invalid auth management");
}
inline Status auth_old_revision() {
  return Status::invalid_argument("etcdserver: revision of auth store is old");
}
inline Status permission_not_given() {
  return Status::invalid_argument("etcdserver: permission not given");
}
}  // namespace auth_errors

inline constexpr std::string_view kRootUser = "root";
inline constexpr std::string_view kRootRole = "root";

/// One staged RocksDB change: a put (value set) or a delete.
using AuthWrite = std::pair<std::string, std::optional<std::string>>;

class AuthStore {
 public:
  /// True if `req` is one of the auth requests apply() handles.
  static bool is_auth_request(const raftkvpb::InternalRequest& req);

  // ------------------------------------------------------------ recovery
  /// Resets to a fresh state (disabled, revision 1, no users or roles).
  void clear();
  /// Restores one stored record ('a' keys) or meta value; Corruption if malformed.
  Status load_record(std::string_view key, std::string_view value);
  Status load_meta(std::optional<std::string> enabled, std::optional<std::string> revision);

  // ------------------------------------------------------------ apply thread
  /// Applies one auth request for the user in req.header(): the admin check
  /// (while enabled; AuthEnable needs none), then etcd's rules. Appends the
  /// RocksDB changes to `writes` and fills the response (without header
  /// revision). A refused request returns its etcd error and changes nothing.
  /// REQUIRES: is_auth_request(req).
  Status apply(const raftkvpb::InternalRequest& req, std::vector<AuthWrite>* writes,
               raftkvpb::InternalResponse* out);

  // ------------------------------------------------------------ any thread
  bool enabled() const;
  uint64_t revision() const;
  std::optional<authpb::User> user(std::string_view name) const;
  std::optional<authpb::Role> role(std::string_view name) const;
  std::vector<std::string> user_names() const;  ///< Sorted.
  std::vector<std::string> role_names() const;  ///< Sorted.

  /// etcd's isOpPermitted front half: OK when disabled; user_empty when no
  /// user (or revision 0); auth_old_revision when `auth_revision` is below
  /// the current revision.
  Status check_identity(std::string_view user, uint64_t auth_revision) const;
  /// etcd's IsAdminPermitted: OK when disabled; else the user must exist
  /// (user_not_found) and hold the root role (permission_denied).
  Status check_admin(std::string_view user) const;
  /// The permissions of `user` now (empty if the user does not exist).
  UserPermissions permissions(std::string_view user) const;

  /// Marks `req` as made by root at the current auth revision. For the
  /// requests the server makes itself (lease expiry, alarms), which etcd
  /// also makes as root: they must pass the apply-time check while auth is on.
  void stamp_as_root(raftkvpb::InternalRequest* req) const;

  /// CRC-32C over every auth record and meta value in key order: equal on
  /// members with the same auth state (for Maintenance.Hash).
  uint32_t hash() const;

 private:
  Status check_admin_locked(std::string_view user) const;
  UserPermissions permissions_locked(std::string_view user) const;
  void bump_revision(std::vector<AuthWrite>* writes);
  void put_user(const authpb::User& u, std::vector<AuthWrite>* writes);
  void put_role(const authpb::Role& r, std::vector<AuthWrite>* writes);

  mutable std::shared_mutex mu_;
  bool enabled_ = false;
  uint64_t revision_ = 1;
  std::map<std::string, authpb::User, std::less<>> users_;
  std::map<std::string, authpb::Role, std::less<>> roles_;
};

namespace auth_keys {
inline constexpr char kAuthPrefix = 'a';
inline constexpr char kUser = 'u';
inline constexpr char kRole = 'r';
inline constexpr std::string_view kEnabled = "auth_enabled";
inline constexpr std::string_view kRevision = "auth_revision";
inline std::string user_key(std::string_view name) {
  std::string k{kAuthPrefix, kUser};
  k.append(name);
  return k;
}
inline std::string role_key(std::string_view name) {
  std::string k{kAuthPrefix, kRole};
  k.append(name);
  return k;
}
/// A well-formed 'a' key (restore refuses others).
inline bool is_auth_key(std::string_view k) {
  return k.size() >= 2 && k[0] == kAuthPrefix && (k[1] == kUser || k[1] == kRole);
}
}  // namespace auth_keys

}  // namespace raftkv::kv
