// etcdserverpb.Auth: the 16 RPCs of etcd v3's authentication and role-based
// access control (docs/security.md). Changes go through Raft as
// InternalRequests (kv::AuthStore applies them with etcd's rules, re-checking
// the caller is root at apply time); reads are linearizable (ReadIndex, then
// the local auth state). bcrypt work runs off the gRPC threads.
#include <atomic>
#include <thread>

#include "api/auth_checker.h"
#include "api/auth_token.h"
#include "api/service_util.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using R = raftkvpb::InternalResponse;
namespace ae = kv::auth_errors;

// bcrypt calls in flight (hash or verify, ~tens of ms each at cost 10).
constexpr int kMaxBcryptInFlight = 32;

class AuthService final : public etcdserverpb::Auth::CallbackService {
 public:
  explicit AuthService(const ServiceContext& ctx) : ctx_(ctx) {}

  ServerUnaryReactor* AuthEnable(CallbackServerContext* ctx, const etcdserverpb::AuthEnableRequest* req,
                                 etcdserverpb::AuthEnableResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_enable() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_enable);
  }

  ServerUnaryReactor* AuthDisable(CallbackServerContext* ctx,
                                  const etcdserverpb::AuthDisableRequest* req,
                                  etcdserverpb::AuthDisableResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_disable() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_disable);
  }

  ServerUnaryReactor* Authenticate(CallbackServerContext* ctx,
                                   const etcdserverpb::AuthenticateRequest* req,
                                   etcdserverpb::AuthenticateResponse* reply) override {
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    // Linearizable: a user added through any member can log in here at once.
    ctx_.node->read_barrier([this, req, reply, reactor](Status st) {
      if (!st.is_ok()) return reactor->Finish(to_grpc_status(st));
      std::shared_ptr<kv::Store> store = ctx_.node->store();
      if (!store->auth().enabled()) return reactor->Finish(to_grpc_status(ae::auth_not_enabled()));
      std::optional<authpb::User> user = store->auth().user(req->name());
      const uint64_t revision = store->auth().revision();
      if (!user || user->options().no_password()) {
        return reactor->Finish(to_grpc_status(ae::auth_failed()));
      }
      off_thread(reactor, [this, req, reply, reactor, user = std::move(*user), revision] {
        if (!verify_password(req->password(), user.password())) {
          return reactor->Finish(to_grpc_status(ae::auth_failed()));
        }
        Result<std::string> token = ctx_.tokens->assign(req->name(), user.password(), revision);
        if (!token) return reactor->Finish(to_grpc_status(token.status()));
        reply->set_token(std::move(*token));
        finish_read(reply->mutable_header(), reactor);
      });
    });
    return reactor;
  }

  ServerUnaryReactor* UserAdd(CallbackServerContext* ctx, const etcdserverpb::AuthUserAddRequest* req,
                              etcdserverpb::AuthUserAddResponse* reply) override {
    raftkvpb::InternalRequest ir;
    ir.mutable_auth_user_add()->set_name(req->name());
    const bool no_password = req->has_options() && req->options().no_password();
    ir.mutable_auth_user_add()->set_no_password(no_password);
    if (no_password) return change(ctx, std::move(ir), reply, &R::mutable_auth_user_add);
    return change_with_hash(ctx, std::move(ir), req->password(), reply, &R::mutable_auth_user_add,
                            [](raftkvpb::InternalRequest& r, std::string h) {
                              r.mutable_auth_user_add()->set_password_hash(std::move(h));
                            });
  }

  ServerUnaryReactor* UserChangePassword(CallbackServerContext* ctx,
                                         const etcdserverpb::AuthUserChangePasswordRequest* req,
                                         etcdserverpb::AuthUserChangePasswordResponse* reply) override {
    raftkvpb::InternalRequest ir;
    ir.mutable_auth_user_change_password()->set_name(req->name());
    return change_with_hash(ctx, std::move(ir), req->password(), reply,
                            &R::mutable_auth_user_change_password,
                            [](raftkvpb::InternalRequest& r, std::string h) {
                              r.mutable_auth_user_change_password()->set_password_hash(std::move(h));
                            });
  }

  ServerUnaryReactor* UserDelete(CallbackServerContext* ctx,
                                 const etcdserverpb::AuthUserDeleteRequest* req,
                                 etcdserverpb::AuthUserDeleteResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_user_delete() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_user_delete);
  }

  ServerUnaryReactor* UserGrantRole(CallbackServerContext* ctx,
                                    const etcdserverpb::AuthUserGrantRoleRequest* req,
                                    etcdserverpb::AuthUserGrantRoleResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_user_grant_role() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_user_grant_role);
  }

  ServerUnaryReactor* UserRevokeRole(CallbackServerContext* ctx,
                                     const etcdserverpb::AuthUserRevokeRoleRequest* req,
                                     etcdserverpb::AuthUserRevokeRoleResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_user_revoke_role() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_user_revoke_role);
  }

  ServerUnaryReactor* RoleAdd(CallbackServerContext* ctx, const etcdserverpb::AuthRoleAddRequest* req,
                              etcdserverpb::AuthRoleAddResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_role_add() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_role_add);
  }

  ServerUnaryReactor* RoleDelete(CallbackServerContext* ctx,
                                 const etcdserverpb::AuthRoleDeleteRequest* req,
                                 etcdserverpb::AuthRoleDeleteResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_role_delete() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_role_delete);
  }

  ServerUnaryReactor* RoleGrantPermission(
      CallbackServerContext* ctx, const etcdserverpb::AuthRoleGrantPermissionRequest* req,
      etcdserverpb::AuthRoleGrantPermissionResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_role_grant_permission() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_role_grant_permission);
  }

  ServerUnaryReactor* RoleRevokePermission(
      CallbackServerContext* ctx, const etcdserverpb::AuthRoleRevokePermissionRequest* req,
      etcdserverpb::AuthRoleRevokePermissionResponse* reply) override {
    raftkvpb::InternalRequest ir;
    *ir.mutable_auth_role_revoke_permission() = *req;
    return change(ctx, std::move(ir), reply, &R::mutable_auth_role_revoke_permission);
  }

  // ------------------------------------------------------------ reads

  ServerUnaryReactor* UserGet(CallbackServerContext* ctx, const etcdserverpb::AuthUserGetRequest* req,
                              etcdserverpb::AuthUserGetResponse* reply) override {
    return read(ctx, reply, [req, reply](const kv::AuthStore& auth, const AuthInfo& who,
                                         const AuthChecker& checker) -> Status {
      // etcd: root may read any user, a user itself.
      if (who.username != req->name()) RAFTKV_RETURN_IF_ERROR(checker.check_admin(who));
      std::optional<authpb::User> u = auth.user(req->name());
      if (!u) return ae::user_not_found();
      for (const auto& r : u->roles()) reply->add_roles(r);
      return Status::ok();
    });
  }

  ServerUnaryReactor* UserList(CallbackServerContext* ctx, const etcdserverpb::AuthUserListRequest*,
                               etcdserverpb::AuthUserListResponse* reply) override {
    return read(ctx, reply, [reply](const kv::AuthStore& auth, const AuthInfo& who,
                                    const AuthChecker& checker) -> Status {
      RAFTKV_RETURN_IF_ERROR(checker.check_admin(who));
      for (auto& n : auth.user_names()) reply->add_users(std::move(n));
      return Status::ok();
    });
  }

  ServerUnaryReactor* RoleGet(CallbackServerContext* ctx, const etcdserverpb::AuthRoleGetRequest* req,
                              etcdserverpb::AuthRoleGetResponse* reply) override {
    return read(ctx, reply, [req, reply](const kv::AuthStore& auth, const AuthInfo& who,
                                         const AuthChecker& checker) -> Status {
      // etcd: root may read any role, a user the roles it has.
      if (Status a = checker.check_admin(who); !a.is_ok()) {
        std::optional<authpb::User> u = auth.user(who.username);
        if (!u || std::find(u->roles().begin(), u->roles().end(), req->role()) == u->roles().end()) {
          return a;
        }
      }
      std::optional<authpb::Role> r = auth.role(req->role());
      if (!r) return ae::role_not_found();
      for (const auto& p : r->keypermission()) *reply->add_perm() = p;
      return Status::ok();
    });
  }

  ServerUnaryReactor* RoleList(CallbackServerContext* ctx, const etcdserverpb::AuthRoleListRequest*,
                               etcdserverpb::AuthRoleListResponse* reply) override {
    return read(ctx, reply, [reply](const kv::AuthStore& auth, const AuthInfo& who,
                                    const AuthChecker& checker) -> Status {
      RAFTKV_RETURN_IF_ERROR(checker.check_admin(who));
      for (auto& n : auth.role_names()) reply->add_roles(std::move(n));
      return Status::ok();
    });
  }

 private:
  /// Checks the caller (root while auth is on), proposes, answers.
  template <typename Resp, typename Resp_ptr>
  ServerUnaryReactor* change(CallbackServerContext* ctx, raftkvpb::InternalRequest ir, Resp* reply,
                             Resp_ptr (R::*unwrap)()) {
    if (Status a = ctx_.auth->authorize(*ctx, &ir); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    propose_and_finish(ctx_.node, ctx_.store_options, std::move(ir), reactor, reply,
                       [unwrap](R& r) { return (r.*unwrap)(); });
    return reactor;
  }

  /// change() for requests carrying a password: bcrypt runs off the gRPC
  /// thread, then `set_hash` puts the hash into the request.
  template <typename Resp, typename Resp_ptr, typename SetHash>
  ServerUnaryReactor* change_with_hash(CallbackServerContext* ctx, raftkvpb::InternalRequest ir,
                                       const std::string& password, Resp* reply,
                                       Resp_ptr (R::*unwrap)(), SetHash set_hash) {
    if (Status a = ctx_.auth->authorize(*ctx, &ir); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    off_thread(reactor, [this, ir = std::move(ir), password, reactor, reply, unwrap,
                         set_hash]() mutable {
      Result<std::string> h = hash_password(password, ctx_.cfg->bcrypt_cost);
      if (!h) return reactor->Finish(to_grpc_status(h.status()));
      set_hash(ir, std::move(*h));
      propose_and_finish(ctx_.node, ctx_.store_options, std::move(ir), reactor, reply,
                         [unwrap](R& r) { return (r.*unwrap)(); });
    });
    return reactor;
  }

  /// A linearizable read of the auth state: ReadIndex, then authenticate
  /// and `fill` (which checks what the caller may see) against the state the
  /// barrier brought up to date.
  template <typename Resp, typename Fill>
  ServerUnaryReactor* read(CallbackServerContext* ctx, Resp* reply, Fill fill) {
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    ctx_.node->read_barrier([this, ctx, reactor, reply, fill](Status st) {
      if (!st.is_ok()) return reactor->Finish(to_grpc_status(st));
      Result<AuthInfo> who = ctx_.auth->authenticate(*ctx);
      if (!who) return reactor->Finish(to_grpc_status(who.status()));
      std::shared_ptr<kv::Store> store = ctx_.node->store();
      Status s = fill(store->auth(), *who, *ctx_.auth);
      if (!s.is_ok()) return reactor->Finish(to_grpc_status(s));
      finish_read(reply->mutable_header(), reactor);
    });
    return reactor;
  }

  void finish_read(etcdserverpb::ResponseHeader* h, ServerUnaryReactor* reactor) {
    fill_header(ctx_.node, h);
    h->set_revision(ctx_.node->store()->revision());
    reactor->Finish(grpc::Status::OK);
  }

  /// Runs `fn` on its own thread (bcrypt is slow on purpose), at most
  /// kMaxBcryptInFlight at once; beyond that etcd's "too many requests".
  template <typename Fn>
  void off_thread(ServerUnaryReactor* reactor, Fn fn) {
    if (in_flight_->fetch_add(1) >= kMaxBcryptInFlight) {
      in_flight_->fetch_sub(1);
      reactor->Finish(to_grpc_status(Status::resource_exhausted("etcdserver: too many requests")));
      return;
    }
    // The counter is shared: once fn finishes the call the service may go.
    std::thread([counter = in_flight_, fn = std::move(fn)]() mutable {
      fn();
      counter->fetch_sub(1);
    }).detach();
  }

  ServiceContext ctx_;
  std::shared_ptr<std::atomic<int>> in_flight_ = std::make_shared<std::atomic<int>>(0);
};

}  // namespace

std::unique_ptr<grpc::Service> make_auth_service(const ServiceContext& ctx) {
  return std::make_unique<AuthService>(ctx);
}

}  // namespace raftkv::api
