// What the Lock and Election services share: etcd's concurrency recipes
// (clientv3/concurrency) carried out inside the server, asynchronously, over
// the node's proposals, linearizable reads and watch hub
// (docs/coordination.md, "Locks" and "Elections").
//
// Nothing here blocks a thread: every step finishes from a callback (the
// apply loop's read barrier or proposal completion, or a watch hub notify).
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "api/service_util.h"
#include "kv/watch_hub.h"

namespace raftkv::api::coordination {

using RangeDone = std::function<void(Result<etcdserverpb::RangeResponse>)>;
using TxnDone = std::function<void(Result<etcdserverpb::TxnResponse>)>;

/// The owner key of a lease under a lock or election name: name + "/" + the
/// lease id in lowercase hex (etcd's "%s/%x").
std::string owner_key(const std::string& name, int64_t lease);

/// The range_end selecting every key that starts with `prefix`.
std::string prefix_end(const std::string& prefix);

/// A Compare that holds while `key`'s create revision is `rev` (0: the key
/// does not exist).
etcdserverpb::Compare created_at(const std::string& key, int64_t rev);

// Every step acts for `user`, the caller the service authenticated when the
// call began (empty while auth is disabled): reads are checked against the
// user's permissions after their barrier, proposals carry the user and the
// auth revision current at that step, and every member checks them again at
// apply time. So a recipe can touch only keys its caller could touch through
// the KV service, and a permission revoked during a wait stops the next step.

/// Stamps `user` and the current auth revision into `req`'s header.
void act_as(server::Node* node, const std::string& user, raftkvpb::InternalRequest* req);

/// Linearizable Range (ReadIndex, then the local store). `done` runs once.
void linearizable_range(server::Node* node, const std::string& user,
                        etcdserverpb::RangeRequest req, RangeDone done);

/// Proposes a Txn. `done` runs once with the applied response or the error.
void propose_txn(server::Node* node, const kv::StoreOptions& opts, const std::string& user,
                 etcdserverpb::TxnRequest req, TxnDone done);

/// A Range request for the key under `prefix` with the lowest (first=true) or
/// highest create revision, optionally bounded by max_create_revision.
etcdserverpb::RangeRequest create_ordered(const std::string& prefix, bool first,
                                          int64_t max_create_revision = 0);

/// etcd's waitDeletes: waits until no key under `prefix` has a create revision
/// <= max_create_revision, by watching the deletion of the newest such key in
/// turn (never polling). `done` runs once, with the header of the last read,
/// or with an error; or never if cancel() comes first.
class DeleteWaiter : public std::enable_shared_from_this<DeleteWaiter> {
 public:
  using Done = std::function<void(Result<etcdserverpb::ResponseHeader>)>;

  static std::shared_ptr<DeleteWaiter> start(server::Node* node, std::string user,
                                             std::string prefix, int64_t max_create_revision,
                                             Done done);
  /// Stops waiting; `done` is not called after cancel() returns (except a call
  /// already running).
  void cancel();

 private:
  DeleteWaiter(server::Node* node, std::string user, std::string prefix,
               int64_t max_create_revision, Done done)
      : node_(node), user_(std::move(user)), prefix_(std::move(prefix)),
        max_rev_(max_create_revision), done_(std::move(done)) {}
  void check();
  void on_range(Result<etcdserverpb::RangeResponse> r);
  void on_notify();
  void finish(Result<etcdserverpb::ResponseHeader> r);

  server::Node* const node_;
  const std::string user_;
  const std::string prefix_;
  const int64_t max_rev_;
  std::mutex mu_;
  Done done_;  ///< Empty once finished or cancelled.
  kv::WatcherId watcher_ = 0;
};

/// A unary call that ends exactly once, whichever comes first: the
/// operation's end or the client cancelling. Callbacks hold the Gate (a
/// shared_ptr), never the reactor or the reply, which gRPC frees once the
/// call is done.
class Gate {
 public:
  /// Creates the reactor of a call; `gate` receives its gate.
  static grpc::ServerUnaryReactor* make(std::shared_ptr<Gate>* gate);

  /// Unless the call has ended: runs `fill` (which may write the reply) and
  /// finishes with `st`. False when the call had already ended.
  bool finish(const grpc::Status& st, const std::function<void()>& fill = {});
  /// `fn` runs (once, before the call ends with CANCELLED) if the client
  /// cancels. False (and `fn` dropped) when the call has already ended: the
  /// caller cleans up itself.
  bool set_on_cancel(std::function<void()> fn);
  bool ended();

 private:
  friend class GateReactor;
  void cancelled();
  std::mutex mu_;
  bool ended_ = false;
  grpc::ServerUnaryReactor* reactor_ = nullptr;
  std::function<void()> on_cancel_;
};

/// The authenticated caller of a call (empty while auth is disabled), or
/// std::nullopt after finishing `gate` with the authentication error.
std::optional<std::string> caller(const AuthChecker& auth, const grpc::ServerContextBase& ctx,
                                  Gate& gate);

}  // namespace raftkv::api::coordination
