// etcdserverpb.Maintenance: Status, Hash, HashKV, Alarm, Defragment, Snapshot
// and MoveLeader (docs/operations.md).
#include <atomic>
#include <thread>

#include <spdlog/spdlog.h>

#include "api/service_util.h"
#include "etcd/etcdserverpb/rpc.grpc.pb.h"
#include "kv/errors.h"
#include "server/backup.h"

namespace raftkv::api {
namespace {

using grpc::CallbackServerContext;
using grpc::ServerUnaryReactor;
using grpc::ServerWriteReactor;

// Defragment calls running at once (each holds a thread while RocksDB
// compacts; the store serializes the compactions themselves).
constexpr int kMaxDefragmentsInFlight = 4;
// Bytes per Snapshot message (etcd sends 32 KiB; fewer, larger messages cost
// less here and stay far below every client's receive limit).
constexpr size_t kSnapshotBlobBytes = 256 * 1024;

/// etcd's text for an active alarm in StatusResponse.errors (the compact
/// protobuf text of the AlarmMember).
std::string alarm_text(const etcdserverpb::AlarmMember& a) {
  return "memberID:" + std::to_string(a.memberid()) +
         " alarm:" + etcdserverpb::AlarmType_Name(a.alarm()) + " ";
}

/// Streams one backup file (server/backup.h) of a consistent store image,
/// one message in flight at a time: the next one is produced only when the
/// previous write completed, so a slow client slows the producer down.
class SnapshotWriter final : public ServerWriteReactor<etcdserverpb::SnapshotResponse> {
 public:
  SnapshotWriter(server::Node* node, std::shared_ptr<kv::Store> store,
                 std::unique_ptr<kv::SnapshotStream> stream)
      : node_(node),
        store_(std::move(store)),
        stream_(std::move(stream)),
        estimate_bytes_(store_->disk_size_bytes()) {
    spdlog::info("sending a snapshot to a client: applied_index={} revision={}",
                 stream_->applied_index().value(), store_->revision());
    next();
  }

  void OnWriteDone(bool ok) override {
    if (!ok) {
      done(grpc::Status(grpc::StatusCode::CANCELLED, "snapshot stream cancelled"));
      return;
    }
    next();
  }
  void OnDone() override { delete this; }

 private:
  void next() {
    // Keep at most one kv chunk (~1 MiB) plus one blob buffered.
    while (buffered() < kSnapshotBlobBytes && !finished_) {
      Result<std::optional<std::string>> c = stream_->next_chunk();
      if (!c) {
        spdlog::error("snapshot stream failed: {}", c.status().to_string());
        done(to_grpc_status(c.status()));
        return;
      }
      if (!c->has_value()) {
        writer_.finish(&pending_);
        finished_ = true;
        stream_.reset();  // releases the RocksDB snapshot early
      } else {
        Status st = writer_.add_chunk(**c, &pending_);
        if (!st.is_ok()) {
          done(to_grpc_status(st));
          return;
        }
      }
    }
    if (buffered() == 0) {
      spdlog::info("snapshot sent to a client: bytes={}", sent_);
      done(grpc::Status::OK);
      return;
    }
    const size_t n = std::min(kSnapshotBlobBytes, buffered());
    resp_.Clear();
    resp_.set_blob(pending_.substr(pos_, n));
    pos_ += n;
    sent_ += n;
    if (pos_ >= (1u << 20)) {
      pending_.erase(0, pos_);
      pos_ = 0;
    }
    // Exact once the end is buffered; before that an estimate from the
    // store's size (never below what is already buffered).
    uint64_t remaining = buffered();
    if (!finished_ && estimate_bytes_ > sent_) remaining = std::max(remaining, estimate_bytes_ - sent_);
    resp_.set_remaining_bytes(remaining);
    fill_header(node_, resp_.mutable_header());
    resp_.mutable_header()->set_revision(store_->revision());
    StartWrite(&resp_);
  }

  size_t buffered() const { return pending_.size() - pos_; }

  void done(const grpc::Status& st) {
    stream_.reset();
    Finish(st);
  }

  server::Node* node_;
  std::shared_ptr<kv::Store> store_;  // declared before stream_: outlives it
  std::unique_ptr<kv::SnapshotStream> stream_;
  server::BackupWriter writer_;
  std::string pending_;
  size_t pos_ = 0;
  bool finished_ = false;
  uint64_t sent_ = 0;
  const uint64_t estimate_bytes_;
  etcdserverpb::SnapshotResponse resp_;
};

class MaintenanceService final : public etcdserverpb::Maintenance::CallbackService {
 public:
  explicit MaintenanceService(const ServiceContext& ctx) : ctx_(ctx), node_(ctx.node) {}

  ServerUnaryReactor* Status(CallbackServerContext* ctx, const etcdserverpb::StatusRequest*,
                             etcdserverpb::StatusResponse* reply) override {
    const server::NodeStatusView s = node_->status();
    std::shared_ptr<kv::Store> store = node_->store();
    reply->set_version(kApiVersion);
    reply->set_dbsize(static_cast<int64_t>(store->disk_size_bytes()));
    reply->set_dbsizeinuse(static_cast<int64_t>(store->logical_size_bytes()));
    reply->set_leader(s.leader);
    reply->set_raftindex(s.commit_index);
    reply->set_raftterm(s.term);
    reply->set_raftappliedindex(s.applied_index);
    reply->set_islearner(s.is_learner);
    if (s.leader == 0) reply->add_errors("etcdserver: no leader");
    for (const etcdserverpb::AlarmMember& a : store->alarms()) reply->add_errors(alarm_text(a));
    fill_header(node_, reply->mutable_header());
    reply->mutable_header()->set_revision(store->revision());
    return finish_now(ctx, grpc::Status::OK);
  }

  ServerUnaryReactor* Hash(CallbackServerContext* ctx, const etcdserverpb::HashRequest*,
                           etcdserverpb::HashResponse* reply) override {
    if (raftkv::Status a = ctx_.auth->check_admin(*ctx); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }
    Result<etcdserverpb::HashResponse> h = node_->store()->hash();
    if (!h) return finish_now(ctx, to_grpc_status(h.status()));
    *reply = std::move(*h);
    fill_header(node_, reply->mutable_header());
    return finish_now(ctx, grpc::Status::OK);
  }

  ServerUnaryReactor* HashKV(CallbackServerContext* ctx, const etcdserverpb::HashKVRequest* req,
                             etcdserverpb::HashKVResponse* reply) override {
    if (raftkv::Status a = ctx_.auth->check_admin(*ctx); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }
    Result<etcdserverpb::HashKVResponse> h = node_->store()->hash_kv(req->revision());
    if (!h) return finish_now(ctx, to_grpc_status(h.status()));
    *reply = std::move(*h);
    fill_header(node_, reply->mutable_header());
    return finish_now(ctx, grpc::Status::OK);
  }

  ServerUnaryReactor* Alarm(CallbackServerContext* ctx, const etcdserverpb::AlarmRequest* req,
                            etcdserverpb::AlarmResponse* reply) override {
    using A = etcdserverpb::AlarmRequest;
    if (req->action() == A::GET) {
      // Answered from the local store: alarms change only through the log.
      std::shared_ptr<kv::Store> store = node_->store();
      for (const etcdserverpb::AlarmMember& a : store->alarms()) {
        if (req->alarm() == etcdserverpb::AlarmType::NONE || a.alarm() == req->alarm()) {
          *reply->add_alarms() = a;
        }
      }
      fill_header(node_, reply->mutable_header());
      reply->mutable_header()->set_revision(store->revision());
      return finish_now(ctx, grpc::Status::OK);
    }
    if (req->action() != A::ACTIVATE && req->action() != A::DEACTIVATE) {
      return finish_now(ctx, grpc::Status(grpc::StatusCode::INVALID_ARGUMENT,
                                          "raftkv: unknown alarm action"));
    }
    // Listing is open (as etcd). Raising or clearing an alarm is root-only:
    // etcd 3.4 does not check it, but a NOSPACE alarm stops every write and
    // clearing one lifts the space quota, so neither is left to any user.
    if (raftkv::Status a = ctx_.auth->check_admin(*ctx); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }

    raftkvpb::InternalRequest ir;
    *ir.mutable_alarm() = *req;
    if (raftkv::Status a = ctx_.auth->authorize(*ctx, &ir); !a.is_ok()) {  // stamps the caller
      return finish_now(ctx, to_grpc_status(a));
    }
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    propose_and_finish(node_, ctx_.store_options, std::move(ir), reactor, reply,
                       [](raftkvpb::InternalResponse& r) { return r.mutable_alarm(); });
    return reactor;
  }

  ServerUnaryReactor* MoveLeader(CallbackServerContext* ctx,
                                 const etcdserverpb::MoveLeaderRequest* req,
                                 etcdserverpb::MoveLeaderResponse* reply) override {
    // Root-only: etcd 3.4 left MoveLeader open; later etcd checks it, and a
    // leader move is a cluster operation like the member changes.
    if (raftkv::Status a = ctx_.auth->check_admin(*ctx); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    node_->move_leader(req->targetid(), [this, reactor, reply](raftkv::Status st) {
      if (!st.is_ok()) {
        reactor->Finish(to_grpc_status(st));
        return;
      }
      fill_header(node_, reply->mutable_header());
      reactor->Finish(grpc::Status::OK);
    });
    return reactor;
  }

  ServerUnaryReactor* Defragment(CallbackServerContext* ctx, const etcdserverpb::DefragmentRequest*,
                                 etcdserverpb::DefragmentResponse* reply) override {
    if (raftkv::Status a = ctx_.auth->check_admin(*ctx); !a.is_ok()) {
      return finish_now(ctx, to_grpc_status(a));
    }
    // No stop-the-world: RocksDB compacts the whole key space in the
    // background while reads and writes go on; the call answers when done.
    if (defrags_in_flight_.fetch_add(1) >= kMaxDefragmentsInFlight) {
      defrags_in_flight_.fetch_sub(1);
      return finish_now(ctx, grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED,
                                          "etcdserver: too many requests"));
    }
    ServerUnaryReactor* reactor = ctx->DefaultReactor();
    std::shared_ptr<kv::Store> store = node_->store();
    server::Node* node = node_;
    std::thread([this, node, store = std::move(store), reactor, reply]() mutable {
      const auto start = std::chrono::steady_clock::now();
      const uint64_t before = store->disk_size_bytes();
      spdlog::info("defragment: compacting the store online (reads and writes continue), "
                   "disk_bytes={}", before);
      raftkv::Status st = store->compact_disk();
      const auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - start).count();
      if (st.is_ok()) {
        spdlog::info("defragment finished: took_ms={} disk_bytes_before={} disk_bytes_after={}",
                     ms, before, store->disk_size_bytes());
        fill_header(node, reply->mutable_header());
        reply->mutable_header()->set_revision(store->revision());
      } else {
        spdlog::warn("defragment failed: {}", st.to_string());
      }
      store.reset();
      defrags_in_flight_.fetch_sub(1);  // before Finish: the service may go once all finished
      reactor->Finish(to_grpc_status(st));
    }).detach();
    return reactor;
  }

  ServerWriteReactor<etcdserverpb::SnapshotResponse>* Snapshot(
      CallbackServerContext* ctx, const etcdserverpb::SnapshotRequest*) override {
    // A reactor that fails at once.
    class Failed final : public ServerWriteReactor<etcdserverpb::SnapshotResponse> {
     public:
      explicit Failed(const grpc::Status& st) { Finish(st); }
      void OnDone() override { delete this; }
    };
    if (raftkv::Status a = ctx_.auth->check_admin(*ctx); !a.is_ok()) {
      return new Failed(to_grpc_status(a));
    }
    std::shared_ptr<kv::Store> store = node_->store();
    Result<std::unique_ptr<kv::SnapshotStream>> stream = store->snapshot();
    if (!stream) return new Failed(to_grpc_status(stream.status()));
    return new SnapshotWriter(node_, std::move(store), std::move(*stream));
  }

 private:
  const ServiceContext& ctx_;
  server::Node* node_;
  std::atomic<int> defrags_in_flight_{0};
};

}  // namespace

std::unique_ptr<grpc::Service> make_maintenance_service(const ServiceContext& ctx) {
  return std::make_unique<MaintenanceService>(ctx);
}

}  // namespace raftkv::api
