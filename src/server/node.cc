#include "server/node.h"

#include <fcntl.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <grpcpp/grpcpp.h>
#include <spdlog/spdlog.h>

#include "base/check.h"
#include "kv/errors.h"
#include "raft/conf_change.h"
#include "raft/core.h"
#include "storage/disk_log_storage.h"
#include "storage/file_system.h"
#include "server/node_metrics.h"
#include "server/snapshot_image.h"
#include "transport/snapshot_sink.h"
#include "transport/transport.h"
#include "raftkv/membership.grpc.pb.h"

namespace raftkv::server {

namespace fsys = std::filesystem;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

// Entries kept in the log behind a local snapshot, so a follower a little
// behind catches up from the log instead of by snapshot (etcd keeps 5000).
constexpr uint64_t kCatchUpEntries = 5000;
// Readys handled per raft-loop round before looking at the inbox again.
constexpr int kMaxReadysPerRound = 64;
// ReadIndex rounds one member has in flight at once (Node::issue_reads).
constexpr size_t kMaxReadRoundsInFlight = 1;
// How long the apply loop waits for readers to drop a replaced store.
constexpr auto kStoreReleaseWait = 5s;

constexpr const char* kMetaFile = "raftkv.meta";
constexpr const char* kStorePointerFile = "kv.current";
constexpr const char* kDefaultStoreDir = "kv";

Status io_error(const std::string& what, const std::string& path) {
  return Status::io_error(what + " " + path + ": " + std::strerror(errno));
}

// Writes `content` to `path` atomically and durably: temp file, fsync,
// rename, fsync of the directory.
Status write_file_atomic(const std::string& dir, const std::string& name,
                         const std::string& content) {
  const std::string path = dir + "/" + name;
  const std::string tmp = path + ".tmp";
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return io_error("open", tmp);
  size_t off = 0;
  while (off < content.size()) {
    ssize_t n = ::write(fd, content.data() + off, content.size() - off);
    if (n < 0) {
      if (errno == EINTR) continue;
      ::close(fd);
      return io_error("write", tmp);
    }
    off += static_cast<size_t>(n);
  }
  if (::fsync(fd) != 0) {
    ::close(fd);
    return io_error("fsync", tmp);
  }
  ::close(fd);
  if (::rename(tmp.c_str(), path.c_str()) != 0) return io_error("rename", tmp);
  int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd < 0) return io_error("open", dir);
  const int rc = ::fsync(dfd);
  ::close(dfd);
  if (rc != 0) return io_error("fsync", dir);
  return Status::ok();
}

std::optional<std::string> read_small_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

// raftkv.meta: "raftkv-meta 1\ncluster_id <hex>\nmember_id <hex>\n".
std::string encode_meta(uint64_t cluster_id, uint64_t member_id) {
  return "raftkv-meta 1\ncluster_id " + format_id(cluster_id) + "\nmember_id " +
         format_id(member_id) + "\n";
}

Result<std::pair<uint64_t, uint64_t>> decode_meta(const std::string& s) {
  std::istringstream in(s);
  std::string magic, version, k1, v1, k2, v2;
  in >> magic >> version >> k1 >> v1 >> k2 >> v2;
  if (magic != "raftkv-meta" || version != "1" || k1 != "cluster_id" || k2 != "member_id") {
    return Status::corruption(std::string(kMetaFile) + ": unrecognized content");
  }
  uint64_t cluster = 0, member = 0;
  auto parse = [](const std::string& t, uint64_t* out) {
    auto r = std::from_chars(t.data(), t.data() + t.size(), *out, 16);
    return r.ec == std::errc() && r.ptr == t.data() + t.size();
  };
  if (!parse(v1, &cluster) || !parse(v2, &member) || member == 0) {
    return Status::corruption(std::string(kMetaFile) + ": bad id");
  }
  return std::pair<uint64_t, uint64_t>(cluster, member);
}

kv::StoreOptions store_options(const Config& c) {
  kv::StoreOptions o;
  const uint64_t quota = c.quota_backend_bytes_effective();
  o.quota_backend_bytes = quota == 0 ? UINT64_MAX : quota;
  o.max_request_bytes = c.max_request_bytes;
  o.max_txn_ops = static_cast<int>(c.max_txn_ops);
  return o;
}

Status no_leader() { return Status::unavailable("etcdserver: no leader"); }
Status timed_out() { return Status::unavailable("etcdserver: request timed out"); }
Status stopped() { return Status::unavailable("etcdserver: server stopped"); }
Status too_many_requests() {
  return Status::resource_exhausted("etcdserver: too many requests");
}

// Maps a refusal of Core::propose / read_index onto the error etcd gives.
Status map_core_error(const Status& st) {
  switch (st.code()) {
    case Code::kUnavailable: return no_leader();
    case Code::kAborted: return Status::unavailable("etcdserver: leader changed");
    case Code::kInvalidArgument: return Status::invalid_argument("etcdserver: request is too large");
    case Code::kResourceExhausted: return too_many_requests();
    case Code::kFailedPrecondition: return stopped();
    default: return Status::unavailable(st.message());
  }
}

bool is_publish(const raft::Entry& e) {
  return e.type == raft::EntryType::kNormal && !e.data.empty() && e.data[0] == '\0';
}

constexpr char kMemberUpdateTag = '\x01';

bool is_member_update(const raft::Entry& e) {
  return e.type == raft::EntryType::kNormal && !e.data.empty() && e.data[0] == kMemberUpdateTag;
}

Status not_leader() { return Status::failed_precondition("etcdserver: not leader"); }

// Serves the member table to members that join (membership.proto).
class MembershipService final : public raftkvpb::PeerMembership::CallbackService {
 public:
  explicit MembershipService(Node* node) : node_(node) {}
  grpc::ServerUnaryReactor* Members(grpc::CallbackServerContext* ctx,
                                    const raftkvpb::MembershipRequest*,
                                    raftkvpb::MembershipResponse* reply) override {
    reply->set_cluster_id(node_->cluster_id());
    for (const MemberInfo& m : node_->member_list()) {
      raftkvpb::MemberInfo* out = reply->add_members();
      out->set_id(m.record.id);
      out->set_name(m.record.name);
      for (const auto& u : m.record.peer_urls) out->add_peer_urls(u);
      for (const auto& u : m.record.client_urls) out->add_client_urls(u);
      out->set_is_learner(m.is_learner);
    }
    grpc::ServerUnaryReactor* reactor = ctx->DefaultReactor();
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }

 private:
  Node* node_;
};

}  // namespace

// ---------------------------------------------------------------------------
// Start and recovery

Node::Node(const Config& cfg)
    : cfg_(cfg),
      request_timeout_(5000 + 2 * cfg.election_timeout_ms),
      read_seq_(static_cast<uint64_t>(
          std::chrono::system_clock::now().time_since_epoch().count())),
      metrics_(std::make_unique<NodeMetrics>()) {}

Node::~Node() { stop(); }

Result<std::unique_ptr<Node>> Node::start(const Config& cfg) {
  std::unique_ptr<Node> n(new Node(cfg));
  RAFTKV_RETURN_IF_ERROR(n->open());
  RAFTKV_RETURN_IF_ERROR(n->start_network());
  n->start_threads();
  return n;
}

Status Node::open() {
  const std::string& dir = cfg_.data_dir;
  std::error_code ec;
  fsys::create_directories(dir, ec);
  if (ec) return Status::io_error("cannot create data directory " + dir + ": " + ec.message());

  fs_ = storage::make_posix_file_system();
  storage::DiskLogStorageOptions lo;
  lo.snapshots.retain = std::max<uint32_t>(1, cfg_.max_snapshots);
  Result<std::unique_ptr<storage::DiskLogStorage>> log =
      storage::DiskLogStorage::open(fs_.get(), dir, lo);
  if (!log) return log.status();
  log_ = std::move(*log);
  const bool log_empty = log_->last_index() == raft::Index{} && !log_->snapshot_metadata();

  // Identity: from raftkv.meta once bootstrapped, else from the flags.
  std::optional<std::string> meta = read_small_file(dir + "/" + kMetaFile);
  if (meta) {
    Result<std::pair<uint64_t, uint64_t>> ids = decode_meta(*meta);
    if (!ids) return ids.status();
    cluster_id_ = ids->first;
    member_id_ = ids->second;
    if (member_id_ != cfg_.member_id && cfg_.member_id != 0) {
      spdlog::warn("member id {} in {} differs from the one the flags give ({}); keeping the "
                   "stored identity",
                   format_id(member_id_), kMetaFile, format_id(cfg_.member_id));
    }
  } else {
    if (!log_empty) {
      return Status::failed_precondition(dir + " holds a log but no " + kMetaFile +
                                         ": not a raftkv data directory this version wrote");
    }
    if (cfg_.initial_cluster_state == ClusterState::kExisting) {
      // A member added with MemberAdd: learn the cluster id and this member's
      // id from the running members.
      RAFTKV_RETURN_IF_ERROR(join_existing_cluster());
    } else {
      cluster_id_ = cfg_.cluster_id;
      member_id_ = cfg_.member_id;
    }
    RAFTKV_RETURN_IF_ERROR(write_file_atomic(dir, kMetaFile, encode_meta(cluster_id_, member_id_)));
  }
  // A joining member starts with an empty log and configuration: the leader
  // sends it the log (or a snapshot) that adds it.
  if (log_empty && cfg_.initial_cluster_state == ClusterState::kNew) {
    RAFTKV_RETURN_IF_ERROR(bootstrap_new_cluster());
  }

  // The store, in the directory kv.current names; leftovers of an interrupted
  // snapshot install are removed.
  store_dir_name_ = read_small_file(dir + "/" + kStorePointerFile).value_or(kDefaultStoreDir);
  if (store_dir_name_.empty() || store_dir_name_.find('/') != std::string::npos) {
    return Status::corruption(std::string(kStorePointerFile) + " names no store directory");
  }
  for (const auto& de : fsys::directory_iterator(dir, ec)) {
    const std::string name = de.path().filename().string();
    if (de.is_directory() && name.rfind("kv", 0) == 0 && name != store_dir_name_) {
      fsys::remove_all(de.path(), ec);
    }
  }
  Result<std::unique_ptr<kv::Store>> store = kv::Store::open(dir + "/" + store_dir_name_,
                                                             store_options(cfg_));
  if (!store) return store.status();
  store_ = std::move(*store);

  Result<std::pair<raft::HardState, raft::ConfState>> init = log_->initial_state();
  if (!init) return init.status();
  hard_state_ = init->first;
  persisted_commit_ = hard_state_.commit;
  applied_conf_ = init->second;
  applied_conf_raft_ = init->second;
  for (raft::NodeId id : applied_conf_.learners) learners_.insert(id.value());
  term_ = hard_state_.term.value();
  commit_index_ = hard_state_.commit.value();
  last_index_ = log_->last_index().value();

  raft::Index snap_index;
  if (log_->snapshot_metadata()) {
    snap_index = log_->snapshot_metadata()->index;
    applied_term_ = log_->snapshot_metadata()->term;
    applied_term_pub_.store(applied_term_.value());
    RAFTKV_RETURN_IF_ERROR(recover_store_from_snapshot());
  }
  applied_index_ = snap_index;
  last_snapshot_index_ = snap_index;
  if (log_->snapshot_metadata()) last_snapshot_conf_ = log_->snapshot_metadata()->conf_state;

  raft::Config rc;
  rc.id = raft::NodeId(member_id_);
  rc.election_ticks = static_cast<int>(cfg_.election_ticks());
  rc.heartbeat_ticks = 1;
  rc.pre_vote = cfg_.pre_vote;
  rc.check_quorum = true;
  // Room for the request header around the largest request.
  rc.max_proposal_bytes = cfg_.max_request_bytes + 4096;
  rc.seed = member_id_ ^ static_cast<uint64_t>(Clock::now().time_since_epoch().count());
  // Every entry after the snapshot comes out again (see node.h, "Restart").
  rc.applied = snap_index;
  Result<std::unique_ptr<raft::Core>> core = raft::Core::create(rc, log_.get());
  if (!core) return core.status();
  core_ = std::move(*core);
  spdlog::info("raftkv member starting: name={} member_id={} cluster_id={} data_dir={} "
               "term={} commit={} snapshot_index={} store_applied={}",
               cfg_.name, format_id(member_id_), format_id(cluster_id_), dir,
               hard_state_.term.value(), hard_state_.commit.value(), snap_index.value(),
               store_->applied_index().value());
  return Status::ok();
}

Status Node::bootstrap_new_cluster() {
  // Every member of a new cluster writes the same entries at term 1: one
  // kAddNode conf change per initial member, in ascending id order, with the
  // member's name and peer URLs as context. The entries are committed from
  // the start (hard state commit = n), like etcd's bootstrap.
  std::map<uint64_t, MemberRecord> initial;
  for (const InitialMember& m : cfg_.initial_members) {
    MemberRecord& r = initial[m.id];
    r.id = m.id;
    r.name = m.name;
    r.peer_urls.push_back(m.peer_url);
  }
  std::vector<raft::Entry> entries;
  for (auto& [id, r] : initial) {
    std::sort(r.peer_urls.begin(), r.peer_urls.end());
    raft::ConfChange cc;
    cc.changes.push_back({raft::ConfChangeType::kAddNode, raft::NodeId(id)});
    cc.context = encode_member(r);
    raft::Entry e;
    e.term = raft::Term(1);
    e.index = raft::Index(entries.size() + 1);
    e.type = raft::EntryType::kConfChange;
    e.data = raft::encode_conf_change(cc);
    entries.push_back(std::move(e));
  }
  if (initial.find(cfg_.member_id) == initial.end()) {
    return Status::invalid_argument("this member (" + cfg_.name +
                                    ") is not in --initial-cluster");
  }
  raft::HardState hs{raft::Term(1), raft::kNoNode, raft::Index(entries.size())};
  spdlog::info("bootstrapping a new cluster: members={} cluster_id={}", entries.size(),
               format_id(cfg_.cluster_id));
  return log_->save(&hs, entries);
}

Status Node::join_existing_cluster() {
  // etcd's way: ask the members of --initial-cluster (other than this one)
  // for the member table, and find this member in it by its peer URL.
  const std::string& my_url = cfg_.initial_advertise_peer_urls.front();
  std::string last_error = "no other member in --initial-cluster";
  const auto give_up = Clock::now() + request_timeout_;
  for (int round = 0; Clock::now() < give_up; ++round) {
    if (round > 0) std::this_thread::sleep_for(500ms);
    for (const InitialMember& im : cfg_.initial_members) {
      if (im.peer_url == my_url) continue;
      Result<std::string> target = transport::grpc_target_from_url(im.peer_url);
      if (!target) continue;
      auto channel = grpc::CreateChannel(*target, grpc::InsecureChannelCredentials());
      auto stub = raftkvpb::PeerMembership::NewStub(channel);
      grpc::ClientContext ctx;
      ctx.set_deadline(std::chrono::system_clock::now() + 2s);
      raftkvpb::MembershipRequest req;
      raftkvpb::MembershipResponse resp;
      grpc::Status gs = stub->Members(&ctx, req, &resp);
      if (!gs.ok()) {
        last_error = im.peer_url + ": " + gs.error_message();
        continue;
      }
      // A member that is itself still catching up may not list this one yet:
      // ask the next.
      MemberTable peers;
      uint64_t me = 0;
      for (const raftkvpb::MemberInfo& m : resp.members()) {
        MemberRecord r;
        r.id = m.id();
        r.name = m.name();
        r.peer_urls.assign(m.peer_urls().begin(), m.peer_urls().end());
        if (r.id != 0) peers[r.id] = r;
        if (std::find(r.peer_urls.begin(), r.peer_urls.end(), my_url) != r.peer_urls.end()) {
          me = r.id;
        }
      }
      if (me == 0 || resp.cluster_id() == 0) {
        last_error = "this member's peer URL " + my_url + " is not in the member list of the "
                     "cluster at " + im.peer_url + ": add it first (etcdctl member add " +
                     cfg_.name + " --peer-urls=" + my_url + ")";
        continue;
      }
      member_id_ = me;
      join_peers_ = std::move(peers);
      cluster_id_ = resp.cluster_id();
      join_peers_.erase(member_id_);
      spdlog::info("joining the existing cluster {} as member {} (learned from {})",
                   format_id(cluster_id_), format_id(member_id_), im.peer_url);
      return Status::ok();
    }
  }
  return Status::unavailable("--initial-cluster-state existing: cannot join through any member "
                             "of --initial-cluster (" + last_error + ")");
}

Status Node::recover_store_from_snapshot() {
  Result<raft::Snapshot> snap = log_->snapshot();
  if (!snap) return snap.status();
  Result<SnapshotImage> img = SnapshotImage::parse(snap->data);
  if (!img) return img.status();
  members_ = img->members();
  if (store_->applied_index() < snap->metadata.index) {
    // The WAL holds a snapshot the store never finished installing (a crash
    // during install): install it now, before any entry after it is applied.
    spdlog::info("store applied index {} is behind snapshot {}: restoring the store from it",
                 store_->applied_index().value(), snap->metadata.index.value());
    RAFTKV_RETURN_IF_ERROR(swap_store_from_image(snap->data));
  }
  return Status::ok();
}

Status Node::start_network() {
  transport::TransportOptions to;
  to.local_id = raft::NodeId(member_id_);
  to.cluster_id = cluster_id_;
  transport::TransportCallbacks cb;
  cb.deliver = [this](raft::Message&& m) {
    std::lock_guard lk(inbox_mu_);
    if (stopping_ || peer_inbox_.size() >= limits_.max_peer_inbox) return false;
    peer_inbox_.push_back(std::move(m));
    inbox_cv_.notify_one();
    return true;
  };
  cb.unreachable = [this](raft::NodeId id) {
    std::lock_guard lk(inbox_mu_);
    if (unreachable_.size() < 1024) unreachable_.push_back(id);
  };
  cb.snapshot_status = [this](raft::NodeId id, bool ok) {
    std::lock_guard lk(inbox_mu_);
    if (snapshot_reports_.size() < 1024) snapshot_reports_.emplace_back(id, ok);
    inbox_cv_.notify_one();
  };
  const uint64_t quota = cfg_.quota_backend_bytes_effective();
  auto sink = std::make_shared<transport::MemorySnapshotSink>(
      (quota == 0 ? (8ull << 30) : quota * 2) + (64ull << 20));
  if (cfg_.peer_tls.has_certificate()) {
    to.tls_credentials = transport::make_channel_credentials(cfg_.peer_tls);
  }
  transport_ = std::make_unique<transport::Transport>(to, std::move(cb), std::move(sink));

  grpc::ServerBuilder b;
  std::vector<int> ports(cfg_.listen_peer_urls.size(), 0);
  for (size_t i = 0; i < cfg_.listen_peer_urls.size(); ++i) {
    Result<std::string> target = transport::grpc_target_from_url(cfg_.listen_peer_urls[i]);
    if (!target) return target.status();
    const bool tls = cfg_.listen_peer_urls[i].rfind("https://", 0) == 0;
    b.AddListeningPort(*target,
                       tls ? transport::make_server_credentials(cfg_.peer_tls)
                           : grpc::InsecureServerCredentials(),
                       &ports[i]);
  }
  // A batch is ~1 MiB, but a single entry may be as large as a request.
  b.SetMaxReceiveMessageSize(static_cast<int>(2 * kMaxRequestBytes + (16 << 20)));
  transport_->register_service(b);
  membership_service_ = std::make_unique<MembershipService>(this);
  b.RegisterService(membership_service_.get());
  peer_server_ = b.BuildAndStart();
  if (!peer_server_ || std::any_of(ports.begin(), ports.end(), [](int p) { return p == 0; })) {
    return Status::unavailable("cannot listen for peers on " + cfg_.listen_peer_urls[0] +
                               " (address in use?)");
  }
  std::lock_guard lk(members_mu_);
  if (cfg_.initial_cluster_state == ClusterState::kNew) {
    for (const InitialMember& m : cfg_.initial_members) {
      if (m.id != member_id_ && members_.find(m.id) == members_.end()) {
        (void)transport_->add_peer(raft::NodeId(m.id), m.peer_url);
      }
    }
  }
  for (const auto& [id, m] : join_peers_) add_peer_locked_table(m);
  for (const auto& [id, m] : members_) add_peer_locked_table(m);
  return Status::ok();
}

void Node::add_peer_locked_table(const MemberRecord& m) {
  if (m.id == member_id_ || m.peer_urls.empty()) return;
  Status st = transport_->add_peer(raft::NodeId(m.id), m.peer_urls.front());
  if (st.code() == Code::kAlreadyExists) {
    (void)transport_->update_peer(raft::NodeId(m.id), m.peer_urls.front());
  }
}

void Node::start_threads() {
  metrics_->set_sources(NodeMetrics::Sources{
      .committed_index = [this] { return commit_index_.load(); },
      .applied_index = [this] { return store()->applied_index().value(); },
      .pending_proposals = [this] { std::lock_guard lk(wait_mu_); return uint64_t{waiters_.size()}; },
      .db_size_bytes = [this] { return store()->logical_size_bytes(); },
      .keys = [this] { return uint64_t{store()->index_key_count()}; }});
  // The hub starts at the store's revision: before the apply loop runs.
  watch_hub_ = std::make_unique<kv::WatchHub>([this] { return store(); });
  raft_thread_ = std::thread([this] { raft_loop(); });
  apply_thread_ = std::thread([this] { apply_loop(); });
}

// ---------------------------------------------------------------------------
// Client-facing calls

void Node::propose(raftkvpb::InternalRequest req, ProposeCallback done) {
  const uint64_t id = next_request_id_.fetch_add(1);
  req.mutable_header()->set_id(id);
  req.mutable_header()->set_member_id(member_id_);
  std::string data = req.SerializeAsString();
  {
    std::lock_guard lk(wait_mu_);
    if (waiters_.size() >= limits_.max_waiting_proposals) {
      metrics_->on_proposals_failed();
      done(too_many_requests(), {});
      return;
    }
    waiters_[id] = Waiter{std::move(done), Clock::now() + request_timeout_};
  }
  std::unique_lock lk(inbox_mu_);
  if (stopping_) {
    lk.unlock();
    finish_proposal(id, stopped(), {});
    return;
  }
  proposals_.push_back(Proposal{id, std::move(data)});
  inbox_cv_.notify_one();
}

void Node::read_barrier(ReadCallback done) {
  if (waiting_reads_.fetch_add(1) >= limits_.max_waiting_reads) {
    waiting_reads_.fetch_sub(1);
    done(too_many_requests());
    return;
  }
  ReadWaiter w{[this, d = std::move(done)](Status st) {
                 waiting_reads_.fetch_sub(1);
                 d(std::move(st));
               },
               Clock::now() + request_timeout_};
  std::unique_lock lk(inbox_mu_);
  if (stopping_) {
    lk.unlock();
    w.done(stopped());
    return;
  }
  new_reads_.push_back(std::move(w));
  inbox_cv_.notify_one();
}

std::shared_ptr<kv::Store> Node::store() const {
  std::lock_guard lk(store_mu_);
  return store_;
}

NodeStatusView Node::status() const {
  NodeStatusView v;
  v.leader = leader_.load();
  v.term = term_.load();
  v.last_index = last_index_.load();
  v.commit_index = commit_index_.load();
  v.applied_index = store()->applied_index().value();
  {
    std::lock_guard lk(members_mu_);
    v.is_learner = learners_.count(member_id_) != 0;
  }
  return v;
}

MemberTable Node::members() const {
  std::lock_guard lk(members_mu_);
  return members_;
}

std::vector<MemberInfo> Node::member_list() const {
  std::lock_guard lk(members_mu_);
  std::vector<MemberInfo> out;
  out.reserve(members_.size());
  for (const auto& [id, m] : members_) out.push_back(MemberInfo{m, learners_.count(id) != 0});
  return out;
}

void Node::change_members(MemberChange change, MemberCallback done) {
  std::unique_lock lk(inbox_mu_);
  if (stopping_) {
    lk.unlock();
    done(stopped());
    return;
  }
  if (new_member_ops_.size() >= limits_.max_member_ops) {
    lk.unlock();
    done(too_many_requests());
    return;
  }
  new_member_ops_.push_back(MemberOp{std::move(change), std::move(done), Clock::now() + request_timeout_});
  inbox_cv_.notify_one();
}

void Node::move_leader(uint64_t target, MemberCallback done) {
  std::unique_lock lk(inbox_mu_);
  if (stopping_) {
    lk.unlock();
    done(stopped());
    return;
  }
  if (new_moves_.size() >= limits_.max_member_ops) {
    lk.unlock();
    done(too_many_requests());
    return;
  }
  new_moves_.push_back(LeaderMove{target, false, std::move(done), Clock::now() + request_timeout_});
  inbox_cv_.notify_one();
}

void Node::set_removed_listener(std::function<void()> fn) {
  std::lock_guard lk(members_mu_);
  removed_listener_ = std::move(fn);
  if (removed_) removed_listener_();
}

void Node::add_leader_listener(std::function<void(bool)> fn) {
  std::lock_guard lk(inbox_mu_);
  fn(leader_.load() != 0);
  leader_listeners_.push_back(std::move(fn));
}

void Node::clear_leader_listeners() {
  std::lock_guard lk(inbox_mu_);
  leader_listeners_.clear();
}

void Node::finish_proposal(uint64_t id, Status st, raftkvpb::InternalResponse resp) {
  ProposeCallback done;
  {
    std::lock_guard lk(wait_mu_);
    auto it = waiters_.find(id);
    if (it == waiters_.end()) return;  // timed out already
    done = std::move(it->second.done);
    waiters_.erase(it);
  }
  done(std::move(st), std::move(resp));
}

Status Node::timeout_status() const { return leader_.load() == 0 ? no_leader() : timed_out(); }

// ---------------------------------------------------------------------------
// Raft loop

void Node::raft_loop() {
  const auto tick_every = std::chrono::milliseconds(cfg_.heartbeat_interval_ms);
  auto next_tick = Clock::now() + tick_every;
  for (;;) {
    {
      std::unique_lock lk(inbox_mu_);
      inbox_cv_.wait_until(lk, next_tick, [this] {
        return stopping_ || !peer_inbox_.empty() || !proposals_.empty() || !new_reads_.empty() ||
               made_snapshot_ != nullptr || !snapshot_reports_.empty() ||
               !new_member_ops_.empty() || !new_moves_.empty();
      });
      if (stopping_) break;
    }
    drain_inbox();
    const auto now = Clock::now();
    if (now >= next_tick) {
      core_->tick();
      on_tick();
      next_tick += tick_every;
      if (next_tick < now) next_tick = now + tick_every;
    }
    handle_ready();
  }
  // Finish what the core already produced (persist it) before stopping.
  handle_ready();
}

void Node::drain_inbox() {
  std::deque<raft::Message> msgs;
  std::deque<Proposal> props;
  std::vector<ReadWaiter> reads;
  std::unique_ptr<storage::SnapshotWriter> snap;
  std::vector<raft::NodeId> unreachable;
  std::vector<std::pair<raft::NodeId, bool>> snap_reports;
  {
    std::lock_guard lk(inbox_mu_);
    const size_t nm = std::min(peer_inbox_.size(), limits_.max_inbox_per_round);
    msgs.insert(msgs.end(), std::make_move_iterator(peer_inbox_.begin()),
                std::make_move_iterator(peer_inbox_.begin() + nm));
    peer_inbox_.erase(peer_inbox_.begin(), peer_inbox_.begin() + nm);
    const size_t np = std::min(proposals_.size(), limits_.max_inbox_per_round);
    props.insert(props.end(), std::make_move_iterator(proposals_.begin()),
                 std::make_move_iterator(proposals_.begin() + np));
    proposals_.erase(proposals_.begin(), proposals_.begin() + np);
    reads.swap(new_reads_);
    snap.swap(made_snapshot_);
    unreachable.swap(unreachable_);
    snap_reports.swap(snapshot_reports_);
    while (!new_member_ops_.empty()) {
      member_ops_.push_back(std::move(new_member_ops_.front()));
      new_member_ops_.pop_front();
    }
    while (!new_moves_.empty()) {
      moves_.push_back(std::move(new_moves_.front()));
      new_moves_.pop_front();
    }
  }
  const auto received = Clock::now();
  for (raft::Message& m : msgs) {
    metrics_->on_receive(m, received);
    Status st = core_->step(m);
    if (!st.is_ok()) spdlog::debug("raft: step refused: {}", st.to_string());
  }
  for (raft::NodeId id : unreachable) core_->report_unreachable(id);
  for (const auto& [id, ok] : snap_reports) core_->report_snapshot(id, ok);
  for (Proposal& p : props) {
    if (!stalled_.empty()) {  // keep the order behind proposals waiting for a leader
      stalled_.push_back(std::move(p));
      continue;
    }
    Status st = core_->propose(p.data);
    if (st.code() == Code::kUnavailable) {
      stalled_.push_back(std::move(p));
    } else if (!st.is_ok()) {
      metrics_->on_proposals_failed();
      finish_proposal(p.id, map_core_error(st), {});
    }
  }
  for (ReadWaiter& w : reads) unsent_reads_.push_back(std::move(w));
  issue_reads(false);
  process_member_ops();
  process_leader_moves();
  if (snap) persist_local_snapshot(std::move(snap));
}

// ---------------------------------------------------------------------------
// Membership changes and leadership moves (raft loop)

void Node::process_member_ops() {
  const auto now = Clock::now();
  while (!member_ops_.empty()) {
    MemberOp& op = member_ops_.front();
    if (op.deadline <= now) {
      MemberCallback done = std::move(op.done);
      member_ops_.pop_front();
      done(timeout_status());
      continue;
    }
    {
      // One change from this member at a time: the next is checked against
      // the table the previous one produced.
      std::lock_guard lk(member_wait_mu_);
      if (member_waiter_) return;
    }
    Status st = propose_member_op(op);
    if (st.code() == Code::kUnavailable && st.message() == "etcdserver: no leader") return;
    if (st.code() == Code::kAborted) return;  // retried: a conf change or transfer is pending
    if (!st.is_ok()) {
      MemberCallback done = std::move(op.done);
      member_ops_.pop_front();
      done(std::move(st));
      continue;
    }
    member_ops_.pop_front();
  }
}

Status Node::propose_member_op(const MemberOp& op) {
  const MemberChange& c = op.change;
  MembershipView view;
  {
    std::lock_guard lk(members_mu_);
    view.members = members_;
    view.learners = learners_;
  }
  view.strict_reconfig_check = cfg_.strict_reconfig_check;
  view.max_learners = cfg_.max_learners;
  RAFTKV_RETURN_IF_ERROR(check_member_change(view, c));
  if (leader_.load() == 0) return no_leader();
  if (c.kind == MemberChangeKind::kPromote) {
    // Only the leader knows how far the learner got (etcd forwards the call).
    if (core_->role() != raft::Role::kLeader) return not_leader();
    const raft::Progress* pr = core_->tracker().get(raft::NodeId(c.id));
    if (pr == nullptr ||
        !learner_in_sync(pr->match.value(), core_->log().last_index().value())) {
      return Status::failed_precondition(
          "etcdserver: can only promote a learner member which is in sync with leader");
    }
  }
  std::string payload;
  Status st;
  if (c.kind == MemberChangeKind::kUpdate) {
    MemberRecord rec = view.members.at(c.id);
    rec.peer_urls = c.peer_urls;
    payload.assign(1, kMemberUpdateTag);
    payload += encode_member(rec);
  } else {
    raft::ConfChange cc;
    raft::ConfChangeType type = raft::ConfChangeType::kAddNode;
    MemberRecord rec;
    if (c.kind == MemberChangeKind::kAddVoter || c.kind == MemberChangeKind::kAddLearner) {
      rec.id = c.id;
      rec.peer_urls = c.peer_urls;
      if (c.kind == MemberChangeKind::kAddLearner) type = raft::ConfChangeType::kAddLearner;
    } else if (c.kind == MemberChangeKind::kRemove) {
      type = raft::ConfChangeType::kRemoveNode;
    } else {
      rec = view.members.at(c.id);  // promote: keep the member's record
    }
    cc.changes.push_back({type, raft::NodeId(c.id)});
    if (rec.id != 0) cc.context = encode_member(rec);
    payload = raft::encode_conf_change(cc);
  }
  {
    std::lock_guard lk(member_wait_mu_);
    member_waiter_ = MemberWaiter{payload, op.done, op.deadline};
  }
  if (c.kind == MemberChangeKind::kUpdate) {
    st = core_->propose(payload);
  } else {
    Result<raft::ConfChange> cc = raft::decode_conf_change(payload);
    RAFTKV_CHECK(cc.is_ok());
    st = core_->propose_conf_change(*cc);
  }
  if (st.is_ok()) {
    spdlog::info("membership change proposed: {} member {}",
                 c.kind == MemberChangeKind::kAddVoter     ? "add"
                 : c.kind == MemberChangeKind::kAddLearner ? "add learner"
                 : c.kind == MemberChangeKind::kRemove     ? "remove"
                 : c.kind == MemberChangeKind::kUpdate     ? "update"
                                                           : "promote",
                 format_id(c.id));
    return st;
  }
  {
    std::lock_guard lk(member_wait_mu_);
    member_waiter_.reset();
  }
  // A change not yet applied, a joint configuration being left or a leader
  // transfer: retried on the next round (until the deadline).
  if (st.code() == Code::kFailedPrecondition || st.code() == Code::kAborted) {
    return Status::aborted(st.message());
  }
  return map_core_error(st);
}

void Node::finish_member_waiter(const std::string& payload, Status st) {
  MemberCallback done;
  {
    std::lock_guard lk(member_wait_mu_);
    if (!member_waiter_ || member_waiter_->payload != payload) return;
    done = std::move(member_waiter_->done);
    member_waiter_.reset();
  }
  done(std::move(st));
  std::lock_guard lk(inbox_mu_);
  inbox_cv_.notify_one();  // the next queued change may go
}

void Node::process_leader_moves() {
  const auto now = Clock::now();
  for (auto it = moves_.begin(); it != moves_.end();) {
    LeaderMove& mv = *it;
    std::optional<Status> result;
    if (!mv.started) {
      mv.started = true;
      const raft::NodeStatus ns = core_->status();
      const bool voter = std::find(ns.config.voters.begin(), ns.config.voters.end(),
                                   raft::NodeId(mv.target)) != ns.config.voters.end();
      if (core_->role() != raft::Role::kLeader) {
        result = not_leader();
      } else if (mv.target == member_id_) {
        result = Status::ok();
      } else if (!voter) {
        result = Status::failed_precondition("etcdserver: bad leader transferee");
      } else {
        spdlog::info("moving leadership to {}", format_id(mv.target));
        Status st = core_->transfer_leadership(raft::NodeId(mv.target));
        if (!st.is_ok()) {
          result = st.code() == Code::kInvalidArgument
                       ? Status::failed_precondition("etcdserver: bad leader transferee")
                       : map_core_error(st);
        }
      }
    }
    if (!result && leader_.load() == mv.target) result = Status::ok();
    if (!result && mv.deadline <= now) {
      result = Status::unavailable("etcdserver: request timed out, leader transfer took too long");
    }
    if (result) {
      MemberCallback done = std::move(mv.done);
      it = moves_.erase(it);
      done(std::move(*result));
    } else {
      ++it;
    }
  }
}

void Node::notify_removed_members() {
  // A removed member stops replicating at once, so it may never hear that the
  // entry removing it committed. For a while the leader tells it, with the
  // append the Raft rules allow (prev = the removal entry, commit = its index:
  // accepted only by a log holding that entry); then its transport peer goes.
  const auto now = Clock::now();
  std::vector<raft::Message> msgs;
  for (auto it = removal_notices_.begin(); it != removal_notices_.end();) {
    const RemovalNotice& n = it->second;
    if (now >= n.until) {
      transport_->remove_peer(it->first);
      it = removal_notices_.erase(it);
      continue;
    }
    if (core_->role() == raft::Role::kLeader) {
      raft::Message m;
      m.type = raft::MessageType::kAppend;
      m.from = raft::NodeId(member_id_);
      m.to = it->first;
      m.term = core_->term();
      m.log_term = n.log_term;
      m.index = n.index;
      m.commit = n.index;
      msgs.push_back(std::move(m));
    }
    ++it;
  }
  if (!msgs.empty()) transport_->send(std::move(msgs));
}

void Node::maybe_auto_promote() {
  if (!cfg_.auto_promote_learners || core_->role() != raft::Role::kLeader) return;
  const auto now = Clock::now();
  if (now - last_auto_promote_ < std::chrono::milliseconds(cfg_.election_timeout_ms)) return;
  if (!member_ops_.empty()) return;
  {
    std::lock_guard lk(member_wait_mu_);
    if (member_waiter_) return;
  }
  const raft::Index last = core_->log().last_index();
  for (raft::NodeId id : applied_conf_raft_.learners) {
    const raft::Progress* pr = core_->tracker().get(id);
    if (pr == nullptr || !pr->recent_active || !learner_in_sync(pr->match.value(), last.value())) {
      continue;
    }
    last_auto_promote_ = now;
    const uint64_t lid = id.value();
    spdlog::info("learner {} caught up (match {} of {}): promoting it (--auto-promote-learners)",
                 format_id(lid), pr->match.value(), last.value());
    member_ops_.push_back(MemberOp{MemberChange{MemberChangeKind::kPromote, lid, {}},
                                   [lid](Status st) {
                                     if (!st.is_ok()) {
                                       spdlog::warn("automatic promotion of {} failed: {}",
                                                    format_id(lid), st.to_string());
                                     }
                                   },
                                   now + request_timeout_});
    process_member_ops();
    return;
  }
}

void Node::issue_reads(bool retry_inflight) {
  if (retry_inflight) {
    // The leader changed or the request went unanswered: ask again, under a
    // new ctx (a late answer to the old one is ignored).
    const auto stale = Clock::now() - std::chrono::milliseconds(cfg_.election_timeout_ms);
    for (auto it = inflight_reads_.begin(); it != inflight_reads_.end();) {
      if (leader_.load() != last_leader_ || it->second.sent < stale) {
        for (ReadWaiter& w : it->second.waiters) unsent_reads_.push_back(std::move(w));
        it = inflight_reads_.erase(it);
      } else {
        ++it;
      }
    }
  }
  if (unsent_reads_.empty() || leader_.load() == 0) return;
  // One ReadIndex round in flight per member, as etcd: reads arriving
  // meanwhile wait for it to end and then share the next round. Under load
  // the batches grow instead of the heartbeat rounds (each costs a message to
  // and from every follower, and their wake-ups), and a lone read still goes
  // at once.
  if (inflight_reads_.size() >= kMaxReadRoundsInFlight) return;
  // The leader keeps pending reads by context, from every member at once:
  // the context names this member, so two members' reads never collide (a
  // collision failed a read with "a read with this context is already
  // pending"), and read_seq_ starts from the clock, so a restarted member
  // does not reuse a context the leader may still hold.
  const std::string ctx = format_id(member_id_) + "/" + std::to_string(++read_seq_);
  Status st = core_->read_index(ctx);
  if (st.is_ok()) {
    inflight_reads_[ctx] = ReadBatch{std::move(unsent_reads_), Clock::now()};
    unsent_reads_.clear();
  } else if (st.code() != Code::kUnavailable) {
    std::vector<ReadWaiter> failed;
    failed.swap(unsent_reads_);
    for (ReadWaiter& w : failed) w.done(map_core_error(st));
  }
}

void Node::on_tick() {
  const auto now = Clock::now();
  // The only voter need not wait an election timeout to lead (a fresh or
  // restarted single-member cluster serves at once); nobody can be disrupted.
  if (leader_.load() == 0 && core_->role() == raft::Role::kFollower &&
      applied_conf_raft_.voters == std::vector<raft::NodeId>{raft::NodeId(member_id_)} &&
      applied_conf_raft_.voters_outgoing.empty()) {
    core_->campaign();
  }
  // Proposals that found no leader: try again once one is known.
  while (!stalled_.empty() && leader_.load() != 0) {
    bool waiting;
    {
      std::lock_guard lk(wait_mu_);
      waiting = waiters_.count(stalled_.front().id) != 0;
    }
    if (waiting) {
      Status st = core_->propose(stalled_.front().data);
      if (st.code() == Code::kUnavailable) break;
      if (!st.is_ok()) {
        metrics_->on_proposals_failed();
        finish_proposal(stalled_.front().id, map_core_error(st), {});
      }
    }
    stalled_.pop_front();
  }
  // Expired proposals (ids ascend with deadlines).
  std::vector<ProposeCallback> expired;
  {
    std::lock_guard lk(wait_mu_);
    while (!waiters_.empty() && waiters_.begin()->second.deadline <= now) {
      expired.push_back(std::move(waiters_.begin()->second.done));
      waiters_.erase(waiters_.begin());
    }
  }
  metrics_->on_proposals_failed(expired.size());
  for (auto& done : expired) done(timeout_status(), {});
  while (!stalled_.empty() && stalled_.size() > limits_.max_waiting_proposals) stalled_.pop_front();
  // Membership: the change in flight may have expired; queued ones retry.
  MemberCallback member_expired;
  {
    std::lock_guard lk(member_wait_mu_);
    if (member_waiter_ && member_waiter_->deadline <= now) {
      member_expired = std::move(member_waiter_->done);
      member_waiter_.reset();
    }
  }
  if (member_expired) member_expired(timeout_status());
  process_member_ops();
  process_leader_moves();
  maybe_auto_promote();
  notify_removed_members();
  // Reads: retry unanswered ones, fail expired ones.
  issue_reads(true);
  auto expire_reads = [&](std::vector<ReadWaiter>& v) {
    auto keep = std::partition(v.begin(), v.end(), [&](const ReadWaiter& w) { return w.deadline > now; });
    std::vector<ReadWaiter> gone(std::make_move_iterator(keep), std::make_move_iterator(v.end()));
    v.erase(keep, v.end());
    for (ReadWaiter& w : gone) w.done(timeout_status());
  };
  expire_reads(unsent_reads_);
  for (auto it = inflight_reads_.begin(); it != inflight_reads_.end();) {
    expire_reads(it->second.waiters);
    it = it->second.waiters.empty() ? inflight_reads_.erase(it) : std::next(it);
  }
  maybe_publish();
}

void Node::maybe_publish() {
  // Like etcd, a member announces its name and client URLs through the log
  // once it has a leader, and again until it sees the entry applied.
  if (published_.load() || leader_.load() == 0) return;
  const auto now = Clock::now();
  if (now - last_publish_try_ < std::chrono::milliseconds(2 * cfg_.election_timeout_ms)) return;
  last_publish_try_ = now;
  MemberRecord me;
  me.id = member_id_;
  me.name = cfg_.name;
  me.peer_urls = cfg_.initial_advertise_peer_urls;
  me.client_urls = cfg_.advertise_client_urls;
  std::string data(1, '\0');
  data += encode_member(me);
  Status st = core_->propose(std::move(data));
  if (!st.is_ok()) spdlog::debug("publish not proposed: {}", st.to_string());
}

void Node::persist_local_snapshot(std::unique_ptr<storage::SnapshotWriter> made) {
  const raft::SnapshotMetadata& meta = made->metadata();
  const raft::Index idx = meta.index;
  if (log_->snapshot_metadata() && log_->snapshot_metadata()->index >= idx) return;
  if (idx > log_->last_index()) return;
  if (persisted_commit_ < idx) {
    // The snapshot must never be ahead of the durable commit index.
    Status st = log_->save(&hard_state_, {});
    RAFTKV_CHECK_MSG(st.is_ok(), ("WAL write failed: " + st.to_string()).c_str());
    persisted_commit_ = hard_state_.commit;
  }
  // The image is written and synced already: this renames it into place.
  Status st = log_->add_snapshot(*made);
  if (!st.is_ok()) {
    spdlog::error("saving snapshot at index {} failed: {}", idx.value(), st.to_string());
    return;
  }
  const uint64_t margin = std::min<uint64_t>(kCatchUpEntries, cfg_.snapshot_count);
  if (idx.value() > margin) {
    const raft::Index to = idx - margin;
    if (to >= log_->first_index()) {
      st = log_->compact(to);
      if (!st.is_ok()) spdlog::error("log compaction to {} failed: {}", to.value(), st.to_string());
    }
  }
  spdlog::info("snapshot saved: index={} term={} bytes={} log_first_index={}", idx.value(),
               meta.term.value(), made->bytes(), log_->first_index().value());
}

void Node::handle_ready() {
  for (int round = 0; round < kMaxReadysPerRound && core_->has_ready(); ++round) {
    raft::Ready rd = core_->ready();
    bool leader_changed = false;
    if (rd.soft_state) {
      const uint64_t lead = rd.soft_state->leader.value();
      if (lead != leader_.load()) {
        leader_changed = true;
        metrics_->on_leader(lead, leader_.load(), member_id_);
        spdlog::info("raft: leader is now {} (term {})", lead == 0 ? "none" : format_id(lead),
                     core_->term().value());
        leader_ = lead;
        std::lock_guard lk(inbox_mu_);
        for (const auto& listener : leader_listeners_) listener(lead != 0);
      }
    }
    if (rd.hard_state) {
      hard_state_ = *rd.hard_state;
      term_ = hard_state_.term.value();
      commit_index_ = hard_state_.commit.value();
    }
    metrics_->on_send(rd.messages, Clock::now());
    if (!rd.messages.empty()) transport_->send(std::move(rd.messages));
    if (rd.must_sync || !rd.entries.empty() || rd.snapshot) {
      // Group commit: everything this Ready carries, one write, one fsync.
      const auto save_start = Clock::now();
      Status st = log_->save(&hard_state_, rd.entries, rd.snapshot ? &*rd.snapshot : nullptr);
      metrics_->observe_wal_fsync(Clock::now() - save_start);
      if (!st.is_ok()) {
        spdlog::critical("WAL write failed, stopping: {}", st.to_string());
        RAFTKV_CHECK_MSG(false, "WAL write failed");
      }
      persisted_commit_ = hard_state_.commit;
    }
    std::vector<raft::Message> after =
        rd.messages_after_persist.release(raft::Persisted::kHardStateEntriesAndSnapshotAreDurable);
    if (!after.empty()) transport_->send(std::move(after));
    if (rd.snapshot) {
      applied_conf_raft_ = rd.snapshot->metadata.conf_state;
      push_apply(InstallSnapshot{*rd.snapshot});
    }
    if (!rd.committed_entries.empty()) {
      std::set<raft::Index> rejected;
      for (const raft::Entry& e : rd.committed_entries) {
        if (e.type != raft::EntryType::kConfChange) continue;
        Result<raft::ConfChange> cc = raft::decode_conf_change(e.data);
        RAFTKV_CHECK_MSG(cc.is_ok(), "undecodable conf change in the committed log");
        for (const raft::ConfChangeSingle& c : cc->changes) {
          if (c.type == raft::ConfChangeType::kRemoveNode && c.node_id.value() != member_id_) {
            removal_notices_[c.node_id] = RemovalNotice{
                e.term, e.index,
                Clock::now() + std::chrono::milliseconds(2 * cfg_.election_timeout_ms)};
          }
        }
        Result<raft::ConfState> cs = core_->apply_conf_change(*cc);
        if (cs) {
          applied_conf_raft_ = *cs;
        } else {
          spdlog::warn("conf change at index {} rejected: {}", e.index.value(),
                       cs.status().to_string());
          rejected.insert(e.index);
        }
      }
      push_apply(CommittedBatch{rd.committed_entries, applied_conf_raft_, std::move(rejected)});
    }
    for (const raft::ReadState& rs : rd.read_states) {
      auto it = inflight_reads_.find(rs.request_ctx);
      if (it == inflight_reads_.end()) continue;
      push_apply(ReleaseReads{rs.index, std::move(it->second.waiters)});
      inflight_reads_.erase(it);
    }
    last_index_ = core_->log().last_index().value();
    core_->advance(rd);
    // A round ended: the reads that waited for it go now.
    if (!rd.read_states.empty()) issue_reads(false);
    if (leader_changed) {
      issue_reads(true);
      last_leader_ = leader_.load();
      process_leader_moves();
    }
  }
}

namespace {
// Committed batches up to this many entries, and reads up to this many, may
// be handled by the raft loop itself when the apply loop is idle
// (Node::push_apply).
constexpr size_t kInlineApplyEntries = 8;
// The snapshot thread's nice value (Node::maybe_make_snapshot).
constexpr int kSnapshotThreadNice = 10;
}  // namespace

void Node::push_apply(ApplyItem item) {
  // A small item that would find the apply loop idle is processed right
  // here: handing it over costs a wake-up and a context switch, which is most
  // of a lone put's or read's latency once the fsync is fast. Holding
  // apply_exec_mu_ with the queue empty means every earlier item is done, so
  // the order of application is kept; larger batches still go to the apply
  // loop, which then works in parallel with the next WAL write.
  // (Released reads run their range in the callback, so their count is
  // bounded too.)
  const auto* batch = std::get_if<CommittedBatch>(&item);
  const auto* reads = std::get_if<ReleaseReads>(&item);
  if ((batch != nullptr && batch->entries.size() <= kInlineApplyEntries) ||
      (reads != nullptr && reads->waiters.size() <= kInlineApplyEntries)) {
    std::unique_lock exec(apply_exec_mu_, std::try_to_lock);
    if (exec.owns_lock()) {
      bool idle = false;
      {
        std::lock_guard lk(apply_mu_);
        idle = apply_queue_.empty();
      }
      if (idle) {
        process_apply_item(item);
        return;
      }
    }
  }
  std::unique_lock lk(apply_mu_);
  // Back-pressure: the raft loop waits while the apply loop is behind.
  apply_space_cv_.wait(lk, [this] { return apply_queue_.size() < limits_.max_apply_queue; });
  apply_queue_.push_back(std::move(item));
  apply_cv_.notify_one();
}

// ---------------------------------------------------------------------------
// Apply loop

void Node::apply_loop() {
  for (;;) {
    {
      std::unique_lock lk(apply_mu_);
      apply_cv_.wait(lk, [this] { return apply_stop_ || !apply_queue_.empty(); });
      if (apply_queue_.empty()) break;  // stopping and drained
    }
    // Only this thread pops, so the queue is still non-empty; the raft loop
    // applies inline only while it holds apply_exec_mu_ and sees it empty.
    std::lock_guard exec(apply_exec_mu_);
    ApplyItem item;
    {
      std::lock_guard lk(apply_mu_);
      item = std::move(apply_queue_.front());
      apply_queue_.pop_front();
      apply_space_cv_.notify_one();
    }
    process_apply_item(item);
  }
  std::lock_guard exec(apply_exec_mu_);
  reap_snapshot_job(true);
}

void Node::process_apply_item(ApplyItem& item) {
  if (auto* b = std::get_if<CommittedBatch>(&item)) {
    apply_committed(*b);
  } else if (auto* s = std::get_if<InstallSnapshot>(&item)) {
    install_snapshot(s->snapshot);
  } else if (auto* r = std::get_if<ReleaseReads>(&item)) {
    for (ReadWaiter& w : r->waiters) pending_reads_.emplace(r->index, std::move(w));
  }
  release_reads();
  maybe_make_snapshot();
}

void Node::apply_member_payload(const raft::Entry& e, bool rejected) {
  if (e.type == raft::EntryType::kConfChange) {
    if (rejected) return;  // the Core refused it on every member alike
    Result<raft::ConfChange> cc = raft::decode_conf_change(e.data);
    RAFTKV_CHECK(cc.is_ok());
    std::lock_guard lk(members_mu_);
    for (const raft::ConfChangeSingle& c : cc->changes) {
      const uint64_t id = c.node_id.value();
      if (c.type == raft::ConfChangeType::kRemoveNode) {
        members_.erase(id);
        learners_.erase(id);
        // Another member's transport peer goes later, on the raft loop
        // (removal_notices_), after it was told of its removal.
        if (id == member_id_ && !removed_) {
          removed_ = true;
          spdlog::warn("this member ({}) was removed from the cluster at index {}: stopping",
                       format_id(member_id_), e.index.value());
          if (removed_listener_) removed_listener_();
        }
        continue;
      }
      Result<MemberRecord> rec = decode_member(cc->context);
      if (!rec || rec->id != id) continue;  // no metadata for this member in the entry
      MemberRecord& m = members_[id];
      const std::vector<std::string> client_urls = m.client_urls;
      m = *rec;
      if (m.client_urls.empty()) m.client_urls = client_urls;
      add_peer_locked_table(m);
    }
    return;
  }
  Result<MemberRecord> rec = decode_member(std::string_view(e.data).substr(1));
  if (!rec) {
    spdlog::warn("undecodable member entry at index {}", e.index.value());
    return;
  }
  std::lock_guard lk(members_mu_);
  if (is_member_update(e)) {
    auto it = members_.find(rec->id);
    if (it == members_.end()) return;  // removed meanwhile
    it->second.peer_urls = rec->peer_urls;
    add_peer_locked_table(it->second);
    return;
  }
  auto it = members_.find(rec->id);
  if (it == members_.end()) return;  // published by a member no longer in the cluster
  it->second.name = rec->name;
  it->second.client_urls = rec->client_urls;
  if (!rec->peer_urls.empty()) it->second.peer_urls = rec->peer_urls;
  if (rec->id == member_id_ && rec->name == cfg_.name &&
      rec->client_urls == cfg_.advertise_client_urls) {
    published_ = true;
  }
}

void Node::apply_committed(CommittedBatch& b) {
  std::shared_ptr<kv::Store> store = this->store();
  const raft::Index store_applied = store->applied_index();
  std::vector<raftkvpb::InternalRequest> reqs;
  reqs.reserve(b.entries.size());  // no reallocation: batch keeps pointers
  std::vector<kv::ApplyEntry> batch;
  batch.reserve(b.entries.size());
  std::vector<std::pair<std::string, Status>> member_done;
  for (const raft::Entry& e : b.entries) {
    if (e.index <= applied_index_) continue;  // covered by an installed snapshot
    applied_index_ = e.index;
    applied_term_ = e.term;
    applied_term_pub_.store(e.term.value());
    const bool member_payload =
        e.type == raft::EntryType::kConfChange || is_publish(e) || is_member_update(e);
    if (member_payload) {
      const bool rejected = b.rejected.count(e.index) != 0;
      apply_member_payload(e, rejected);
      if (e.type == raft::EntryType::kConfChange || is_member_update(e)) {
        member_done.emplace_back(e.data, rejected ? Status::failed_precondition(
                                                        "etcdserver: re-configuration failed: "
                                                        "the change does not fit the current "
                                                        "configuration")
                                                  : Status::ok());
      }
    }
    if (e.index <= store_applied) continue;  // replayed after a restart
    kv::ApplyEntry ae{e.index, nullptr};
    if (!member_payload && !e.data.empty()) {
      reqs.emplace_back();
      RAFTKV_CHECK_MSG(reqs.back().ParseFromString(e.data), "undecodable entry in the committed log");
      ae.request = &reqs.back();
    }
    batch.push_back(ae);
  }
  applied_conf_ = b.conf_state;
  {
    std::lock_guard lk(members_mu_);
    learners_.clear();
    for (raft::NodeId id : applied_conf_.learners) learners_.insert(id.value());
  }
  for (auto& [payload, st] : member_done) finish_member_waiter(payload, std::move(st));
  for (size_t off = 0; off < batch.size(); off += kv::Store::kMaxApplyBatchEntries) {
    const size_t n = std::min(batch.size() - off, kv::Store::kMaxApplyBatchEntries);
    std::span<const kv::ApplyEntry> part(batch.data() + off, n);
    const auto commit_start = Clock::now();
    Result<kv::ApplyResult> r = store->apply(part);
    metrics_->observe_backend_commit(Clock::now() - commit_start);
    if (!r) {
      spdlog::critical("state machine apply failed, stopping: {}", r.status().to_string());
      RAFTKV_CHECK_MSG(false, "state machine apply failed");
    }
    watch_hub_->feed(r->events);
    size_t cursor = 0;
    for (kv::ApplyOutcome& o : r->outcomes) {
      while (cursor < n && part[cursor].index != o.index) ++cursor;
      RAFTKV_CHECK(cursor < n && part[cursor].request != nullptr);
      if (part[cursor].request->header().member_id() == member_id_) {
        maybe_raise_nospace(*store, o);
        finish_proposal(o.request_id, std::move(o.status), std::move(o.response));
      }
    }
  }
}

void Node::maybe_raise_nospace(const kv::Store& store, const kv::ApplyOutcome& o) {
  // etcd: the member that finds a write over the quota raises NOSPACE for
  // itself, through the log, so every member refuses writes from then on.
  if (o.status.code() != Code::kResourceExhausted ||
      o.status.message() != kv::errors::no_space().message() ||
      store.alarm_active(etcdserverpb::AlarmType::NOSPACE) || raising_nospace_.exchange(true)) {
    return;
  }
  spdlog::warn("backend quota exceeded (logical size {} bytes): raising the NOSPACE alarm",
               store.logical_size_bytes());
  raftkvpb::InternalRequest req;
  auto* a = req.mutable_alarm();
  a->set_action(etcdserverpb::AlarmRequest::ACTIVATE);
  a->set_memberid(member_id_);
  a->set_alarm(etcdserverpb::AlarmType::NOSPACE);
  store.auth().stamp_as_root(&req);
  propose(std::move(req), [this](Status st, raftkvpb::InternalResponse) {
    raising_nospace_ = false;
    if (!st.is_ok()) spdlog::warn("raising NOSPACE failed: {}", st.to_string());
  });
}

Status Node::bootstrap_data_dir(const Config& cfg) {
  std::error_code ec;
  fsys::create_directories(cfg.data_dir, ec);
  if (ec) return Status::io_error("cannot create " + cfg.data_dir + ": " + ec.message());
  Node n(cfg);
  std::call_once(n.stop_once_, [] {});  // nothing was started: nothing to stop
  n.fs_ = storage::make_posix_file_system();
  storage::DiskLogStorageOptions lo;
  lo.snapshots.retain = std::max<uint32_t>(1, cfg.max_snapshots);
  Result<std::unique_ptr<storage::DiskLogStorage>> log =
      storage::DiskLogStorage::open(n.fs_.get(), cfg.data_dir, lo);
  if (!log) return log.status();
  if ((*log)->last_index() != raft::Index{} || (*log)->snapshot_metadata()) {
    return Status::failed_precondition(cfg.data_dir + " already holds a log");
  }
  n.log_ = std::move(*log);
  RAFTKV_RETURN_IF_ERROR(n.bootstrap_new_cluster());
  return write_file_atomic(cfg.data_dir, kMetaFile, encode_meta(cfg.cluster_id, cfg.member_id));
}

Status Node::swap_store_from_image(const std::string& image) {
  Result<SnapshotImage> img = SnapshotImage::parse(image);
  if (!img) return img.status();
  const std::string dir = cfg_.data_dir;
  const std::string new_name =
      "kv." + std::to_string(Clock::now().time_since_epoch().count());
  std::error_code ec;
  fsys::remove_all(dir + "/" + new_name, ec);
  Result<std::unique_ptr<kv::Store>> fresh =
      kv::Store::restore(dir + "/" + new_name, store_options(cfg_), img->chunks());
  if (!fresh) return fresh.status();
  RAFTKV_RETURN_IF_ERROR(write_file_atomic(dir, kStorePointerFile, new_name));
  std::shared_ptr<kv::Store> old;
  {
    std::lock_guard lk(store_mu_);
    old = std::move(store_);
    store_ = std::move(*fresh);
  }
  const std::string old_name = store_dir_name_;
  store_dir_name_ = new_name;
  {
    std::lock_guard lk(members_mu_);
    members_ = img->members();
  }
  if (old) {
    // Readers may still hold the old store for a moment; close it here (this
    // is its apply thread) once they let go, then delete its directory.
    const auto deadline = Clock::now() + kStoreReleaseWait;
    while (old.use_count() > 1 && Clock::now() < deadline) std::this_thread::sleep_for(1ms);
    if (old.use_count() == 1) {
      old.reset();
      fsys::remove_all(dir + "/" + old_name, ec);
    }
  }
  return Status::ok();
}

void Node::install_snapshot(const raft::Snapshot& snap) {
  const raft::Index idx = snap.metadata.index;
  spdlog::info("installing snapshot from the leader: index={} term={} bytes={}", idx.value(),
               snap.metadata.term.value(), snap.data.size());
  // A local snapshot being written reads the store about to be replaced.
  reap_snapshot_job(true);
  Status st = swap_store_from_image(snap.data);
  if (!st.is_ok()) {
    spdlog::critical("snapshot install failed, stopping: {}", st.to_string());
    RAFTKV_CHECK_MSG(false, "snapshot install failed");
  }
  watch_hub_->on_store_swapped();
  {
    std::lock_guard lk(members_mu_);
    for (const auto& [id, m] : members_) add_peer_locked_table(m);
  }
  applied_index_ = idx;
  applied_term_ = snap.metadata.term;
  applied_term_pub_.store(applied_term_.value());
  applied_conf_ = snap.metadata.conf_state;
  {
    std::lock_guard lk(members_mu_);
    learners_.clear();
    for (raft::NodeId id : applied_conf_.learners) learners_.insert(id.value());
  }
  last_snapshot_index_ = idx;
  last_snapshot_conf_ = snap.metadata.conf_state;
}

void Node::release_reads() {
  if (pending_reads_.empty()) return;
  const raft::Index applied = store()->applied_index();
  while (!pending_reads_.empty() && pending_reads_.begin()->first <= applied) {
    ReadWaiter w = std::move(pending_reads_.begin()->second);
    pending_reads_.erase(pending_reads_.begin());
    w.done(Status::ok());
  }
}

namespace {

// True if `cs` has a member (voter or learner) that `snap` does not.
bool has_member_missing_from(const raft::ConfState& cs, const raft::ConfState& snap) {
  auto in_snap = [&](raft::NodeId id) {
    for (const auto* v : {&snap.voters, &snap.learners, &snap.voters_outgoing}) {
      if (std::find(v->begin(), v->end(), id) != v->end()) return true;
    }
    return false;
  };
  for (const auto* v : {&cs.voters, &cs.learners, &cs.voters_outgoing}) {
    for (raft::NodeId id : *v) {
      if (!in_snap(id)) return true;
    }
  }
  return false;
}

}  // namespace

void Node::maybe_make_snapshot() {
  if (cfg_.snapshot_count == 0) return;
  if (snapshot_job_ != nullptr) {
    if (!snapshot_job_->done.load(std::memory_order_acquire)) return;  // one at a time
    reap_snapshot_job(false);
  }
  // A member added after the newest snapshot is not in that snapshot's
  // configuration, and Raft has it refuse the snapshot (Core::restore: it
  // cannot tell that snapshot from one of a configuration it was removed
  // from). Once the log is compacted past its start, the leader has nothing
  // else to send it, so it would wait for the next periodic snapshot (in an
  // idle cluster, forever). A snapshot is therefore taken as soon as a member
  // is applied that the newest snapshot lacks; without any snapshot the log is
  // complete and the member catches up from it.
  const bool member_added = last_snapshot_index_ != raft::Index{} &&
                            has_member_missing_from(applied_conf_, last_snapshot_conf_);
  if (!member_added &&
      distance(last_snapshot_index_, std::max(last_snapshot_index_, applied_index_)) <
          cfg_.snapshot_count) {
    return;
  }
  if (applied_index_ <= last_snapshot_index_) return;
  std::shared_ptr<kv::Store> store = this->store();
  if (store->applied_index() != applied_index_) return;  // still replaying
  // A RocksDB snapshot: the state as of applied_index_, taken here so the
  // apply loop can go on writing while the snapshot thread reads it.
  Result<std::unique_ptr<kv::SnapshotStream>> view = store->snapshot();
  if (!view) {
    spdlog::error("store snapshot failed: {}", view.status().to_string());
    return;
  }
  RAFTKV_CHECK((*view)->applied_index() == applied_index_);
  if (member_added) {
    spdlog::info("snapshot at index {}: the configuration gained a member since the last one",
                 applied_index_.value());
  }
  auto job = std::make_unique<SnapshotJob>();
  job->metadata.index = applied_index_;
  job->metadata.term = applied_term_;
  job->metadata.conf_state = applied_conf_;
  job->prev_index = last_snapshot_index_;
  job->prev_conf = last_snapshot_conf_;
  last_snapshot_index_ = applied_index_;
  last_snapshot_conf_ = applied_conf_;
  SnapshotJob* j = job.get();
  job->thread = std::thread([this, j, store = std::move(store), stream = std::move(*view),
                             members = members()]() mutable {
    // Below the loops: reading and encoding a large image must not take
    // their CPU (on a single node under an open-loop put, p99 went from 35 to
    // 9 ms with this and the snapshot writer's periodic sync;
    // docs/performance.md). Linux applies a thread's nice value to it alone.
    if (::setpriority(PRIO_PROCESS, static_cast<id_t>(::gettid()), kSnapshotThreadNice) != 0) {
      spdlog::debug("snapshot thread: setpriority failed: {}", std::strerror(errno));
    }
    const auto start = Clock::now();
    Status st = write_local_snapshot(*j, *store, *stream, members);
    stream.reset();  // releases the RocksDB snapshot before the store may go
    store.reset();
    if (st.is_ok()) {
      spdlog::debug("snapshot at index {} written in {} ms", j->metadata.index.value(),
                    std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start)
                        .count());
    }
    j->result = std::move(st);
    j->done.store(true, std::memory_order_release);
  });
  snapshot_job_ = std::move(job);
}

Status Node::write_local_snapshot(SnapshotJob& job, kv::Store& store, kv::SnapshotStream& stream,
                                  const MemberTable& members) {
  // Flushed first: the store's durable applied index must never be below the
  // snapshot's (the log before it may be discarded). The flush persists at
  // least everything the RocksDB snapshot holds.
  RAFTKV_RETURN_IF_ERROR(store.flush());
  Result<std::unique_ptr<storage::SnapshotWriter>> w =
      log_->snapshot_store().begin(job.metadata);
  if (!w) return w.status();
  RAFTKV_RETURN_IF_ERROR(
      write_snapshot_image(members, stream, [&job, &w](std::string_view piece) {
        if (job.cancel.load(std::memory_order_relaxed)) {
          return Status::aborted("snapshot cancelled");
        }
        return (*w)->append(piece);
      }));
  RAFTKV_RETURN_IF_ERROR((*w)->seal());
  std::unique_ptr<storage::SnapshotWriter> replaced;
  {
    std::lock_guard lk(inbox_mu_);
    replaced = std::move(made_snapshot_);  // not taken yet: the newer one wins
    made_snapshot_ = std::move(*w);
    inbox_cv_.notify_one();
  }
  return Status::ok();
}

void Node::reap_snapshot_job(bool cancel) {
  if (snapshot_job_ == nullptr) return;
  if (cancel) snapshot_job_->cancel.store(true);
  snapshot_job_->thread.join();
  const Status& st = snapshot_job_->result;
  if (!st.is_ok()) {
    if (st.code() != Code::kAborted) {
      spdlog::error("writing the snapshot at index {} failed: {}",
                    snapshot_job_->metadata.index.value(), st.to_string());
    }
    // Not made: the next one is due at once (unless a newer state replaced it).
    if (last_snapshot_index_ == snapshot_job_->metadata.index) {
      last_snapshot_index_ = snapshot_job_->prev_index;
      last_snapshot_conf_ = snapshot_job_->prev_conf;
    }
  }
  snapshot_job_.reset();
}

// ---------------------------------------------------------------------------
// Stop

void Node::stop() {
  std::call_once(stop_once_, [this] {
    metrics_->clear_sources();
    {
      std::lock_guard lk(inbox_mu_);
      stopping_ = true;
      inbox_cv_.notify_all();
    }
    if (raft_thread_.joinable()) raft_thread_.join();
    {
      std::lock_guard lk(apply_mu_);
      apply_stop_ = true;
      apply_cv_.notify_all();
    }
    if (apply_thread_.joinable()) apply_thread_.join();
    if (watch_hub_) watch_hub_->stop();  // its worker reads the store closed below
    // Everything still waiting fails: nothing more will be applied here.
    std::map<uint64_t, Waiter> waiters;
    {
      std::lock_guard lk(wait_mu_);
      waiters.swap(waiters_);
    }
    metrics_->on_proposals_failed(waiters.size());
    for (auto& [id, w] : waiters) w.done(stopped(), {});
    std::vector<ReadWaiter> reads;
    {
      std::lock_guard lk(inbox_mu_);
      reads.swap(new_reads_);
    }
    for (ReadWaiter& w : unsent_reads_) reads.push_back(std::move(w));
    for (auto& [ctx, b] : inflight_reads_) {
      for (ReadWaiter& w : b.waiters) reads.push_back(std::move(w));
    }
    for (auto& [idx, w] : pending_reads_) reads.push_back(std::move(w));
    unsent_reads_.clear();
    inflight_reads_.clear();
    pending_reads_.clear();
    for (ReadWaiter& w : reads) w.done(stopped());
    if (transport_) transport_->stop();
    if (peer_server_) peer_server_->Shutdown(std::chrono::system_clock::now() + 2s);
    std::shared_ptr<kv::Store> store;
    {
      std::lock_guard lk(store_mu_);
      store = std::move(store_);
    }
    if (store) {
      Status st = store->close();
      if (!st.is_ok()) spdlog::error("closing the store: {}", st.to_string());
    }
    spdlog::info("raftkv member stopped");
  });
}

}  // namespace raftkv::server
