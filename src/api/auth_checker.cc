#include "api/auth_checker.h"

#include "api/auth_token.h"
#include "kv/store.h"
#include "server/node.h"
#include "transport/tls.h"

namespace raftkv::api {

AuthChecker::AuthChecker(server::Node* node, TokenProvider* tokens, bool client_cert_auth)
    : node_(node), tokens_(tokens), client_cert_auth_(client_cert_auth) {}

Result<AuthInfo> AuthChecker::authenticate(const grpc::ServerContextBase& ctx) const {
  std::shared_ptr<kv::Store> store = node_->store();
  const kv::AuthStore& auth = store->auth();
  if (!auth.enabled()) {
    // Tokens do not outlive a disabled auth (etcd forgets them on disable).
    tokens_->clear();
    return AuthInfo{};
  }
  const uint64_t revision = auth.revision();
  const auto& md = ctx.client_metadata();
  auto it = md.find("token");
  if (it != md.end()) {
    std::optional<TokenInfo> info = tokens_->info(std::string_view(it->second.data(), it->second.size()));
    if (!info) return kv::auth_errors::invalid_auth_token();
    std::optional<authpb::User> user = auth.user(info->username);
    // A token dies with its user and with the password it was issued for.
    if (!user || (!info->password_hash.empty() && user->password() != info->password_hash)) {
      return kv::auth_errors::invalid_auth_token();
    }
    return AuthInfo{std::move(info->username), revision};
  }
  if (client_cert_auth_) {
    // --client-cert-auth: the verified client certificate's common name names the user.
    // The listener's verifier has checked the chain and the CRL before the
    // call reaches us, so a name here belongs to a trusted certificate.
    std::shared_ptr<const grpc::AuthContext> ac = ctx.auth_context();
    if (ac != nullptr) {
      std::string cn = transport::peer_common_name(*ac);
      if (!cn.empty()) return AuthInfo{std::move(cn), revision};
    }
  }
  return AuthInfo{};  // nobody: the checks answer "user name is empty"
}

Status AuthChecker::check_read(const AuthInfo& who, std::string_view key,
                               std::string_view range_end) const {
  raftkvpb::InternalRequest req;
  req.mutable_range()->set_key(std::string(key));
  req.mutable_range()->set_range_end(std::string(range_end));
  return node_->store()->check_permission(req, who.username, who.auth_revision);
}

Status AuthChecker::check_admin(const AuthInfo& who) const {
  return node_->store()->auth().check_admin(who.username);
}

Status AuthChecker::check_read(const grpc::ServerContextBase& ctx, std::string_view key,
                               std::string_view range_end) const {
  Result<AuthInfo> who = authenticate(ctx);
  if (!who) return who.status();
  return check_read(*who, key, range_end);
}

Status AuthChecker::check_write(const grpc::ServerContextBase& ctx, std::string_view key,
                                std::string_view range_end) const {
  Result<AuthInfo> who = authenticate(ctx);
  if (!who) return who.status();
  raftkvpb::InternalRequest req;
  req.mutable_delete_range()->set_key(std::string(key));
  req.mutable_delete_range()->set_range_end(std::string(range_end));
  return node_->store()->check_permission(req, who->username, who->auth_revision);
}

Status AuthChecker::check_admin(const grpc::ServerContextBase& ctx) const {
  Result<AuthInfo> who = authenticate(ctx);
  if (!who) return who.status();
  return check_admin(*who);
}

Status AuthChecker::authorize(const grpc::ServerContextBase& ctx,
                              raftkvpb::InternalRequest* req) const {
  Result<AuthInfo> who = authenticate(ctx);
  if (!who) return who.status();
  if (kv::AuthStore::is_auth_request(*req)) {
    if (!req->has_auth_enable()) RAFTKV_RETURN_IF_ERROR(check_admin(*who));
  } else {
    RAFTKV_RETURN_IF_ERROR(
        node_->store()->check_permission(*req, who->username, who->auth_revision));
  }
  req->mutable_header()->set_username(who->username);
  req->mutable_header()->set_auth_revision(who->auth_revision);
  return Status::ok();
}

}  // namespace raftkv::api
