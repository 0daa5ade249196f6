#include "kv/auth_store.h"

#include <algorithm>

#include "base/check.h"
#include "base/crc32c.h"
#include "kv/keys.h"

namespace raftkv::kv {

using R = raftkvpb::InternalRequest;

namespace {

bool has_root_role(const authpb::User& u) {
  return std::find(u.roles().begin(), u.roles().end(), kRootRole) != u.roles().end();
}

bool perm_less(const authpb::Permission& a, const authpb::Permission& b) {
  if (a.key() != b.key()) return a.key() < b.key();
  return a.range_end() < b.range_end();
}

}  // namespace

bool AuthStore::is_auth_request(const raftkvpb::InternalRequest& req) {
  switch (req.request_case()) {
    case R::kAuthEnable:
    case R::kAuthDisable:
    case R::kAuthUserAdd:
    case R::kAuthUserDelete:
    case R::kAuthUserChangePassword:
    case R::kAuthUserGrantRole:
    case R::kAuthUserRevokeRole:
    case R::kAuthRoleAdd:
    case R::kAuthRoleDelete:
    case R::kAuthRoleGrantPermission:
    case R::kAuthRoleRevokePermission:
      return true;
    default:
      return false;
  }
}

void AuthStore::clear() {
  std::unique_lock l(mu_);
  enabled_ = false;
  revision_ = 1;
  users_.clear();
  roles_.clear();
}

Status AuthStore::load_record(std::string_view key, std::string_view value) {
  if (!auth_keys::is_auth_key(key)) return Status::corruption("kv: malformed auth key");
  const std::string name(key.substr(2));
  std::unique_lock l(mu_);
  if (key[1] == auth_keys::kUser) {
    authpb::User u;
    if (!u.ParseFromArray(value.data(), static_cast<int>(value.size())) || u.name() != name) {
      return Status::corruption("kv: malformed auth user record");
    }
    users_[name] = std::move(u);
  } else {
    authpb::Role r;
    if (!r.ParseFromArray(value.data(), static_cast<int>(value.size())) || r.name() != name) {
      return Status::corruption("kv: malformed auth role record");
    }
    roles_[name] = std::move(r);
  }
  return Status::ok();
}

Status AuthStore::load_meta(std::optional<std::string> enabled,
                            std::optional<std::string> revision) {
  std::unique_lock l(mu_);
  enabled_ = false;
  revision_ = 1;
  if (enabled) {
    if (enabled->size() != 1 || static_cast<unsigned char>((*enabled)[0]) > 1) {
      return Status::corruption("kv meta auth_enabled: bad value");
    }
    enabled_ = (*enabled)[0] == 1;
  }
  if (revision) {
    if (revision->size() != 8) return Status::corruption("kv meta auth_revision: bad length");
    revision_ = keys::get_be64(*revision);
    if (revision_ == 0) return Status::corruption("kv meta auth_revision: zero");
  }
  return Status::ok();
}

// ---------------------------------------------------------------- apply

void AuthStore::bump_revision(std::vector<AuthWrite>* writes) {
  ++revision_;
  writes->emplace_back(keys::meta_key(auth_keys::kRevision), keys::u64_value(revision_));
}

void AuthStore::put_user(const authpb::User& u, std::vector<AuthWrite>* writes) {
  writes->emplace_back(auth_keys::user_key(u.name()), u.SerializeAsString());
  users_[u.name()] = u;
}

void AuthStore::put_role(const authpb::Role& r, std::vector<AuthWrite>* writes) {
  writes->emplace_back(auth_keys::role_key(r.name()), r.SerializeAsString());
  roles_[r.name()] = r;
}

Status AuthStore::apply(const raftkvpb::InternalRequest& req, std::vector<AuthWrite>* writes,
                        raftkvpb::InternalResponse* out) {
  RAFTKV_CHECK(is_auth_request(req));
  std::unique_lock l(mu_);
  if (req.request_case() != R::kAuthEnable) {
    // Every change but enabling needs root while auth is on (etcd's
    // IsAdminPermitted, evaluated against the state at this point of the log).
    RAFTKV_RETURN_IF_ERROR(check_admin_locked(req.header().username()));
  }
  switch (req.request_case()) {
    case R::kAuthEnable: {
      out->mutable_auth_enable();
      if (enabled_) return Status::ok();
      auto root = users_.find(kRootUser);
      if (root == users_.end()) return auth_errors::root_user_not_exist();
      if (!has_root_role(root->second)) return auth_errors::root_role_not_exist();
      enabled_ = true;
      writes->emplace_back(keys::meta_key(auth_keys::kEnabled), std::string(1, '\1'));
      bump_revision(writes);
      return Status::ok();
    }
    case R::kAuthDisable: {
      out->mutable_auth_disable();
      if (!enabled_) return Status::ok();
      enabled_ = false;
      writes->emplace_back(keys::meta_key(auth_keys::kEnabled), std::string(1, '\0'));
      bump_revision(writes);
      return Status::ok();
    }
    case R::kAuthUserAdd: {
      const auto& r = req.auth_user_add();
      if (r.name().empty()) return auth_errors::user_empty();
      if (users_.count(r.name()) != 0) return auth_errors::user_already_exist();
      authpb::User u;
      u.set_name(r.name());
      if (!r.no_password()) u.set_password(r.password_hash());
      u.mutable_options()->set_no_password(r.no_password());
      put_user(u, writes);
      bump_revision(writes);
      out->mutable_auth_user_add();
      return Status::ok();
    }
    case R::kAuthUserDelete: {
      const auto& r = req.auth_user_delete();
      if (enabled_ && r.name() == kRootUser) return auth_errors::invalid_auth_mgmt();
      if (users_.erase(r.name()) == 0) return auth_errors::user_not_found();
      writes->emplace_back(auth_keys::user_key(r.name()), std::nullopt);
      bump_revision(writes);
      out->mutable_auth_user_delete();
      return Status::ok();
    }
    case R::kAuthUserChangePassword: {
      const auto& r = req.auth_user_change_password();
      auto it = users_.find(r.name());
      if (it == users_.end()) return auth_errors::user_not_found();
      authpb::User u = it->second;
      u.set_password(r.password_hash());
      u.mutable_options()->set_no_password(false);
      put_user(u, writes);
      bump_revision(writes);
      out->mutable_auth_user_change_password();
      return Status::ok();
    }
    case R::kAuthUserGrantRole: {
      const auto& r = req.auth_user_grant_role();
      auto it = users_.find(r.user());
      if (it == users_.end()) return auth_errors::user_not_found();
      // etcd: the root role may be granted before it is added.
      if (r.role() != kRootRole && roles_.count(r.role()) == 0) return auth_errors::role_not_found();
      authpb::User u = it->second;
      out->mutable_auth_user_grant_role();
      auto pos = std::lower_bound(u.mutable_roles()->begin(), u.mutable_roles()->end(), r.role());
      if (pos != u.mutable_roles()->end() && *pos == r.role()) return Status::ok();  // already
      u.add_roles(r.role());
      std::sort(u.mutable_roles()->begin(), u.mutable_roles()->end());
      put_user(u, writes);
      bump_revision(writes);
      return Status::ok();
    }
    case R::kAuthUserRevokeRole: {
      const auto& r = req.auth_user_revoke_role();
      if (enabled_ && r.name() == kRootUser && r.role() == kRootRole) {
        return auth_errors::invalid_auth_mgmt();
      }
      auto it = users_.find(r.name());
      if (it == users_.end()) return auth_errors::user_not_found();
      authpb::User u = it->second;
      auto* roles = u.mutable_roles();
      auto pos = std::find(roles->begin(), roles->end(), r.role());
      if (pos == roles->end()) return auth_errors::role_not_granted();
      roles->erase(pos);
      put_user(u, writes);
      bump_revision(writes);
      out->mutable_auth_user_revoke_role();
      return Status::ok();
    }
    case R::kAuthRoleAdd: {
      const auto& r = req.auth_role_add();
      if (r.name().empty()) return auth_errors::role_empty();
      if (roles_.count(r.name()) != 0) return auth_errors::role_already_exist();
      authpb::Role role;
      role.set_name(r.name());
      put_role(role, writes);
      bump_revision(writes);
      out->mutable_auth_role_add();
      return Status::ok();
    }
    case R::kAuthRoleDelete: {
      const auto& r = req.auth_role_delete();
      if (enabled_ && r.role() == kRootRole) return auth_errors::invalid_auth_mgmt();
      if (roles_.erase(r.role()) == 0) return auth_errors::role_not_found();
      writes->emplace_back(auth_keys::role_key(r.role()), std::nullopt);
      // The role leaves every user that had it.
      for (auto& [name, u] : users_) {
        auto* roles = u.mutable_roles();
        auto pos = std::find(roles->begin(), roles->end(), r.role());
        if (pos == roles->end()) continue;
        roles->erase(pos);
        writes->emplace_back(auth_keys::user_key(name), u.SerializeAsString());
      }
      bump_revision(writes);
      out->mutable_auth_role_delete();
      return Status::ok();
    }
    case R::kAuthRoleGrantPermission: {
      const auto& r = req.auth_role_grant_permission();
      if (!r.has_perm()) return auth_errors::permission_not_given();
      auto it = roles_.find(r.name());
      if (it == roles_.end()) return auth_errors::role_not_found();
      authpb::Role role = it->second;
      bool replaced = false;
      for (auto& p : *role.mutable_keypermission()) {
        if (p.key() == r.perm().key() && p.range_end() == r.perm().range_end()) {
          p.set_permtype(r.perm().permtype());
          replaced = true;
        }
      }
      if (!replaced) *role.add_keypermission() = r.perm();
      std::sort(role.mutable_keypermission()->begin(), role.mutable_keypermission()->end(),
                perm_less);
      put_role(role, writes);
      bump_revision(writes);
      out->mutable_auth_role_grant_permission();
      return Status::ok();
    }
    case R::kAuthRoleRevokePermission: {
      const auto& r = req.auth_role_revoke_permission();
      auto it = roles_.find(r.role());
      if (it == roles_.end()) return auth_errors::role_not_found();
      authpb::Role role = it->second;
      auto* perms = role.mutable_keypermission();
      auto pos = std::find_if(perms->begin(), perms->end(), [&](const authpb::Permission& p) {
        return p.key() == r.key() && p.range_end() == r.range_end();
      });
      if (pos == perms->end()) return auth_errors::permission_not_granted();
      perms->erase(pos);
      put_role(role, writes);
      bump_revision(writes);
      out->mutable_auth_role_revoke_permission();
      return Status::ok();
    }
    default:
      break;
  }
  return Status::internal("auth: not an auth request");
}

// ---------------------------------------------------------------- reads

bool AuthStore::enabled() const {
  std::shared_lock l(mu_);
  return enabled_;
}

uint64_t AuthStore::revision() const {
  std::shared_lock l(mu_);
  return revision_;
}

std::optional<authpb::User> AuthStore::user(std::string_view name) const {
  std::shared_lock l(mu_);
  auto it = users_.find(name);
  if (it == users_.end()) return std::nullopt;
  return it->second;
}

std::optional<authpb::Role> AuthStore::role(std::string_view name) const {
  std::shared_lock l(mu_);
  auto it = roles_.find(name);
  if (it == roles_.end()) return std::nullopt;
  return it->second;
}

std::vector<std::string> AuthStore::user_names() const {
  std::shared_lock l(mu_);
  std::vector<std::string> out;
  for (const auto& [n, _] : users_) out.push_back(n);
  return out;
}

std::vector<std::string> AuthStore::role_names() const {
  std::shared_lock l(mu_);
  std::vector<std::string> out;
  for (const auto& [n, _] : roles_) out.push_back(n);
  return out;
}

Status AuthStore::check_identity(std::string_view user, uint64_t auth_revision) const {
  std::shared_lock l(mu_);
  if (!enabled_) return Status::ok();
  if (user.empty() || auth_revision == 0) return auth_errors::user_empty();
  if (auth_revision < revision_) return auth_errors::auth_old_revision();
  return Status::ok();
}

Status AuthStore::check_admin(std::string_view user) const {
  std::shared_lock l(mu_);
  return check_admin_locked(user);
}

Status AuthStore::check_admin_locked(std::string_view user) const {
  if (!enabled_) return Status::ok();
  if (user.empty()) return auth_errors::user_empty();
  auto it = users_.find(user);
  if (it == users_.end()) return auth_errors::user_not_found();
  if (!has_root_role(it->second)) return auth_errors::permission_denied();
  return Status::ok();
}

UserPermissions AuthStore::permissions(std::string_view user) const {
  std::shared_lock l(mu_);
  return permissions_locked(user);
}

UserPermissions AuthStore::permissions_locked(std::string_view user) const {
  UserPermissions out;
  auto it = users_.find(user);
  if (it == users_.end()) return out;
  for (const std::string& role_name : it->second.roles()) {
    if (role_name == kRootRole) {
      out.root = true;
      continue;
    }
    auto r = roles_.find(role_name);
    if (r == roles_.end()) continue;
    for (const auto& p : r->second.keypermission()) add_permission(p, &out);
  }
  return out;
}

void AuthStore::stamp_as_root(raftkvpb::InternalRequest* req) const {
  req->mutable_header()->set_username(std::string(kRootUser));
  req->mutable_header()->set_auth_revision(revision());
}

uint32_t AuthStore::hash() const {
  std::shared_lock l(mu_);
  uint32_t h = 0;
  auto add = [&h](std::string_view k, std::string_view v) {
    h = crc32c_extend(h, k.data(), k.size());
    h = crc32c_extend(h, v.data(), v.size());
  };
  for (const auto& [n, r] : roles_) add(auth_keys::role_key(n), r.SerializeAsString());
  for (const auto& [n, u] : users_) add(auth_keys::user_key(n), u.SerializeAsString());
  add(keys::meta_key(auth_keys::kEnabled), std::string(1, enabled_ ? '\1' : '\0'));
  add(keys::meta_key(auth_keys::kRevision), keys::u64_value(revision_));
  return h;
}

}  // namespace raftkv::kv
