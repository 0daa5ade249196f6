#include "sim/simulation.h"

#include <algorithm>
#include <chrono>
#include <deque>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <queue>
#include <set>
#include <unordered_map>

#include "base/check.h"
#include "kv/lessor.h"
#include "kv/watch_hub.h"
#include "raft/conf_change.h"
#include "raft/core.h"
#include "raftkv/internal.pb.h"
#include "sim/checker.h"
#include "sim/history.h"
#include "sim/lease_check.h"
#include "sim/machine.h"
#include "sim/rng.h"
#include "sim/watch_check.h"
#include "storage/disk_log_storage.h"
#include "storage/fault_file_system.h"

namespace raftkv::sim {

using raft::ConfChange;
using raft::ConfChangeSingle;
using raft::ConfChangeType;
using raft::Entry;
using raft::EntryType;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;
using raft::Ready;
using raft::Role;
using raft::Term;

Result<uint32_t> parse_fault_classes(const std::string& spec) {
  uint32_t mask = 0;
  size_t start = 0;
  while (start <= spec.size()) {
    size_t comma = spec.find(',', start);
    if (comma == std::string::npos) comma = spec.size();
    const std::string part = spec.substr(start, comma - start);
    if (part == "all") mask |= kFaultAll;
    else if (part == "network") mask |= kFaultNetwork;
    else if (part == "partition") mask |= kFaultPartition;
    else if (part == "crash") mask |= kFaultCrash;
    else if (part == "membership") mask |= kFaultMembership;
    else if (part == "figure8") mask |= kFaultFigure8;
    else if (part == "none") mask |= 0;
    else return Status::invalid_argument("unknown fault class '" + part +
                                         "' (all|network|crash|partition|membership|figure8|none)");
    start = comma + 1;
  }
  return mask;
}

std::string fault_classes_name(uint32_t mask) {
  if (mask == 0) return "none";
  std::string s;
  auto add = [&](uint32_t bit, const char* name) {
    if ((mask & bit) == 0) return;
    if (!s.empty()) s += ",";
    s += name;
  };
  add(kFaultNetwork, "network");
  add(kFaultPartition, "partition");
  add(kFaultCrash, "crash");
  add(kFaultMembership, "membership");
  add(kFaultFigure8, "figure8");
  return s;
}

namespace {

constexpr uint64_t kMs = 1000;
constexpr uint64_t kSec = 1000 * kMs;
constexpr size_t kMaxNodes = 16;
constexpr int kMaxAddedNodes = 3;
constexpr uint64_t kLivenessBoundUs = 20 * kSec;   // after healing: a leader and a committed write
constexpr uint64_t kConvergeBoundUs = 20 * kSec;   // then every member applied everything
constexpr uint64_t kMaxEventsPerRun = 20'000'000;  // a bound on the main loop
constexpr int kMaxReadyRoundsPerEvent = 1000;
// Client timeout events carry (retry flag << 63) | (attempt << 48) | op id.
constexpr int kAttemptShift = 48;
constexpr uint64_t kLessorTickUs = 100 * kMs;  // the server ticks its lessor every heartbeat
constexpr int kMaxLeasesPerClient = 3;

uint64_t fnv1a(std::string_view s, uint64_t h = 1469598103934665603ull) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}
uint64_t mix(uint64_t h, uint64_t v) {
  uint64_t s = h ^ v;
  return splitmix64(s);
}

const char* msg_type_name(MessageType t) {
  switch (t) {
    case MessageType::kAppend: return "App";
    case MessageType::kAppendResponse: return "AppResp";
    case MessageType::kVote: return "Vote";
    case MessageType::kVoteResponse: return "VoteResp";
    case MessageType::kPreVote: return "PreVote";
    case MessageType::kPreVoteResponse: return "PreVoteResp";
    case MessageType::kHeartbeat: return "Hb";
    case MessageType::kHeartbeatResponse: return "HbResp";
    case MessageType::kSnapshot: return "Snap";
    case MessageType::kTimeoutNow: return "TimeoutNow";
    case MessageType::kReadIndex: return "ReadIndex";
    case MessageType::kReadIndexResponse: return "ReadIndexResp";
    case MessageType::kPropose: return "Propose";
    case MessageType::kTransferLeader: return "TransferLeader";
  }
  return "?";
}

/// A simulated node: its disk survives crashes, everything else is rebuilt.
struct Node {
  NodeId id;
  std::unique_ptr<storage::FaultFileSystem> fs;  // the simulated disk
  std::string kv_dir;                            // RocksDB's (real) directories: kv_dir.<kv_gen>
  uint64_t kv_gen = 0;  // the store in use (a snapshot install builds the next one)
  std::unique_ptr<storage::DiskLogStorage> log;
  std::unique_ptr<Machine> machine;
  ReferenceDisk reference_disk;  // the reference machine's durable state
  std::unique_ptr<raft::Core> core;
  // kv::Store runs: the node's watch hub (real kv code, no worker thread: the
  // simulator runs its catch-up work inline). Rebuilt at every start.
  std::unique_ptr<kv::WatchHub> hub;
  // kv::Store runs: the node's lessor (real kv code, ticked on simulated
  // time; its deadlines are in memory, so a restart builds a new one).
  std::unique_ptr<kv::Lessor> lessor;
  bool alive = false;
  bool removed = false;  // removed from the cluster and stopped for good
  bool joined = false;   // in the configuration (initial voter, or its AddLearner applied)
  bool stop_scheduled = false;
  uint64_t incarnation = 0;
  uint64_t tick_us = 10 * kMs;  // this node's tick period (clock drift)
  uint64_t paused_until_us = 0;
  Index applied;  // last committed entry handed to the state machine
  Term applied_term;  // term of that entry (0 until this incarnation applied one)
  // 1..4: crash inside the next Ready at that stage; 5: the disk fails part
  // way through the next snapshot save; 6: crash after the next snapshot is
  // saved, before the log is compacted.
  int crash_at_stage = 0;
  Index last_snapshot;  // newest snapshot this node made or installed
  bool snapshot_due = false;  // a member was added: the next snapshot must include it
  // Client requests this node is serving.
  std::map<uint64_t, int> pending_writes;          // op id -> client
  std::map<uint64_t, int> pending_lease_ops;       // op id -> lease client (grants, revokes)
  struct WaitingRead {
    Index index;  // serve once applied >= index
    int client = 0;
    uint64_t op_id = 0;
  };
  std::map<std::string, WaitingRead> pending_read_ctx;  // ReadIndex ctx -> reader
  std::vector<WaitingRead> reads_ready;                 // confirmed by the leader
};

enum class EvKind : uint8_t {
  kTick,
  kDeliver,
  kClientNext,
  kClientTimeout,
  kClientArrive,
  kFault,
  kHeal,
  kFlap,
  kRestart,
  kAdmin,
  kStopRemoved,
  kCrashIncarnation,
  kEndFaults,
  kLivenessCheck,
  kWatchPoll,
  kCompact,
  kLessorTick,
  kLeaseStep,
  kLeaseArrive,
  kLeaseReply,
  kLeaseTimeout,
};

struct Event {
  uint64_t at_us;
  uint64_t seq;
  EvKind kind;
  int a = 0;       // node or client
  uint64_t b = 0;  // incarnation, op id, message key, ...
  bool operator>(const Event& o) const {
    return at_us != o.at_us ? at_us > o.at_us : seq > o.seq;
  }
};

/// A client's operation in flight.
struct ClientState {
  int index = 0;
  std::optional<size_t> op;  // index into history_ of the op in flight
  int attempts = 0;
  NodeId node;               // node currently serving it
  std::string read_ctx;
  bool serializable = false;
  uint64_t seq = 0;
  bool stopped = false;
};

/// A watch client: one watcher on a key or range, through a node's WatchHub.
/// When its node crashes or is removed it re-watches, on some member, from
/// its last revision + 1 (as etcd clients do).
struct WatchClient {
  WatchRecord record;
  NodeId node;                 // node serving the watcher (0: none)
  uint64_t incarnation = 0;    // of that node when the watcher was added
  kv::WatcherId hub_id = 0;
  int64_t next_revision = 0;   // asked for at the next (re-)watch; <= 0: from now
};

/// A lease client (kv::Store runs): grants leases, keeps some alive through
/// the leader's lessor, revokes some and lets others lapse. One request in
/// flight at a time; normal clients attach keys to its leases.
struct LeaseClient {
  struct Held {
    int64_t id = 0;
    int64_t ttl_seconds = 0;
    uint64_t acked_send_us = 0;  // send time of the last acknowledged grant or keep-alive
    bool keep = true;            // false: left to lapse (no more keep-alives)
  };
  enum class Req : uint8_t { kNone, kGrant, kRevoke, kKeepAlive };
  int index = 0;
  std::vector<Held> held;
  uint64_t seq = 0;
  // The request in flight.
  Req req = Req::kNone;
  uint64_t req_id = 0;         // op id of a proposal, or a keep-alive's number
  int64_t req_lease = 0;
  int64_t req_ttl = 0;
  uint64_t req_send_us = 0;
  NodeId node;                 // where it was sent
  uint64_t node_incarnation = 0;
  bool forwarded = false;      // a keep-alive forwarded by a follower to its leader
  // A keep-alive's answer, delivered by kLeaseReply after the network latency.
  enum class Answer : uint8_t { kRenewed, kGone, kRefused } answer = Answer::kRefused;
  int64_t answer_ttl = 0;
};

/// A serializable read: checked against the applied history at `applied`.
struct SerialRead {
  uint64_t op_id;
  std::string key;
  Value read;
  Index applied;
};

enum class Phase : uint8_t { kFaults, kLiveness, kConverge, kDone };

class Simulation {
 public:
  explicit Simulation(const RunOptions& o) : opt_(o), rng_(o.seed) {}

  RunResult run();

 private:
  // --- setup
  void choose_parameters();
  Node& create_node(NodeId id);
  void start_node(Node& n);

  // --- events
  void schedule(uint64_t delay_us, EvKind kind, int a = 0, uint64_t b = 0);
  void handle(const Event& e);
  void drain();
  void handle_ready(Node& n);
  void apply_committed(Node& n, const std::vector<Entry>& ents);
  void serve_reads(Node& n);
  void maybe_snapshot(Node& n);
  bool install_snapshot(Node& n, const raft::Snapshot& snap);
  std::string kv_path(const Node& n) const { return n.kv_dir + "." + std::to_string(n.kv_gen); }
  void isolate(Node& n, uint64_t min_us, uint64_t max_us, const char* why);
  void send(Node& from, const Message& m);
  void crash(Node& n, const char* why);

  // --- faults
  void inject_fault();
  void heal_partition();
  void heal_all();
  void admin_step();

  // --- clients
  void client_next(ClientState& c);
  void client_attempt(ClientState& c);
  void client_send(ClientState& c, Node* target);
  void client_complete(int client, Value read, bool ok);
  void client_fail_attempt(ClientState& c);
  void client_timeout(ClientState& c, uint64_t op_id);

  // --- watch clients
  void watch_poll(WatchClient& w);
  bool watch_attach(WatchClient& w);
  void watch_take(WatchClient& w, kv::WatchHub& hub, size_t max_events);
  void watch_final(WatchClient& w);
  void record_revisions(Node& n);
  void propose_compaction();

  // --- leases (kv::Store runs)
  void start_lessor(Node& n);
  void lessor_revoke(Node& n, int64_t lease);
  void lease_step(LeaseClient& c);
  void lease_send(LeaseClient& c, LeaseClient::Req req, int64_t lease, int64_t ttl);
  void lease_arrive(LeaseClient& c, uint64_t req_id);
  void lease_reply(LeaseClient& c, uint64_t req_id);
  void lease_done(LeaseClient& c);
  void record_lease_entry(const raftkvpb::InternalRequest& req, const MachineOutcome& out);
  bool leases_gone(std::string* detail);

  // --- checks
  void check_step();
  void check_committed_protected();
  void record_committed(Node& n, const Entry& e);
  void record_outcome(Index index, uint64_t digest, const std::string& what);
  void fail(std::string property, std::string detail);
  void final_checks();

  // --- helpers
  Node* node(NodeId id) {
    auto it = nodes_.find(id.value());
    return it == nodes_.end() ? nullptr : it->second.get();
  }
  std::vector<Node*> members();
  Node* leader();
  void trace(const std::string& s);
  bool linked(NodeId a, NodeId b) const {
    return !blocked_[a.value()][b.value()];
  }

  RunOptions opt_;
  Rng rng_;
  uint64_t now_us_ = 0;
  uint64_t seq_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> queue_;
  std::unordered_map<uint64_t, Message> in_flight_;  // keyed by event seq; looked up only
  std::map<uint64_t, std::unique_ptr<Node>> nodes_;
  std::string run_dir_;
  Phase phase_ = Phase::kFaults;
  RunResult result_;
  std::deque<std::string> trace_;
  uint64_t trace_hash_ = 0;

  // Parameters chosen by the seed.
  uint32_t faults_ = 0;
  int keys_ = 3;
  int clients_n_ = 3;
  uint64_t fault_phase_us_ = 0;
  uint64_t latency_min_us_ = 0, latency_max_us_ = 0;
  double loss_ = 0, dup_ = 0, spike_ = 0;
  double flush_chance_ = 0;
  uint64_t fault_interval_us_ = 0;
  uint64_t client_timeout_us_ = 0;
  storage::DiskLogStorageOptions log_options_;
  uint64_t max_msg_bytes_ = 1 << 20;
  size_t max_inflight_msgs_ = 256;
  uint64_t snapshot_every_ = 0;   // applied entries between local snapshots (0 = never)
  uint64_t snapshot_margin_ = 0;  // entries kept in the log behind a snapshot

  // Network state.
  bool blocked_[kMaxNodes][kMaxNodes] = {};
  std::pair<uint64_t, uint64_t> flapping_{0, 0};
  bool partition_active_ = false;
  uint64_t seq_of_partition_ = 1;  // tags heal/flap events of the current partition

  // Membership.
  uint64_t next_node_id_ = 0;
  int added_nodes_ = 0;

  // Watch clients (kv::Store runs only), with their own random stream.
  Rng watch_rng_{0};
  std::vector<WatchClient> watchers_;
  std::vector<WatchRecord> finished_watches_;  // cancelled by a compaction
  // Every revision any node applied, with its events (first application);
  // every later application must produce the same events.
  std::map<int64_t, WatchRevision> revision_history_;
  size_t hub_buffer_ = 1024;  // WatchHubOptions::max_buffered_events

  // Leases (kv::Store runs only), with their own random stream.
  bool leases_on_ = false;
  Rng lease_rng_{0};
  int64_t lease_ttl_min_s_ = 1, lease_ttl_max_s_ = 3;
  std::vector<LeaseClient> lease_clients_;
  std::vector<int64_t> lease_pool_;  // every lease id a grant was sent for, and one never granted
  struct RevokeProposal {
    bool expiry = false;  // proposed by a lessor (else by a client)
    uint64_t proposed_us = 0;
  };
  std::map<uint64_t, RevokeProposal> revoke_proposals_;  // by op id (request header id)
  std::vector<LeaseLogEntry> lease_log_;  // first application of every lease-related entry
  std::vector<LeaseAck> lease_acks_;      // acknowledged grants and keep-alives
  // The reference register machine's leases: lease -> attached keys, key -> lease.
  std::map<int64_t, std::set<std::string>> ref_leases_;
  std::map<std::string, int64_t> ref_key_lease_;

  // Clients and history.
  std::vector<ClientState> clients_;
  std::vector<Op> history_;   // append-only: clients refer to ops by position
  std::vector<bool> dropped_;  // refused everywhere, or a serializable read: not in the check
  std::vector<SerialRead> serial_reads_;
  uint64_t next_op_id_ = 1;

  // Global records for the checks.
  std::map<uint64_t, NodeId> leader_of_term_;
  struct CommittedEntry {
    Term term;
    uint64_t data_hash;
  };
  std::vector<CommittedEntry> committed_;  // committed_[i-1] is entry i
  std::vector<Term> commit_term_{Term(1)};  // [i-1]: term of the leader that first committed i
  std::vector<uint64_t> outcome_digest_;   // [i-1]: digest of what applying entry i produced; 0 = none yet
  std::map<std::string, Value> ref_state_;  // reference register per key, at committed_.size()
  std::map<std::string, std::vector<std::pair<uint64_t, Value>>> key_history_;  // (index, value)
  uint64_t liveness_from_index_ = 0;
  uint64_t liveness_deadline_us_ = 0;
  bool liveness_ok_ = false;
  uint64_t converge_deadline_us_ = 0;
};

// ---------------------------------------------------------------------------
// Setup

void Simulation::choose_parameters() {
  faults_ = opt_.faults;
  if (opt_.randomize_faults && faults_ != 0) {
    // A random non-empty subset of the enabled classes (all of them half the time).
    if (rng_.chance(0.5)) {
      uint32_t sub = 0;
      while (sub == 0) sub = static_cast<uint32_t>(rng_.next()) & faults_;
      faults_ = sub;
    }
  }
  result_.stats.fault_mix = faults_;
  keys_ = static_cast<int>(rng_.range(1, 4));
  clients_n_ = static_cast<int>(rng_.range(2, 5));
  fault_phase_us_ = rng_.range(3, 10) * kSec;
  latency_min_us_ = rng_.range(200, 2000);
  latency_max_us_ = latency_min_us_ + rng_.range(500, 10 * kMs);
  if (faults_ & kFaultNetwork) {
    loss_ = rng_.unit() * 0.15;
    dup_ = rng_.unit() * 0.05;
    spike_ = rng_.unit() * 0.05;
  }
  flush_chance_ = rng_.unit() * 0.05;
  fault_interval_us_ = rng_.range(100, 800) * kMs;
  client_timeout_us_ = rng_.range(400, 1500) * kMs;
  // Small WAL segments: cheap in memory, and segment cuts happen in every run.
  log_options_.wal.segment_bytes = rng_.range(8, 256) << 10;
  log_options_.cache_max_bytes = rng_.range(1, 64) << 10;
  // Flow control: half the runs send one entry per append (tiny messages),
  // so a follower catches up entry by entry.
  if (rng_.chance(0.5)) max_msg_bytes_ = rng_.chance(0.5) ? 1 : rng_.range(64, 512);
  max_inflight_msgs_ = rng_.chance(0.5) ? rng_.range(1, 8) : 256;
  // Snapshots through the server's code paths (kv image, snapshot store,
  // compaction): often, so followers that fall behind catch up by install.
  if (rng_.chance(0.6)) {
    snapshot_every_ = rng_.range(3, 40);
    snapshot_margin_ = rng_.below(snapshot_every_ + 1);
    log_options_.snapshots.retain = static_cast<uint32_t>(rng_.range(1, 3));
    log_options_.snapshots.chunk_bytes = rng_.range(64, 4096);
  }
  if (faults_ & kFaultFigure8) {
    // Figure 8 needs appends of one entry: a new leader's replicas of an
    // earlier term's entry then reach a majority before its own first entry.
    max_msg_bytes_ = 1;
    max_inflight_msgs_ = rng_.range(1, 2);
  }
}

Node& Simulation::create_node(NodeId id) {
  RAFTKV_CHECK(id.value() < kMaxNodes);
  auto n = std::make_unique<Node>();
  n->id = id;
  n->fs = std::make_unique<storage::FaultFileSystem>();
  n->kv_dir = run_dir_ + "/node-" + std::to_string(id.value());
  if ((faults_ & kFaultNetwork) != 0) {
    // Clock drift: each node ticks at its own rate, within +-25%.
    n->tick_us = rng_.range(7500, 12500);
  }
  // Bootstrap: a snapshot at index 1 (term 1) holding the initial voters and
  // no state-machine data; every member, present or future, starts from it.
  raft::ConfState cs;
  for (int i = 1; i <= opt_.nodes; ++i) cs.voters.push_back(NodeId(static_cast<uint64_t>(i)));
  auto log = storage::DiskLogStorage::open(n->fs.get(), "/data", log_options_);
  RAFTKV_CHECK_MSG(log.is_ok(), log.status().to_string().c_str());
  raft::Snapshot snap;
  snap.metadata.index = Index(1);
  snap.metadata.term = Term(1);
  snap.metadata.conf_state = cs;
  raft::HardState hs{Term(1), raft::kNoNode, Index(1)};
  Status s = (*log)->save(&hs, {}, &snap);
  RAFTKV_CHECK_MSG(s.is_ok(), s.to_string().c_str());
  Node& ref = *n;
  nodes_[id.value()] = std::move(n);
  start_node(ref);
  return ref;
}

void Simulation::start_node(Node& n) {
  n.fs->fail_writes(storage::FaultFileSystem::Failure::kNone);
  n.fs->fail_syncs(storage::FaultFileSystem::Failure::kNone);
  auto log = storage::DiskLogStorage::open(n.fs.get(), "/data", log_options_);
  if (!log.is_ok()) {
    fail("recovery", "node " + std::to_string(n.id.value()) +
                         " cannot open its log: " + log.status().to_string());
    return;
  }
  n.log = std::move(*log);
  n.machine = opt_.kv_store ? open_kv_machine(kv_path(n)) : open_reference_machine(&n.reference_disk);
  n.applied = n.log->snapshot_metadata() ? n.log->snapshot_metadata()->index : Index(0);
  n.last_snapshot = n.applied;
  if (n.applied > std::max(Index(1), n.machine->applied_index())) {
    // The log holds a snapshot the state machine never finished installing
    // (a crash between persisting it and installing it): install it now.
    auto snap = n.log->snapshot();
    if (!snap.is_ok()) {
      fail("recovery", "node " + std::to_string(n.id.value()) +
                           " cannot read its snapshot: " + snap.status().to_string());
      return;
    }
    if (!install_snapshot(n, *snap)) return;
  }
  if (!watchers_.empty()) {
    // Constructed before anything is applied (the hub starts at the store's revision).
    kv::WatchHubOptions ho;
    ho.max_buffered_events = hub_buffer_;
    ho.start_worker = false;
    Node* np = &n;
    n.hub = std::make_unique<kv::WatchHub>(
        [np]() { return np->machine ? np->machine->kv_store() : nullptr; }, ho);
  }
  raft::Config cfg;
  cfg.id = n.id;
  cfg.election_ticks = 10;
  cfg.heartbeat_ticks = 1;
  cfg.max_size_per_msg_bytes = max_msg_bytes_;
  cfg.max_inflight_msgs = max_inflight_msgs_;
  cfg.seed = opt_.seed ^ (n.incarnation * 0x9E3779B97F4A7C15ull) ^ n.id.value();
  // As the server does: every entry after the snapshot comes out again; the
  // configuration is rebuilt by replaying them on the snapshot's, and the
  // store skips what it already holds (index <= store.applied_index()).
  cfg.applied = n.applied;
  auto core = raft::Core::create(cfg, n.log.get());
  if (!core.is_ok()) {
    fail("recovery", "node " + std::to_string(n.id.value()) +
                         " cannot start its core: " + core.status().to_string());
    return;
  }
  n.core = std::move(*core);
  n.alive = true;
  n.paused_until_us = 0;
  n.crash_at_stage = 0;
  n.applied_term = Term(0);
  ++n.incarnation;
  trace("start n" + std::to_string(n.id.value()) + " store_applied=" +
        std::to_string(n.machine->applied_index().value()) + " snapshot=" +
        std::to_string(n.applied.value()) + " first=" + std::to_string(n.log->first_index().value()) +
        " last=" + std::to_string(n.log->last_index().value()));
  schedule(rng_.range(1, n.tick_us), EvKind::kTick, static_cast<int>(n.id.value()), n.incarnation);
  if (leases_on_) start_lessor(n);
}

void Simulation::crash(Node& n, const char* why) {
  if (!n.alive) return;
  ++result_.stats.crashes;
  n.alive = false;
  n.core.reset();
  n.log.reset();
  if (n.hub) n.hub->stop();
  n.hub.reset();  // its watchers are gone: their clients re-watch elsewhere
  n.lessor.reset();  // its deadlines were in memory only
  // RocksDB without its WAL and without a flush: unflushed batches are lost.
  n.machine->crash();
  n.machine.reset();
  using CM = storage::FaultFileSystem::CrashMode;
  const uint64_t r = rng_.below(10);
  const CM mode = r < 7 ? CM::kDropUnsynced : (r < 9 ? CM::kKeepUnsyncedData : CM::kKeepUnsynced);
  n.fs->crash(mode);
  n.pending_writes.clear();
  n.pending_lease_ops.clear();
  n.pending_read_ctx.clear();
  n.reads_ready.clear();
  trace("crash n" + std::to_string(n.id.value()) + " (" + why + ")");
  // Clients waiting on this node learn nothing: they time out (indeterminate).
  if (!n.removed) schedule(rng_.range(50 * kMs, 2 * kSec), EvKind::kRestart, static_cast<int>(n.id.value()));
}

// ---------------------------------------------------------------------------
// Events

void Simulation::schedule(uint64_t delay_us, EvKind kind, int a, uint64_t b) {
  queue_.push(Event{now_us_ + delay_us, seq_++, kind, a, b});
}

void Simulation::trace(const std::string& s) {
  trace_hash_ = fnv1a(s, mix(trace_hash_, now_us_));
  if (opt_.trace_events == 0) return;
  trace_.push_back(std::to_string(now_us_) + "us " + s);
  if (trace_.size() > opt_.trace_events) trace_.pop_front();
}

void Simulation::send(Node& from, const Message& m) {
  Node* to = node(m.to);
  const bool snapshot = m.type == MessageType::kSnapshot;
  if (to == nullptr || !linked(from.id, m.to) || rng_.chance(loss_)) {
    if (snapshot) from.core->report_snapshot(m.to, false);
    return;
  }
  // Proposals are not duplicated: a transport stream never repeats a message,
  // and a repeated proposal is a second client write, not a Raft fault.
  int copies = (m.type != MessageType::kPropose && rng_.chance(dup_)) ? 2 : 1;
  for (int i = 0; i < copies; ++i) {
    uint64_t lat = rng_.range(latency_min_us_, latency_max_us_);
    if (rng_.chance(spike_)) lat += rng_.range(10 * kMs, 300 * kMs);
    const uint64_t key = seq_;
    in_flight_.emplace(key, m);
    schedule(lat, EvKind::kDeliver, static_cast<int>(m.to.value()), key);
  }
  if (snapshot) from.core->report_snapshot(m.to, true);
}

void Simulation::handle(const Event& e) {
  switch (e.kind) {
    case EvKind::kTick: {
      Node* n = node(NodeId(static_cast<uint64_t>(e.a)));
      if (n == nullptr || !n->alive || n->incarnation != e.b) return;
      if (n->paused_until_us > now_us_) {
        schedule(n->paused_until_us - now_us_, EvKind::kTick, e.a, e.b);
        return;
      }
      n->core->tick();
      schedule(n->tick_us, EvKind::kTick, e.a, e.b);
      return;
    }
    case EvKind::kDeliver: {
      auto it = in_flight_.find(e.b);
      RAFTKV_CHECK(it != in_flight_.end());
      Node* n = node(NodeId(static_cast<uint64_t>(e.a)));
      if (n == nullptr || !n->alive) {
        in_flight_.erase(it);
        return;
      }
      if (n->paused_until_us > now_us_) {  // held in the socket until it resumes
        queue_.push(Event{n->paused_until_us + rng_.below(1000), e.seq, e.kind, e.a, e.b});
        return;
      }
      Message m = std::move(it->second);
      in_flight_.erase(it);
      if (opt_.trace_events != 0) {
        trace("n" + std::to_string(m.from.value()) + "->n" + std::to_string(m.to.value()) + " " +
              msg_type_name(m.type) + " t" + std::to_string(m.term.value()) + " i" +
              std::to_string(m.index.value()) + " c" + std::to_string(m.commit.value()) +
              (m.reject ? " reject" : "") + " n_ents=" + std::to_string(m.entries.size()));
      } else {
        trace_hash_ = mix(trace_hash_, (static_cast<uint64_t>(m.type) << 56) ^ m.from.value() ^
                                           (m.to.value() << 8) ^ (m.index.value() << 16) ^ now_us_);
      }
      Status s = n->core->step(m);
      (void)s;  // a refused message (stale, forwarded proposal refused) is dropped
      return;
    }
    case EvKind::kClientNext:
      client_next(clients_[static_cast<size_t>(e.a)]);
      return;
    case EvKind::kClientTimeout:
      client_timeout(clients_[static_cast<size_t>(e.a)], e.b);
      return;
    case EvKind::kClientArrive: {
      // A request that waited in the socket of a paused node reaches it now.
      ClientState& c = clients_[static_cast<size_t>(e.a)];
      if (!c.op || history_[*c.op].id != e.b) return;
      Node* n = node(c.node);
      if (n == nullptr || !n->alive || n->paused_until_us > now_us_) return;
      client_send(c, n);
      return;
    }
    case EvKind::kFault:
      if (phase_ != Phase::kFaults) return;
      inject_fault();
      schedule(rng_.range(fault_interval_us_ / 2, fault_interval_us_ * 3 / 2), EvKind::kFault);
      return;
    case EvKind::kHeal:
      if (e.b == seq_of_partition_) heal_partition();
      return;
    case EvKind::kFlap:
      if (!partition_active_ || e.b != seq_of_partition_ || flapping_.first == 0) return;
      blocked_[flapping_.first][flapping_.second] = !blocked_[flapping_.first][flapping_.second];
      blocked_[flapping_.second][flapping_.first] = blocked_[flapping_.first][flapping_.second];
      schedule(rng_.range(20 * kMs, 200 * kMs), EvKind::kFlap, 0, e.b);
      return;
    case EvKind::kRestart: {
      Node* n = node(NodeId(static_cast<uint64_t>(e.a)));
      if (n != nullptr && !n->alive && !n->removed) start_node(*n);
      return;
    }
    case EvKind::kAdmin:
      if (phase_ != Phase::kFaults) return;
      admin_step();
      schedule(rng_.range(200 * kMs, 1500 * kMs), EvKind::kAdmin);
      return;
    case EvKind::kCrashIncarnation: {
      Node* n = node(NodeId(static_cast<uint64_t>(e.a)));
      if (phase_ == Phase::kFaults && n != nullptr && n->alive && n->incarnation == e.b) {
        crash(*n, "crash of a fresh leader");
      }
      return;
    }
    case EvKind::kStopRemoved: {
      Node* n = node(NodeId(static_cast<uint64_t>(e.a)));
      if (n == nullptr) return;
      n->removed = true;
      if (n->alive) crash(*n, "removed from the cluster");
      return;
    }
    case EvKind::kEndFaults:
      heal_all();
      phase_ = Phase::kLiveness;
      liveness_from_index_ = committed_.size();
      liveness_deadline_us_ = now_us_ + kLivenessBoundUs;
      trace("faults end; liveness phase from index " + std::to_string(liveness_from_index_));
      schedule(100 * kMs, EvKind::kLivenessCheck);
      return;
    case EvKind::kWatchPoll:
      watch_poll(watchers_[static_cast<size_t>(e.a)]);
      if (phase_ != Phase::kDone) schedule(watch_rng_.range(2 * kMs, 60 * kMs), EvKind::kWatchPoll, e.a);
      return;
    case EvKind::kCompact:
      if (phase_ != Phase::kFaults) return;
      propose_compaction();
      schedule(watch_rng_.range(300 * kMs, 2 * kSec), EvKind::kCompact);
      return;
    case EvKind::kLessorTick: {
      Node* n = node(NodeId(static_cast<uint64_t>(e.a)));
      if (n == nullptr || !n->alive || n->incarnation != e.b || !n->lessor) return;
      if (n->paused_until_us > now_us_) {  // a paused process runs nothing
        schedule(n->paused_until_us - now_us_, EvKind::kLessorTick, e.a, e.b);
        return;
      }
      n->lessor->tick();  // may propose revokes (lessor_revoke)
      schedule(kLessorTickUs, EvKind::kLessorTick, e.a, e.b);
      return;
    }
    case EvKind::kLeaseStep:
      lease_step(lease_clients_[static_cast<size_t>(e.a)]);
      return;
    case EvKind::kLeaseArrive:
      lease_arrive(lease_clients_[static_cast<size_t>(e.a)], e.b);
      return;
    case EvKind::kLeaseReply:
      lease_reply(lease_clients_[static_cast<size_t>(e.a)], e.b);
      return;
    case EvKind::kLeaseTimeout: {
      LeaseClient& c = lease_clients_[static_cast<size_t>(e.a)];
      if (c.req == LeaseClient::Req::kNone || c.req_id != e.b) return;
      trace("lease client " + std::to_string(c.index) + " request " + std::to_string(e.b) +
            " timed out");
      if (Node* n = node(c.node)) n->pending_lease_ops.erase(c.req_id);
      lease_done(c);
      return;
    }
    case EvKind::kLivenessCheck:
      if (phase_ == Phase::kLiveness) {
        if (liveness_ok_) {
          phase_ = Phase::kConverge;
          converge_deadline_us_ = now_us_ + kConvergeBoundUs;
          for (ClientState& c : clients_) c.stopped = true;
          trace("liveness reached; clients stop");
        } else if (now_us_ > liveness_deadline_us_) {
          fail("liveness", "no write committed within " + std::to_string(kLivenessBoundUs / kSec) +
                               "s of simulated time after every fault healed");
          return;
        }
      }
      if (phase_ == Phase::kConverge) {
        bool busy = false;
        for (const ClientState& c : clients_) busy = busy || c.op.has_value();
        bool converged = !busy;
        uint64_t top = 0;
        for (Node* n : members()) {
          if (n->alive) top = std::max(top, n->core->log().committed().value());
        }
        for (Node* n : members()) {
          converged = converged && n->alive && n->applied.value() == top &&
                      n->core->log().last_index().value() == top;
        }
        // Liveness of expiry: lease clients stopped keeping leases alive when
        // the faults ended, so the leader's lessor must revoke every lease.
        std::string leases_left;
        const bool leases_done = !leases_on_ || leases_gone(&leases_left);
        if (converged && leases_done) {
          phase_ = Phase::kDone;
          return;
        }
        if (now_us_ > converge_deadline_us_) {
          if (converged) {
            fail("lapsed leases expire", leases_left + " (" +
                                             std::to_string(kConvergeBoundUs / kSec) +
                                             "s after the faults)");
          } else {
            fail("liveness", "members did not converge on one applied index within " +
                                 std::to_string(kConvergeBoundUs / kSec) + "s after the faults");
          }
          return;
        }
      }
      schedule(50 * kMs, EvKind::kLivenessCheck);
      return;
  }
}

void Simulation::drain() {
  for (int round = 0; round < kMaxReadyRoundsPerEvent; ++round) {
    bool any = false;
    for (auto& [id, n] : nodes_) {
      if (!n->alive || n->paused_until_us > now_us_) continue;
      if (n->core->has_ready()) {
        any = true;
        handle_ready(*n);
        if (!result_.ok) return;
      }
    }
    if (!any) return;
  }
  fail("bounded work", "nodes kept producing Ready batches without the clock moving");
}

void Simulation::handle_ready(Node& n) {
  Ready rd = n.core->ready();
  // An armed crash waits for a Ready with something to persist or apply, so
  // it lands between a write and the messages that depend on it.
  const bool has_work = !rd.entries.empty() || rd.hard_state.has_value() ||
                        !rd.committed_entries.empty() || !rd.messages_after_persist.empty();
  const int crash_stage = (has_work && n.crash_at_stage <= 4) ? n.crash_at_stage : 0;
  auto crash_here = [&](int stage) {
    if (crash_stage != stage) return false;
    crash(n, ("inside a Ready, stage " + std::to_string(stage)).c_str());
    return true;
  };
  if (rd.soft_state && rd.soft_state->role == Role::kLeader) {
    trace("n" + std::to_string(n.id.value()) + " leader of term " +
          std::to_string(n.core->term().value()));
    // Leader completeness (§3.6.3): a leader of term T holds every entry
    // that a leader of an earlier term committed. (A leader of a lower term
    // elected late, by delayed votes, may lack entries committed since.)
    const Term t = n.core->term();
    for (uint64_t i = 2; i <= committed_.size() && i <= commit_term_.size(); ++i) {
      if (commit_term_[i - 1] >= t) continue;
      if (Index(i) >= n.core->log().first_index() &&
          !n.core->log().match_term(Index(i), committed_[i - 1].term)) {
        fail("leader completeness",
             "node " + std::to_string(n.id.value()) + " became leader of term " +
                 std::to_string(n.core->term().value()) + " without committed entry " +
                 std::to_string(i) + " (term " + std::to_string(committed_[i - 1].term.value()) + ")");
        return;
      }
    }
    // Figure 8: this leader's first entry lands at an index where another
    // node holds an uncommitted entry of an earlier term. Cut the leader off
    // before it replicates anything, so that the other node may win the next
    // election and replicate its older entry while this one survives here.
    if ((faults_ & kFaultFigure8) != 0 && phase_ == Phase::kFaults && rng_.chance(0.8)) {
      const Index p = n.core->log().last_index();
      bool conflict = false;
      for (auto& [oid, o] : nodes_) {
        if (o.get() == &n || !o->alive || o->removed) continue;
        conflict = conflict || (p.value() > committed_.size() && o->core->log().last_index() >= p &&
                                !o->core->log().match_term(p, t));
      }
      if (conflict) isolate(n, 200 * kMs, 1500 * kMs, "figure8: cut off a fresh leader");
    }
    // A leader that dies within moments of its election, while it is still
    // catching followers up (Figure 8 of the Raft paper needs exactly this).
    if ((faults_ & kFaultCrash) != 0 && phase_ == Phase::kFaults && rng_.chance(0.15)) {
      schedule(rng_.range(1 * kMs, 60 * kMs), EvKind::kCrashIncarnation,
               static_cast<int>(n.id.value()), n.incarnation);
    }
  }
  // Record in which term each index was first committed (by its leader).
  if (rd.hard_state && n.core->role() == Role::kLeader) {
    for (uint64_t i = commit_term_.size() + 1; i <= rd.hard_state->commit.value(); ++i) {
      commit_term_.push_back(n.core->term());
    }
  }
  // 1. Messages that may leave before persisting.
  for (const Message& m : rd.messages) send(n, m);
#if defined(RAFTKV_SIM_MUTATION) && RAFTKV_SIM_MUTATION == 2
  // MUTATION 2: acknowledgements and votes leave before they are durable.
  for (const Message& m :
       rd.messages_after_persist.release(raft::Persisted::kHardStateEntriesAndSnapshotAreDurable)) {
    send(n, m);
  }
#endif
  if (crash_here(1)) return;
  // 2. Persist snapshot, entries and hard state with one sync.
  if (!rd.entries.empty() || rd.hard_state || rd.snapshot) {
    const raft::HardState* hs = rd.hard_state ? &*rd.hard_state : nullptr;
    Status s = n.log->save(hs, rd.entries, rd.snapshot ? &*rd.snapshot : nullptr);
    if (!s.is_ok()) {
      // The failure policy: the node stops and recovers from what is durable.
      // Sometimes the last unsynced write survives torn.
      if (rng_.chance(0.3)) {
        auto files = n.fs->list("/data/wal");
        if (files.is_ok() && !files->empty()) {
          Status t = n.fs->tear_last_write("/data/wal/" + files->back(), rng_.below(64));
          (void)t;  // no unsynced write to tear is fine
        }
      }
      crash(n, ("disk failure: " + s.to_string()).c_str());
      return;
    }
  }
  if (crash_here(2)) return;
  // The snapshot from the leader replaces the state machine (a crash before
  // this point installs it from the log at restart).
  if (rd.snapshot && rd.snapshot->metadata.index > Index(1)) {
    trace("n" + std::to_string(n.id.value()) + " installs snapshot " +
          std::to_string(rd.snapshot->metadata.index.value()));
    if (!install_snapshot(n, *rd.snapshot)) return;
    ++result_.stats.snapshots_installed;
  }
  // 3. Messages that speak for durable state.
  for (const Message& m :
       rd.messages_after_persist.release(raft::Persisted::kHardStateEntriesAndSnapshotAreDurable)) {
    send(n, m);
  }
  if (crash_here(3)) return;
  // 4. Apply.
  if (!rd.committed_entries.empty()) apply_committed(n, rd.committed_entries);
  if (!result_.ok || !n.alive) return;
  if (crash_here(4)) return;
  // 5. Reads confirmed by the leader wait for the applied index.
  for (const raft::ReadState& rs : rd.read_states) {
    auto it = n.pending_read_ctx.find(rs.request_ctx);
    if (it == n.pending_read_ctx.end()) continue;
    it->second.index = rs.index;
    n.reads_ready.push_back(it->second);
    n.pending_read_ctx.erase(it);
  }
  // 6. Advance.
  n.core->advance(rd);
  n.core->check_invariants();
  serve_reads(n);
  if (crash_stage != 0) n.crash_at_stage = 0;
  maybe_snapshot(n);
}

bool Simulation::install_snapshot(Node& n, const raft::Snapshot& snap) {
  const Index idx = snap.metadata.index;
  if (n.machine->applied_index() >= idx) return true;  // the machine is already past it
  n.machine->crash();  // replaced wholesale: nothing of it is needed any more
  n.machine.reset();
  // Filled by one of the two branches below (a Result holds a value or an error).
  Result<std::unique_ptr<Machine>> fresh = Status::internal("no snapshot restore attempted");
  if (opt_.kv_store) {
    // The server's pattern: build the new store beside the old one, then
    // switch the pointer to it and delete the old one.
    const std::string old = kv_path(n);
    const std::string next = n.kv_dir + "." + std::to_string(n.kv_gen + 1);
    std::error_code ec;
    std::filesystem::remove_all(next, ec);
    fresh = restore_kv_machine(next, snap.data);
    if (fresh.is_ok()) {
      ++n.kv_gen;
      std::filesystem::remove_all(old, ec);
    }
  } else {
    fresh = restore_reference_machine(&n.reference_disk, snap.data);
  }
  if (!fresh.is_ok()) {
    fail("snapshot install", "node " + std::to_string(n.id.value()) + " cannot install snapshot " +
                                 std::to_string(idx.value()) + ": " + fresh.status().to_string());
    return false;
  }
  n.machine = std::move(*fresh);
  if (n.machine->applied_index() != idx) {
    fail("snapshot install", "node " + std::to_string(n.id.value()) + " installed snapshot " +
                                 std::to_string(idx.value()) + " but its state machine is at " +
                                 std::to_string(n.machine->applied_index().value()));
    return false;
  }
  n.applied = std::max(n.applied, idx);
  n.last_snapshot = std::max(n.last_snapshot, idx);
  if (n.hub) n.hub->on_store_swapped();
  return true;
}

void Simulation::maybe_snapshot(Node& n) {
  // The server's rule (Node::maybe_make_snapshot, persist_local_snapshot):
  // every snapshot_every_ applied entries, flush the state machine, save its
  // image with the applied index, term and configuration, then compact the
  // log up to a catch-up margin behind it. (The server writes the image on a
  // thread of its own from a RocksDB snapshot taken at that applied index;
  // here it is written at once, which is one of the orders that allows.)
  if (snapshot_every_ == 0 || !n.alive || !result_.ok) return;
  if (!n.snapshot_due && n.applied.value() < n.last_snapshot.value() + snapshot_every_) return;
  if (n.machine->applied_index() != n.applied) return;  // still replaying after a restart
  if (n.applied <= n.last_snapshot || n.applied > n.log->last_index()) return;
  n.machine->flush();
  raft::Snapshot snap;
  snap.metadata.index = n.applied;
  snap.metadata.term = n.core->log().term(n.applied);
  snap.metadata.conf_state = n.core->status().config;
  snap.data = n.machine->image();
  n.last_snapshot = n.applied;
  n.snapshot_due = false;
  const int stage = n.crash_at_stage;
  if (stage >= 5) n.crash_at_stage = 0;
  if (stage == 5) {
    // The disk fails part way through writing the snapshot file.
    n.fs->fail_writes(storage::FaultFileSystem::Failure::kIO, rng_.below(3));
  }
  Status s = n.log->add_snapshot(snap);
  if (!s.is_ok()) {
    crash(n, ("snapshot save failed: " + s.to_string()).c_str());
    return;
  }
  if (stage == 6) {
    crash(n, "after saving a snapshot, before compacting the log");
    return;
  }
  ++result_.stats.snapshots_made;
  if (n.applied.value() > snapshot_margin_) {
    const Index to(n.applied.value() - snapshot_margin_);
    if (to >= n.log->first_index()) {
      s = n.log->compact(to);
      if (!s.is_ok()) {
        crash(n, ("log compaction failed: " + s.to_string()).c_str());
        return;
      }
    }
  }
  trace("n" + std::to_string(n.id.value()) + " snapshot at " + std::to_string(n.applied.value()) +
        ", log from " + std::to_string(n.log->first_index().value()));
}

void Simulation::record_committed(Node& n, const Entry& e) {
  const uint64_t h = fnv1a(e.data, static_cast<uint64_t>(e.type));
  const uint64_t i = e.index.value();
  if (i <= committed_.size()) {
    const CommittedEntry& c = committed_[i - 1];
    if (c.term != e.term || c.data_hash != h) {
      fail("committed entries never change",
           "node " + std::to_string(n.id.value()) + " applied index " + std::to_string(i) +
               " term " + std::to_string(e.term.value()) + ", but term " +
               std::to_string(c.term.value()) + " (other data) was committed there first");
    }
    return;
  }
  if (i != committed_.size() + 1) {
    // Index 1 is the bootstrap snapshot, never applied as an entry.
    if (!(committed_.empty() && i == 2)) {
      fail("applied in order", "node " + std::to_string(n.id.value()) + " applied index " +
                                   std::to_string(i) + " before index " +
                                   std::to_string(committed_.size() + 1) + " was ever applied");
      return;
    }
    committed_.push_back(CommittedEntry{Term(1), 0});
  }
  committed_.push_back(CommittedEntry{e.term, h});
  result_.stats.committed = i;
  // The reference register machine (independent of kv::Store).
  if (e.type == EntryType::kNormal && !e.data.empty()) {
    raftkvpb::InternalRequest req;
    RAFTKV_CHECK(req.ParseFromString(e.data));
    std::string key;
    Value after;
    bool changes = false;
    int64_t lease = 0;  // the lease the changed key is attached to afterwards
    // Moves `k` off its lease (a put without that lease, a delete).
    auto detach = [&](const std::string& k) {
      auto it = ref_key_lease_.find(k);
      if (it == ref_key_lease_.end()) return;
      ref_leases_[it->second].erase(k);
      ref_key_lease_.erase(it);
    };
    if (req.has_put()) {
      key = req.put().key();
      after = req.put().value();
      lease = req.put().lease();
      // A put with a lease that does not exist is refused.
      changes = lease == 0 || ref_leases_.count(lease) != 0;
    } else if (req.has_delete_range()) {
      key = req.delete_range().key();
      changes = ref_state_[key].has_value();
      after.reset();
    } else if (req.has_txn()) {
      const auto& cmp = req.txn().compare(0);
      key = cmp.key();
      const Value& cur = ref_state_[key];
      const bool holds = cmp.target() == etcdserverpb::Compare::VALUE ? cur == cmp.value()
                                                                       : !cur.has_value();
      if (holds) {
        after = req.txn().success(0).request_put().value();
        changes = true;
      }
    } else if (req.has_lease_grant()) {
      ref_leases_.try_emplace(req.lease_grant().id());
    } else if (req.has_lease_revoke()) {
      // Every attached key is deleted; then the lease is gone.
      auto it = ref_leases_.find(req.lease_revoke().id());
      if (it != ref_leases_.end()) {
        for (const std::string& k : it->second) {
          ref_state_[k].reset();
          key_history_[k].emplace_back(i, std::nullopt);
          ref_key_lease_.erase(k);
        }
        ref_leases_.erase(it);
      }
    }
    if (changes) {
      detach(key);
      if (lease != 0) {
        ref_leases_[lease].insert(key);
        ref_key_lease_[key] = lease;
      }
      ref_state_[key] = after;
      key_history_[key].emplace_back(i, after);
    }
    if (phase_ == Phase::kLiveness && i > liveness_from_index_) liveness_ok_ = true;
  }
}

void Simulation::record_outcome(Index index, uint64_t digest, const std::string& what) {
  const uint64_t i = index.value();
  RAFTKV_CHECK(i >= 1 && i <= committed_.size());
  if (outcome_digest_.size() < i) outcome_digest_.resize(i, 0);
  digest |= 1;  // 0 marks "not recorded yet"
  uint64_t& slot = outcome_digest_[i - 1];
  if (slot == 0) {
    slot = digest;
    return;
  }
  if (slot != digest) {
    fail("same state at the same index",
         "applying index " + std::to_string(i) + " produced a different result on " + what +
             " than on the first node that applied it");
  }
}

void Simulation::apply_committed(Node& n, const std::vector<Entry>& ents) {
  std::vector<MachineEntry> batch;
  std::vector<std::unique_ptr<raftkvpb::InternalRequest>> reqs;
  const Index store_applied = n.machine->applied_index();
  // Entries from here on were never applied before (on any node).
  const uint64_t first_new = committed_.size() + 1;
  for (const Entry& e : ents) {
    record_committed(n, e);
    if (!result_.ok) return;
    if (e.type == EntryType::kConfChange) {
      auto cc = raft::decode_conf_change(e.data);
      RAFTKV_CHECK(cc.is_ok());
      auto cs = n.core->apply_conf_change(*cc);
      uint64_t d = 7;
      if (cs.is_ok()) {
        for (NodeId v : cs->voters) d = mix(d, v.value());
        for (NodeId v : cs->learners) d = mix(d, v.value() + 1000);
        for (NodeId v : cs->voters_outgoing) d = mix(d, v.value() + 2000);
        for (const ConfChangeSingle& c : cc->changes) {
          Node* target = node(c.node_id);
          if (target == nullptr) continue;
          if (c.type == ConfChangeType::kAddLearner) target->joined = true;
          // A snapshot taken before a member was added does not include it,
          // and the member refuses to install it (Core::restore): with the
          // log compacted past its start it could never catch up until the
          // next periodic snapshot. Snapshot right after the change.
          if (c.type != ConfChangeType::kRemoveNode) n.snapshot_due = true;
          if (c.type == ConfChangeType::kRemoveNode && !target->stop_scheduled) {
            // Once the removal is applied anywhere it is committed: stop the node.
            target->stop_scheduled = true;
            schedule(rng_.range(100 * kMs, 1 * kSec), EvKind::kStopRemoved,
                     static_cast<int>(c.node_id.value()));
          }
        }
      }
      record_outcome(e.index, d, "node " + std::to_string(n.id.value()));
      if (!result_.ok) return;
    }
    if (e.index <= store_applied) continue;  // already in the store (survived the crash)
    MachineEntry ae;
    ae.index = e.index;
    if (e.type == EntryType::kNormal && !e.data.empty()) {
      auto req = std::make_unique<raftkvpb::InternalRequest>();
      RAFTKV_CHECK(req->ParseFromString(e.data));
      ae.request = req.get();
      reqs.push_back(std::move(req));
    }
    batch.push_back(ae);
  }
  n.applied = ents.back().index;
  n.applied_term = ents.back().term;
  if (batch.empty()) return;
  const std::vector<MachineOutcome> outcomes = n.machine->apply(batch);
  record_revisions(n);
  if (!result_.ok) return;
#if RAFTKV_SIM_MUTATION == 4
  // Mutation 4: the apply loop loses the events of one batch in 20.
  if (n.hub && !watch_rng_.chance(0.05)) n.hub->feed(n.machine->last_events());
#else
  if (n.hub) n.hub->feed(n.machine->last_events());
#endif
  size_t next_req = 0;  // walks `batch` alongside the outcomes (both ascending)
  for (const MachineOutcome& out : outcomes) {
    record_outcome(out.index, mix(out.digest, out.ok ? 1 : 2), "node " + std::to_string(n.id.value()));
    if (!result_.ok) return;
    if (leases_on_ && out.index.value() >= first_new) {
      while (batch[next_req].index != out.index) ++next_req;
      record_lease_entry(*batch[next_req].request, out);
    }
    if (out.member_id != n.id.value()) continue;
    auto it = n.pending_writes.find(out.request_id);
    if (it == n.pending_writes.end()) {
      auto lt = n.pending_lease_ops.find(out.request_id);
      if (lt == n.pending_lease_ops.end()) continue;
      LeaseClient& lc = lease_clients_[static_cast<size_t>(lt->second)];
      n.pending_lease_ops.erase(lt);
      if (lc.req == LeaseClient::Req::kNone || lc.req_id != out.request_id) continue;
      if (lc.req == LeaseClient::Req::kGrant && out.ok) {
        lease_acks_.push_back(LeaseAck{lc.req_lease, lc.req_send_us, lc.req_ttl, false});
        // Most leases are kept alive; some are left to lapse from the start.
        lc.held.push_back(LeaseClient::Held{lc.req_lease, lc.req_ttl, lc.req_send_us,
                                            lease_rng_.chance(0.8)});
      }
      lease_done(lc);
      continue;
    }
    const int client = it->second;
    n.pending_writes.erase(it);
    ClientState& c = clients_[static_cast<size_t>(client)];
    if (c.op && history_[*c.op].id == out.request_id) client_complete(client, std::nullopt, out.ok);
  }
  if (rng_.chance(flush_chance_)) n.machine->flush();
}

void Simulation::serve_reads(Node& n) {
  if (n.reads_ready.empty()) return;
  const Index applied = std::max(n.applied, n.machine->applied_index());
  std::vector<Node::WaitingRead> keep;
  for (const Node::WaitingRead& w : n.reads_ready) {
    if (w.index > applied) {
      keep.push_back(w);
      continue;
    }
    const int client = w.client;
    ClientState& c = clients_[static_cast<size_t>(client)];
    if (!c.op || history_[*c.op].id != w.op_id) continue;  // the client gave up on it
    client_complete(client, n.machine->get(history_[*c.op].key), true);
  }
  n.reads_ready = std::move(keep);
}

// ---------------------------------------------------------------------------
// Faults

void Simulation::heal_partition() {
  for (auto& row : blocked_) {
    for (bool& b : row) b = false;
  }
  flapping_ = {0, 0};
  if (partition_active_) trace("partition healed");
  partition_active_ = false;
  ++seq_of_partition_;
}

void Simulation::isolate(Node& n, uint64_t min_us, uint64_t max_us, const char* why) {
  heal_partition();
  partition_active_ = true;
  for (Node* o : members()) {
    blocked_[n.id.value()][o->id.value()] = true;
    blocked_[o->id.value()][n.id.value()] = true;
  }
  trace(std::string(why) + ": isolate n" + std::to_string(n.id.value()));
  schedule(rng_.range(min_us, max_us), EvKind::kHeal, 0, seq_of_partition_);
}

void Simulation::heal_all() {
  heal_partition();
  loss_ = 0;
  dup_ = 0;
  spike_ = 0;
  for (auto& [id, n] : nodes_) {
    if (n->removed) continue;
    n->paused_until_us = 0;
    n->crash_at_stage = 0;
    n->fs->fail_writes(storage::FaultFileSystem::Failure::kNone);
    n->fs->fail_syncs(storage::FaultFileSystem::Failure::kNone);
    if (!n->alive) start_node(*n);
  }
}

void Simulation::inject_fault() {
  std::vector<uint32_t> classes;
  for (uint32_t c : {kFaultNetwork, kFaultPartition, kFaultCrash, kFaultFigure8}) {
    if (faults_ & c) classes.push_back(c);
  }
  if (classes.empty()) return;
  const uint32_t cls = classes[rng_.below(classes.size())];
  std::vector<Node*> live;
  for (Node* n : members()) {
    if (n->alive) live.push_back(n);
  }
  if (live.empty()) return;
  Node* victim = live[rng_.below(live.size())];
  if (cls == kFaultNetwork) {
    loss_ = rng_.unit() * 0.3;
    dup_ = rng_.unit() * 0.1;
    spike_ = rng_.unit() * 0.1;
    trace("network: loss " + std::to_string(loss_) + " dup " + std::to_string(dup_));
    return;
  }
  if (cls == kFaultFigure8) {
    // The leader is cut off briefly, often with entries it could not
    // replicate: the first half of Figure 8.
    Node* l = leader();
    isolate(l != nullptr ? *l : *victim, 50 * kMs, 600 * kMs, "figure8: isolate the leader");
    return;
  }
  if (cls == kFaultPartition) {
    heal_partition();
    std::vector<Node*> all = members();
    const uint64_t kind = rng_.below(4);
    partition_active_ = true;
    if (kind == 0) {  // isolate one node (often the leader)
      Node* l = leader();
      Node* iso = (l != nullptr && rng_.chance(0.6)) ? l : victim;
      isolate(*iso, 200 * kMs, 3 * kSec, "partition");
      return;
    } else if (kind == 1) {  // majority / minority split
      std::vector<Node*> order = all;
      for (size_t i = order.size(); i > 1; --i) std::swap(order[i - 1], order[rng_.below(i)]);
      const size_t minority = std::max<size_t>(1, (order.size() - 1) / 2);
      std::string side;
      for (size_t i = 0; i < order.size(); ++i) {
        for (size_t j = 0; j < order.size(); ++j) {
          if ((i < minority) != (j < minority)) blocked_[order[i]->id.value()][order[j]->id.value()] = true;
        }
        if (i < minority) side += " n" + std::to_string(order[i]->id.value());
      }
      trace("partition: split, minority" + side);
    } else if (kind == 2) {  // one-way link
      Node* other = all[rng_.below(all.size())];
      if (other != victim) blocked_[victim->id.value()][other->id.value()] = true;
      trace("partition: one-way n" + std::to_string(victim->id.value()) + " -/-> n" +
            std::to_string(other->id.value()));
    } else {  // flapping link
      Node* other = all[rng_.below(all.size())];
      if (other != victim) {
        flapping_ = {victim->id.value(), other->id.value()};
        schedule(rng_.range(20 * kMs, 200 * kMs), EvKind::kFlap, 0, seq_of_partition_);
      }
      trace("partition: flapping n" + std::to_string(victim->id.value()) + " <-> n" +
            std::to_string(other->id.value()));
    }
    schedule(rng_.range(200 * kMs, 3 * kSec), EvKind::kHeal, 0, seq_of_partition_);
    return;
  }
  // Crash-class faults.
  const uint64_t kind = rng_.below(5);
  if (kind == 0) {
    crash(*victim, "crash");
  } else if (kind == 1) {
    victim->crash_at_stage = static_cast<int>(rng_.range(1, snapshot_every_ != 0 ? 6 : 4));
    trace("arm crash of n" + std::to_string(victim->id.value()) + " inside its next Ready, stage " +
          std::to_string(victim->crash_at_stage));
  } else if (kind == 2) {
    const bool no_space = rng_.chance(0.5);
    if (no_space) {
      victim->fs->fail_writes(storage::FaultFileSystem::Failure::kNoSpace, rng_.below(4));
    } else {
      victim->fs->fail_syncs(storage::FaultFileSystem::Failure::kIO, rng_.below(4));
    }
    trace(std::string("disk of n") + std::to_string(victim->id.value()) +
          (no_space ? " fills up (ENOSPC)" : " fails fsync (EIO)"));
  } else if (kind == 3) {
    // Pausing the leader is what breaks lease-like assumptions: favour it.
    Node* l = leader();
    if (l != nullptr && rng_.chance(0.6)) victim = l;
    victim->paused_until_us = now_us_ + rng_.range(50 * kMs, 2 * kSec);
    trace("pause n" + std::to_string(victim->id.value()) + " until " +
          std::to_string(victim->paused_until_us));
  } else {
    Node* l = leader();
    if (l != nullptr) crash(*l, "crash of the leader");
  }
}

void Simulation::admin_step() {
  Node* l = leader();
  if (l == nullptr) return;
  const raft::ConfState cs = l->core->status().config;
  if (!cs.voters_outgoing.empty()) return;
  ConfChange cc;
  std::string what;
  if (!cs.learners.empty()) {
    cc.changes.push_back(ConfChangeSingle{ConfChangeType::kAddNode, cs.learners.front()});
    what = "promote n" + std::to_string(cs.learners.front().value());
  } else if (static_cast<int>(cs.voters.size()) > opt_.nodes) {
    NodeId v = (rng_.chance(0.3) ? l->id : cs.voters[rng_.below(cs.voters.size())]);
    cc.changes.push_back(ConfChangeSingle{ConfChangeType::kRemoveNode, v});
    what = "remove n" + std::to_string(v.value());
  } else if (added_nodes_ < kMaxAddedNodes) {
    const NodeId id(next_node_id_);
    if (node(id) == nullptr) {
      create_node(id);
      ++added_nodes_;
    }
    cc.changes.push_back(ConfChangeSingle{ConfChangeType::kAddLearner, id});
    what = "add learner n" + std::to_string(id.value());
  } else {
    return;
  }
  Status s = l->core->propose_conf_change(cc);
  trace("admin via n" + std::to_string(l->id.value()) + ": " + what + " -> " + s.to_string());
  if (s.is_ok()) {
    ++result_.stats.membership_changes;
    if (what.rfind("add learner", 0) == 0) ++next_node_id_;
  }
}

// ---------------------------------------------------------------------------
// Clients

std::vector<Node*> Simulation::members() {
  std::vector<Node*> out;
  for (auto& [id, n] : nodes_) {
    if (!n->removed && n->joined) out.push_back(n.get());
  }
  return out;
}

Node* Simulation::leader() {
  Node* best = nullptr;
  for (auto& [id, n] : nodes_) {
    if (!n->alive || n->removed || n->core->role() != Role::kLeader) continue;
    if (best == nullptr || n->core->term() > best->core->term()) best = n.get();
  }
  return best;
}

void Simulation::client_next(ClientState& c) {
  if (c.stopped || !result_.ok) return;
  RAFTKV_CHECK(!c.op);
  Op op;
  op.id = next_op_id_++;
  op.client = c.index;
  op.key = "k" + std::to_string(rng_.below(static_cast<uint64_t>(keys_)));
  op.invoke_us = now_us_;
  const uint64_t r = rng_.below(100);
  c.serializable = false;
  if (r < 30) {
    op.kind = OpKind::kPut;
    // Half the puts attach a lease (granted, revoked, lapsed, or never granted).
    if (!lease_pool_.empty() && lease_rng_.chance(0.5)) {
      op.lease = lease_pool_[lease_rng_.below(lease_pool_.size())];
    }
  } else if (r < 55) {
    op.kind = OpKind::kGet;
  } else if (r < 65) {
    op.kind = OpKind::kGet;
    c.serializable = true;
  } else if (r < 88) {
    op.kind = OpKind::kCas;
    // Expect the value most recently seen by anyone, or absence.
    const auto& h = key_history_[op.key];
    if (!h.empty() && rng_.chance(0.8)) op.expected = h.back().second;
  } else {
    op.kind = OpKind::kDelete;
  }
  op.value = "c" + std::to_string(c.index) + "-" + std::to_string(++c.seq);
  history_.push_back(op);
  dropped_.push_back(false);
  c.op = history_.size() - 1;
  c.attempts = 0;
  client_attempt(c);
}

void Simulation::client_attempt(ClientState& c) {
  Op& op = history_[*c.op];
  ++c.attempts;
  std::vector<Node*> ms = members();
  Node* target = nullptr;
  Node* l = leader();
  if (l != nullptr && rng_.chance(0.6)) target = l;
  if (target == nullptr) target = ms[rng_.below(ms.size())];
  c.node = target->id;
  const uint64_t op_id = op.id;
  if (!target->alive) {  // connection refused: definitely not applied
    client_fail_attempt(c);
    return;
  }
  // The timeout belongs to this attempt (a refused attempt's retry supersedes it).
  schedule(client_timeout_us_, EvKind::kClientTimeout, c.index,
           op_id | (static_cast<uint64_t>(c.attempts) << kAttemptShift));
  if (target->paused_until_us > now_us_) {
    // The request waits in the socket of the paused process, and reaches it
    // when it resumes, among the messages held meanwhile (a GC pause: the
    // node has not noticed that time passed).
    schedule(target->paused_until_us - now_us_ + rng_.below(1000), EvKind::kClientArrive, c.index,
             op_id);
    return;
  }
  client_send(c, target);
}

void Simulation::client_send(ClientState& c, Node* target) {
  Op& op = history_[*c.op];
  const uint64_t op_id = op.id;
  if (op.kind == OpKind::kGet && c.serializable) {
    const Value v = target->machine->get(op.key);
    serial_reads_.push_back(SerialRead{op_id, op.key, v, target->machine->applied_index()});
    // Not part of the linearizable history: checked against the applied history.
    dropped_[*c.op] = true;
    c.op.reset();
    ++result_.stats.ops_ok;
    schedule(rng_.range(0, 30 * kMs), EvKind::kClientNext, c.index);
    return;
  }
  if (op.kind == OpKind::kGet) {
    c.read_ctx = "r" + std::to_string(op_id) + "." + std::to_string(c.attempts);
    Status s = target->core->read_index(c.read_ctx);
    if (!s.is_ok()) {
      client_fail_attempt(c);
      return;
    }
    target->pending_read_ctx[c.read_ctx] = Node::WaitingRead{Index(0), c.index, op_id};
  } else {
    raftkvpb::InternalRequest req;
    req.mutable_header()->set_id(op_id);
    req.mutable_header()->set_member_id(target->id.value());
    if (op.kind == OpKind::kPut) {
      req.mutable_put()->set_key(op.key);
      req.mutable_put()->set_value(op.value);
      req.mutable_put()->set_lease(op.lease);
    } else if (op.kind == OpKind::kDelete) {
      req.mutable_delete_range()->set_key(op.key);
    } else {
      auto* txn = req.mutable_txn();
      auto* cmp = txn->add_compare();
      cmp->set_key(op.key);
      cmp->set_result(etcdserverpb::Compare::EQUAL);
      if (op.expected) {
        cmp->set_target(etcdserverpb::Compare::VALUE);
        cmp->set_value(*op.expected);
      } else {
        cmp->set_target(etcdserverpb::Compare::VERSION);
        cmp->set_version(0);
      }
      auto* put = txn->add_success()->mutable_request_put();
      put->set_key(op.key);
      put->set_value(op.value);
    }
    Status s = target->core->propose(req.SerializeAsString());
    if (!s.is_ok()) {
      client_fail_attempt(c);
      return;
    }
    target->pending_writes[op_id] = c.index;
  }
}

void Simulation::client_fail_attempt(ClientState& c) {
  // Refused before anything was proposed: safe to retry the same operation.
  if (c.attempts < 5) {
    const uint64_t op_id = history_[*c.op].id;
    // Retry after a backoff, through the timeout event's slot (same op id).
    schedule(rng_.range(10 * kMs, 100 * kMs), EvKind::kClientTimeout, c.index, op_id | (1ull << 63));
    return;
  }
  // Every attempt was refused: the operation never happened.
  ++result_.stats.ops_failed;
  dropped_[*c.op] = true;
  c.op.reset();
  schedule(rng_.range(0, 50 * kMs), EvKind::kClientNext, c.index);
}

void Simulation::client_timeout(ClientState& c, uint64_t tagged_id) {
  const bool retry = (tagged_id >> 63) != 0;
  const uint64_t op_id = tagged_id & ((1ull << kAttemptShift) - 1);
  const uint64_t attempt = (tagged_id & ~(1ull << 63)) >> kAttemptShift;
  if (!c.op || history_[*c.op].id != op_id) return;  // already completed
  if (retry) {
    client_attempt(c);
    return;
  }
  if (attempt != static_cast<uint64_t>(c.attempts)) return;  // an earlier, refused attempt
  Op& op = history_[*c.op];
  op.indeterminate = true;
  ++result_.stats.ops_indeterminate;
  trace("client " + std::to_string(c.index) + " op " + std::to_string(op_id) + " timed out");
  c.op.reset();
  if (Node* n = node(c.node)) {
    n->pending_writes.erase(op_id);
    n->pending_read_ctx.erase(c.read_ctx);
  }
  schedule(rng_.range(0, 50 * kMs), EvKind::kClientNext, c.index);
}

void Simulation::client_complete(int client, Value read, bool ok) {
  ClientState& c = clients_[static_cast<size_t>(client)];
  RAFTKV_CHECK(c.op.has_value());
  Op& op = history_[*c.op];
  op.complete_us = now_us_;
  op.read = std::move(read);
  op.ok = ok;
  ++result_.stats.ops_ok;
  if (opt_.trace_events != 0) trace("client " + std::to_string(client) + " " + describe(op));
  c.op.reset();
  schedule(rng_.range(0, 30 * kMs), EvKind::kClientNext, client);
}

// ---------------------------------------------------------------------------
// Checks

void Simulation::fail(std::string property, std::string detail) {
  if (!result_.ok) return;
  result_.ok = false;
  result_.property = std::move(property);
  result_.detail = std::move(detail);
  trace("VIOLATION: " + result_.property);
}

void Simulation::check_step() {
  for (auto& [id, n] : nodes_) {
    if (!n->alive || n->core->role() != Role::kLeader) continue;
    const uint64_t t = n->core->term().value();
    result_.stats.max_term = std::max(result_.stats.max_term, t);
    auto [it, inserted] = leader_of_term_.emplace(t, n->id);
    if (!inserted && it->second != n->id) {
      fail("at most one leader per term", "nodes " + std::to_string(it->second.value()) + " and " +
                                              std::to_string(n->id.value()) +
                                              " are both leader of term " + std::to_string(t));
      return;
    }
  }
  check_committed_protected();
}

void Simulation::check_committed_protected() {
  // The safety argument of Raft as a state predicate (§3.6.3): a node that
  // lacks a committed entry can never again win an election. A node wins if
  // a majority of its configuration's voters (both halves while joint) finds
  // its log at least as up to date as theirs (§3.6.1) -- terms can always be
  // raised by timeouts, so that is all it takes. Only live nodes are counted,
  // as candidates and as voters (a crashed node's log may change on restart),
  // which errs on the side of not reporting. This catches a wrongly committed
  // entry the moment it is committed, not only once a later election and
  // overwrite happen to follow (Figure 8's last step).
  const uint64_t top = committed_.size();
  if (top < 2) return;
  const Index ci(top);
  const Term ct = committed_[top - 1].term;
  auto holds = [&](const Node& x) {
    const raft::RaftLog& l = x.core->log();
    return ci < l.first_index() || l.match_term(ci, ct);
  };
  for (auto& [id, x] : nodes_) {
    if (!x->alive || x->removed || holds(*x)) continue;
    const raft::ConfState cs = x->core->status().config;
    auto is_voter = [&](const std::vector<NodeId>& set) {
      return std::find(set.begin(), set.end(), x->id) != set.end();
    };
    if (!is_voter(cs.voters) && !is_voter(cs.voters_outgoing)) continue;
    const Index li = x->core->log().last_index();
    const Term lt = x->core->log().last_term();
    std::string voters;
    auto wins = [&](const std::vector<NodeId>& set) {
      if (set.empty()) return true;
      size_t votes = 0;
      for (NodeId v : set) {
        Node* y = node(v);
        if (y == nullptr || !y->alive || y->removed) continue;
        if (y == x.get() || y->core->log().is_up_to_date(li, lt)) {
          ++votes;
          voters += " n" + std::to_string(v.value());
        }
      }
      return 2 * votes > set.size();
    };
    if (wins(cs.voters) && wins(cs.voters_outgoing)) {
      fail("committed entries are protected",
           "node " + std::to_string(x->id.value()) + " lacks committed entry " + std::to_string(top) +
               " (term " + std::to_string(ct.value()) + ") but its log (last index " +
               std::to_string(li.value()) + ", term " + std::to_string(lt.value()) +
               ") is at least as up to date as that of a majority:" + voters);
      return;
    }
  }
}

// ---------------------------------------------------------------------------
// Watch clients

/// A revision as the watch checker sees it (key, type and value per event).
WatchRevision to_watch_revision(const kv::RevisionEvents& rev) {
  WatchRevision r;
  r.revision = rev.revision;
  for (const mvccpb::Event& e : rev.events) {
    const bool deleted = e.type() == mvccpb::Event::DELETE;
    r.events.push_back(WatchEvent{e.kv().key(), deleted, deleted ? "" : e.kv().value()});
  }
  return r;
}

bool Simulation::watch_attach(WatchClient& w) {
  std::vector<Node*> candidates;
  for (Node* n : members()) {
    if (n->alive && n->hub) candidates.push_back(n);
  }
  if (candidates.empty()) return false;
  Node& n = *candidates[watch_rng_.below(candidates.size())];
  kv::WatchSpec spec;
  spec.key = w.record.key;
  spec.range_end = w.record.range_end;
  spec.start_revision = w.next_revision;
  int64_t start = 0;
  auto id = n.hub->add(spec, [] {}, &start);
  RAFTKV_CHECK_MSG(id.is_ok(), id.status().to_string().c_str());
  if (w.next_revision <= 0) {
    w.record.start_revision = start;  // "from now", resolved by the node
  } else if (start != w.next_revision) {
    fail("watch", "node " + std::to_string(n.id.value()) + " started watcher " +
                      std::to_string(w.record.id) + " at revision " + std::to_string(start) +
                      " though revision " + std::to_string(w.next_revision) + " was asked for");
    return false;
  } else if (w.record.start_revision == 0) {
    w.record.start_revision = start;
  }
  w.next_revision = start;
  w.node = n.id;
  w.incarnation = n.incarnation;
  w.hub_id = *id;
  ++result_.stats.watches_started;
  trace("watch " + std::to_string(w.record.id) + " on n" + std::to_string(n.id.value()) +
        " from revision " + std::to_string(start));
  return true;
}

void Simulation::watch_take(WatchClient& w, kv::WatchHub& hub, size_t max_events) {
  kv::WatchDelivery d = hub.take(w.hub_id, max_events);
  for (const kv::RevisionEvents& rev : d.revisions) {
    WatchRevision r = to_watch_revision(rev);
#if RAFTKV_SIM_MUTATION == 5
    // Mutation 5: a re-watch starts at the last revision received.
    w.next_revision = rev.revision;
#else
    w.next_revision = rev.revision + 1;
#endif
    w.record.received.push_back(std::move(r));
    ++result_.stats.watch_revisions;
  }
  if (d.compact_revision != 0) {
    // Cancelled as etcd does; the client starts a new watcher from now.
    trace("watch " + std::to_string(w.record.id) + " cancelled: compact_revision " +
          std::to_string(d.compact_revision));
    hub.remove(w.hub_id);
    w.hub_id = 0;
    w.record.compact_revision = d.compact_revision;
    finished_watches_.push_back(w.record);
    w.record.received.clear();
    w.record.compact_revision = 0;
    w.record.start_revision = 0;
    w.next_revision = 0;
    ++result_.stats.watches_cancelled;
  }
}

void Simulation::watch_poll(WatchClient& w) {
  if (!result_.ok) return;
  Node* n = node(w.node);
  if (n == nullptr || !n->alive || n->removed || !n->hub || n->incarnation != w.incarnation ||
      w.hub_id == 0) {
    // First watch, or the serving node crashed or left: (re-)watch from the
    // revision after the last one received.
    w.hub_id = 0;
    watch_attach(w);
    return;
  }
  // The hub's catch-up worker, run inline: a few pages for unsynced watchers.
  for (int i = 0; i < 3 && n->hub->run_catch_up_once(); ++i) {
  }
  watch_take(w, *n->hub, watch_rng_.range(1, 16));
}

void Simulation::watch_final(WatchClient& w) {
  Node* n = node(w.node);
  if (n == nullptr || !n->alive || n->removed || !n->hub || n->incarnation != w.incarnation ||
      w.hub_id == 0) {
    w.hub_id = 0;
    if (!watch_attach(w)) return;
    n = node(w.node);
  }
  // Every member applied everything: the watcher must catch up with it.
  for (int round = 0; round < 100000; ++round) {
    while (n->hub->run_catch_up_once()) {
    }
    const size_t cancelled = finished_watches_.size();
    watch_take(w, *n->hub, 1 << 20);
    if (finished_watches_.size() != cancelled) return;  // its final history is the cancelled one
    const std::optional<int64_t> p = n->hub->progress(w.hub_id);
    if (p && *p >= n->hub->revision()) {
      w.record.complete_to = *p;
      return;
    }
  }
  fail("watch", "watcher " + std::to_string(w.record.id) + " never caught up with node " +
                    std::to_string(n->id.value()) + " at revision " +
                    std::to_string(n->hub->revision()));
}

void Simulation::record_revisions(Node& n) {
  for (const kv::RevisionEvents& rev : n.machine->last_events()) {
    WatchRevision r = to_watch_revision(rev);
    auto [it, fresh] = revision_history_.emplace(r.revision, r);
    if (!fresh && it->second.events != r.events) {
      fail("same events at the same revision",
           "node " + std::to_string(n.id.value()) + " produced other events at revision " +
               std::to_string(r.revision) + " than the node that applied it first");
      return;
    }
  }
}

void Simulation::propose_compaction() {
  Node* l = leader();
  if (l == nullptr || !l->alive || !l->machine || l->paused_until_us > now_us_) return;
  auto store = l->machine->kv_store();
  if (!store) return;
  // A revision the proposer has applied (so never a future one when the
  // entry applies); sometimes one already compacted (refused by every member).
  const int64_t top = store->revision();
  const int64_t rev = top - static_cast<int64_t>(watch_rng_.below(static_cast<uint64_t>(std::min<int64_t>(top, 30))));
  if (rev <= 1) return;
  raftkvpb::InternalRequest req;
  req.mutable_header()->set_id(next_op_id_++);
  req.mutable_header()->set_member_id(l->id.value());
  req.mutable_compaction()->set_revision(rev);
  if (l->core->propose(req.SerializeAsString()).is_ok()) {
    trace("compact at revision " + std::to_string(rev) + " via n" + std::to_string(l->id.value()));
  }
}

// ---------------------------------------------------------------------------
// Leases (kv::Store runs)

void Simulation::start_lessor(Node& n) {
  // The Lease service's wiring (src/api/lease_service.cc) on a simulated
  // node: leadership from the Raft core, leases from the node's store,
  // revokes proposed on this node, and simulated time. No thread: the
  // simulator calls tick() (kLessorTick).
  Node* np = &n;
  kv::Lessor::Hooks h;
  h.leader_term = [np]() -> uint64_t {
    if (!np->alive || !np->core || np->core->role() != Role::kLeader) return 0;
    return np->core->term().value();
  };
  h.applied_term = [np] { return np->applied_term.value(); };
  h.leases = [np] {
    std::vector<std::pair<int64_t, int64_t>> out;
    std::shared_ptr<kv::Store> store = np->machine ? np->machine->kv_store() : nullptr;
    if (!store) return out;
    for (int64_t id : store->leases()) {
      if (std::optional<int64_t> ttl = store->lease_ttl(id)) out.emplace_back(id, *ttl);
    }
    return out;
  };
  h.lease_ttl = [np](int64_t id) -> std::optional<int64_t> {
    std::shared_ptr<kv::Store> store = np->machine ? np->machine->kv_store() : nullptr;
    if (!store) return std::nullopt;
    return store->lease_ttl(id);
  };
  h.revoke = [this, np](int64_t id) { lessor_revoke(*np, id); };
  h.now = [this] { return kv::Lessor::Clock::time_point{} + std::chrono::microseconds(now_us_); };
  n.lessor = std::make_unique<kv::Lessor>(std::move(h), kv::Lessor::Options{});
  schedule(rng_.range(1, kLessorTickUs), EvKind::kLessorTick, static_cast<int>(n.id.value()),
           n.incarnation);
}

void Simulation::lessor_revoke(Node& n, int64_t lease) {
  if (!n.alive || !n.core) return;
  const uint64_t op_id = next_op_id_++;
  raftkvpb::InternalRequest req;
  req.mutable_header()->set_id(op_id);
  req.mutable_header()->set_member_id(n.id.value());
  req.mutable_lease_revoke()->set_id(lease);
  Status s = n.core->propose(req.SerializeAsString());
  trace("lessor of n" + std::to_string(n.id.value()) + " expires lease " + std::to_string(lease) +
        " -> " + s.to_string());
  if (s.is_ok()) revoke_proposals_[op_id] = RevokeProposal{true, now_us_};
}

void Simulation::lease_step(LeaseClient& c) {
  if (!result_.ok || phase_ != Phase::kFaults) return;  // afterwards every lease lapses
  schedule(lease_rng_.range(30 * kMs, 200 * kMs), EvKind::kLeaseStep, c.index);
  if (c.req != LeaseClient::Req::kNone) return;
  // Keep-alives first: a kept lease is renewed every third of its TTL.
  for (const LeaseClient::Held& h : c.held) {
    if (h.keep && now_us_ >= h.acked_send_us + static_cast<uint64_t>(h.ttl_seconds) * kSec / 3) {
      lease_send(c, LeaseClient::Req::kKeepAlive, h.id, h.ttl_seconds);
      return;
    }
  }
  const uint64_t r = lease_rng_.below(100);
  if (r < 20 && static_cast<int>(c.held.size()) < kMaxLeasesPerClient) {
    const int64_t id = static_cast<int64_t>((static_cast<uint64_t>(c.index + 1) << 40) | ++c.seq);
    const int64_t ttl = static_cast<int64_t>(lease_rng_.range(
        static_cast<uint64_t>(lease_ttl_min_s_), static_cast<uint64_t>(lease_ttl_max_s_)));
    lease_pool_.push_back(id);
    lease_send(c, LeaseClient::Req::kGrant, id, ttl);
  } else if (r < 28 && !c.held.empty()) {
    const LeaseClient::Held& h = c.held[lease_rng_.below(c.held.size())];
    lease_send(c, LeaseClient::Req::kRevoke, h.id, h.ttl_seconds);
  } else if (r < 36 && !c.held.empty()) {
    // Stop keeping it alive: the leader's lessor must expire it.
    LeaseClient::Held& h = c.held[lease_rng_.below(c.held.size())];
    if (h.keep) {
      trace("lease client " + std::to_string(c.index) + " lets lease " + std::to_string(h.id) +
            " lapse");
    }
    h.keep = false;
  }
  // Lapsed leases are forgotten once their TTL passed.
  std::erase_if(c.held, [&](const LeaseClient::Held& h) {
    return !h.keep && now_us_ > h.acked_send_us + static_cast<uint64_t>(h.ttl_seconds) * kSec;
  });
}

void Simulation::lease_send(LeaseClient& c, LeaseClient::Req req, int64_t lease, int64_t ttl) {
  std::vector<Node*> ms = members();
  Node* target = nullptr;
  Node* l = leader();
  if (l != nullptr && lease_rng_.chance(0.6)) target = l;
  if (target == nullptr) target = ms[lease_rng_.below(ms.size())];
  if (!target->alive) return;  // connection refused: try again at the next step
  c.req = req;
  c.req_id = next_op_id_++;  // unique over every request, so stale events never match
  c.req_lease = lease;
  c.req_ttl = ttl;
  c.req_send_us = now_us_;
  c.node = target->id;
  c.node_incarnation = target->incarnation;
  c.forwarded = false;
  schedule(lease_rng_.range(latency_min_us_, latency_max_us_), EvKind::kLeaseArrive, c.index,
           c.req_id);
  schedule(client_timeout_us_, EvKind::kLeaseTimeout, c.index, c.req_id);
}

void Simulation::lease_arrive(LeaseClient& c, uint64_t req_id) {
  if (c.req == LeaseClient::Req::kNone || c.req_id != req_id) return;
  Node* n = node(c.node);
  if (n == nullptr || !n->alive || n->incarnation != c.node_incarnation) return;  // lost: times out
  if (n->paused_until_us > now_us_) {
    // Held in the socket of the paused process: it handles it on resume,
    // before it learns that it may have been deposed meanwhile.
    schedule(n->paused_until_us - now_us_ + lease_rng_.below(1000), EvKind::kLeaseArrive, c.index,
             req_id);
    return;
  }
  const std::string who = "lease client " + std::to_string(c.index) + " ";
  if (c.req != LeaseClient::Req::kKeepAlive) {
    raftkvpb::InternalRequest req;
    req.mutable_header()->set_id(c.req_id);
    req.mutable_header()->set_member_id(n->id.value());
    if (c.req == LeaseClient::Req::kGrant) {
      req.mutable_lease_grant()->set_id(c.req_lease);
      req.mutable_lease_grant()->set_ttl(c.req_ttl);
    } else {
      req.mutable_lease_revoke()->set_id(c.req_lease);
    }
    Status s = n->core->propose(req.SerializeAsString());
    trace(who + (c.req == LeaseClient::Req::kGrant ? "grants" : "revokes") + " lease " +
          std::to_string(c.req_lease) + " via n" + std::to_string(n->id.value()) + " -> " +
          s.to_string());
    if (!s.is_ok()) {
      lease_done(c);
      return;
    }
    if (c.req == LeaseClient::Req::kRevoke) {
      revoke_proposals_[c.req_id] = RevokeProposal{false, now_us_};
    }
    n->pending_lease_ops[c.req_id] = c.index;
    return;
  }
  // Keep-alive: renewed by the leader's lessor only; a follower forwards it
  // to the leader it knows, as the Lease service does.
  Result<int64_t> ttl = n->lessor->renew(c.req_lease);
  if (!ttl && ttl.status().code() == Code::kFailedPrecondition && !c.forwarded) {
    Node* l = node(n->core->leader());
    if (l != nullptr && l != n && linked(n->id, l->id) && !lease_rng_.chance(loss_)) {
      c.forwarded = true;
      c.node = l->id;
      c.node_incarnation = l->incarnation;
      schedule(lease_rng_.range(latency_min_us_, latency_max_us_), EvKind::kLeaseArrive, c.index,
               req_id);
      return;
    }
  }
  c.answer = ttl ? LeaseClient::Answer::kRenewed
                 : (ttl.status().code() == Code::kNotFound ? LeaseClient::Answer::kGone
                                                           : LeaseClient::Answer::kRefused);
  c.answer_ttl = ttl ? *ttl : 0;
  trace(who + "keep-alive of lease " + std::to_string(c.req_lease) + " at n" +
        std::to_string(n->id.value()) + " -> " +
        (ttl ? "ttl " + std::to_string(*ttl) : ttl.status().to_string()));
  schedule(lease_rng_.range(latency_min_us_, latency_max_us_), EvKind::kLeaseReply, c.index,
           req_id);
}

void Simulation::lease_reply(LeaseClient& c, uint64_t req_id) {
  if (c.req != LeaseClient::Req::kKeepAlive || c.req_id != req_id) return;  // timed out meanwhile
  auto h = std::find_if(c.held.begin(), c.held.end(),
                        [&](const LeaseClient::Held& x) { return x.id == c.req_lease; });
  if (c.answer == LeaseClient::Answer::kRenewed) {
    lease_acks_.push_back(LeaseAck{c.req_lease, c.req_send_us, c.answer_ttl, true});
    ++result_.stats.lease_keepalives;
    if (h != c.held.end()) h->acked_send_us = c.req_send_us;
  } else if (c.answer == LeaseClient::Answer::kGone && h != c.held.end()) {
    c.held.erase(h);  // expired (or not yet applied on that leader): etcd ends the keep-alive
  }
  lease_done(c);
}

void Simulation::lease_done(LeaseClient& c) {
  if (c.req == LeaseClient::Req::kRevoke) {
    // Revoked, refused, or unknown: the client gives the lease up either way.
    std::erase_if(c.held, [&](const LeaseClient::Held& h) { return h.id == c.req_lease; });
  }
  c.req = LeaseClient::Req::kNone;
}

void Simulation::record_lease_entry(const raftkvpb::InternalRequest& req,
                                    const MachineOutcome& out) {
  // The first application of an entry: what the lease checker judges.
  LeaseLogEntry e;
  e.index = out.index.value();
  e.ok = out.ok;
  if (req.has_put()) {
    e.kind = LeaseLogEntry::Kind::kPut;
    e.key = req.put().key();
    e.lease = req.put().lease();
  } else if (req.has_delete_range()) {
    e.kind = LeaseLogEntry::Kind::kDelete;
    e.key = req.delete_range().key();
  } else if (req.has_txn()) {
    if (!out.ok) return;  // the CAS failed: nothing changed
    e.kind = LeaseLogEntry::Kind::kPut;  // its put carries no lease: the key leaves any lease
    e.key = req.txn().success(0).request_put().key();
  } else if (req.has_lease_grant()) {
    e.kind = LeaseLogEntry::Kind::kGrant;
    e.lease = req.lease_grant().id();
    e.ttl_seconds = req.lease_grant().ttl();
    if (e.ok) ++result_.stats.leases_granted;
  } else if (req.has_lease_revoke()) {
    e.kind = LeaseLogEntry::Kind::kRevoke;
    e.lease = req.lease_revoke().id();
    auto p = revoke_proposals_.find(req.header().id());
    RAFTKV_CHECK_MSG(p != revoke_proposals_.end(), "sim: a revoke nobody proposed was applied");
    e.expiry = p->second.expiry;
    e.proposed_us = p->second.proposed_us;
    e.applied_us = now_us_;
    if (out.created_revision != 0) {
      auto r = revision_history_.find(out.created_revision);
      RAFTKV_CHECK(r != revision_history_.end());
      e.events = r->second.events;
    }
    if (e.ok) ++(e.expiry ? result_.stats.leases_expired : result_.stats.leases_revoked);
    trace(std::string(e.expiry ? "expiry" : "client") + " revoke of lease " +
          std::to_string(e.lease) + " applied at index " + std::to_string(e.index) + ": " +
          (e.ok ? "" : "not found, ") + std::to_string(e.events.size()) + " keys deleted");
    // The keys it deleted are writes in the linearizable history: between
    // the proposal and the first application (the commit lies in between).
    for (const WatchEvent& ev : e.events) {
      Op op;
      op.id = next_op_id_++;
      op.client = -2;
      op.kind = OpKind::kDelete;
      op.key = ev.key;
      op.lease = e.lease;
      op.ok = true;
      op.invoke_us = e.proposed_us;
      op.complete_us = now_us_;
      history_.push_back(op);
      dropped_.push_back(false);
    }
  } else {
    return;  // compaction: no key changes
  }
  lease_log_.push_back(std::move(e));
}

bool Simulation::leases_gone(std::string* detail) {
  for (Node* n : members()) {
    std::shared_ptr<kv::Store> store = n->alive && n->machine ? n->machine->kv_store() : nullptr;
    if (!store) continue;
    const std::vector<int64_t> left = store->leases();
    if (!left.empty()) {
      *detail = "node " + std::to_string(n->id.value()) + " still holds lease " +
                std::to_string(left.front()) + " (" + std::to_string(left.size()) +
                " leases in all) though nobody has kept any lease alive since the faults ended";
      return false;
    }
  }
  return true;
}

// ---------------------------------------------------------------------------
// Final checks

void Simulation::final_checks() {
  // Every member holds the same state (kv::Store's own HashKV).
  std::optional<uint64_t> hash;
  NodeId first;
  for (Node* n : members()) {
    const uint64_t h = n->machine->state_hash();
    if (!hash) {
      hash = h;
      first = n->id;
    } else if (*hash != h) {
      fail("same state at the same index", "HashKV differs between nodes " +
                                               std::to_string(first.value()) + " and " +
                                               std::to_string(n->id.value()) + " at index " +
                                               std::to_string(n->applied.value()));
      return;
    }
  }
  // Serializable reads return the state at the reader's applied index.
  for (const SerialRead& r : serial_reads_) {
    Value expect;
    for (const auto& [index, v] : key_history_[r.key]) {
      if (index > r.applied.value()) break;
      expect = v;
    }
    if (expect != r.read) {
      fail("serializable reads return a past state",
           "op " + std::to_string(r.op_id) + " read " + r.key + " at applied index " +
               std::to_string(r.applied.value()) + " and got " + (r.read ? *r.read : "<none>") +
               ", but the committed history holds " + (expect ? *expect : "<none>"));
      return;
    }
  }
  std::vector<Op> checked;
  for (size_t i = 0; i < history_.size(); ++i) {
    if (!dropped_[i]) checked.push_back(history_[i]);
  }
  CheckResult lin = check_linearizable(checked);
  result_.stats.checker_steps += lin.steps;
  if (lin.verdict == CheckResult::Verdict::kViolation) {
    fail("linearizability", "key " + lin.key + " has no linearization:\n" + lin.detail);
    return;
  }
  result_.stats.checker_gave_up = lin.verdict == CheckResult::Verdict::kGaveUp;
  // Every acknowledged write is in the final state or overwritten: the final
  // value of each key, read on every member, must linearize after everything.
  std::vector<Op> with_final = checked;
  Node* any = members().front();
  for (int k = 0; k < keys_; ++k) {
    Op op;
    op.id = next_op_id_++;
    op.client = -1;
    op.kind = OpKind::kGet;
    op.key = "k" + std::to_string(k);
    op.invoke_us = now_us_ + 1;
    op.complete_us = now_us_ + 1;
    op.read = any->machine->get(op.key);
    if (op.read != ref_state_[op.key]) {
      fail("final state", "key " + op.key + " on node " + std::to_string(any->id.value()) +
                              " differs from the committed history");
      return;
    }
    with_final.push_back(op);
  }
  if (lin.verdict == CheckResult::Verdict::kLinearizable) {
    CheckResult fin = check_linearizable(with_final);
    result_.stats.checker_steps += fin.steps;
    if (fin.verdict == CheckResult::Verdict::kViolation) {
      fail("acknowledged writes survive",
           "the final state of key " + fin.key + " contradicts the acknowledged writes:\n" + fin.detail);
    }
  }
  if (!result_.ok) return;
  if (leases_on_) {
    // Grants, puts with leases and revokes followed etcd's rules, and no
    // lessor expired a lease before a client's acknowledged TTL ran out.
    const std::string err = check_leases(lease_log_, lease_acks_);
    if (!err.empty()) {
      fail("leases", err);
      return;
    }
  }
  if (watchers_.empty()) return;
  // Every watcher saw exactly the store's history of its range.
  for (WatchClient& w : watchers_) {
    watch_final(w);
    if (!result_.ok) return;
  }
  std::vector<WatchRevision> history;
  history.reserve(revision_history_.size());
  for (const auto& [rev, r] : revision_history_) history.push_back(r);
  std::vector<const WatchRecord*> records;
  for (const WatchRecord& r : finished_watches_) records.push_back(&r);
  for (const WatchClient& w : watchers_) records.push_back(&w.record);
  for (const WatchRecord* r : records) {
    const std::string err = check_watch(*r, history);
    if (!err.empty()) {
      fail("watchers see exactly the history of their range", err);
      return;
    }
  }
}

// ---------------------------------------------------------------------------

RunResult Simulation::run() {
  std::filesystem::path base = opt_.work_dir.empty() ? std::filesystem::temp_directory_path()
                                                     : std::filesystem::path(opt_.work_dir);
  run_dir_ = (base / ("raftkv-sim-" + std::to_string(opt_.seed))).string();
  std::error_code ec;
  std::filesystem::remove_all(run_dir_, ec);
  std::filesystem::create_directories(run_dir_, ec);
  RAFTKV_CHECK_MSG(!ec, "sim: cannot create the work directory");

  choose_parameters();
  trace("seed " + std::to_string(opt_.seed) + " nodes " + std::to_string(opt_.nodes) + " faults " +
        fault_classes_name(faults_) + " keys " + std::to_string(keys_) + " clients " +
        std::to_string(clients_n_));
  if (opt_.kv_store) {
    // Watch clients: their own random stream, so that they do not shift the
    // decisions of the rest of the run.
    watch_rng_ = Rng(rng_.fork());
    hub_buffer_ = watch_rng_.chance(0.5) ? watch_rng_.range(1, 8) : 1024;
    const int n_watchers = static_cast<int>(watch_rng_.range(1, 3));
    for (int i = 0; i < n_watchers; ++i) {
      WatchClient w;
      w.record.id = i;
      const uint64_t form = watch_rng_.below(3);
      w.record.key = "k" + std::to_string(watch_rng_.below(static_cast<uint64_t>(keys_)));
      if (form == 1) {
        w.record.key = "k";  // prefix: every key
        w.record.range_end = "l";
      } else if (form == 2) {
        w.record.range_end = std::string(1, '\0');  // from a key on
      }
      // Half replay the history from revision 1, half start from "now".
      w.next_revision = watch_rng_.chance(0.5) ? 1 : 0;
      watchers_.push_back(std::move(w));
      schedule(watch_rng_.range(0, 500 * kMs), EvKind::kWatchPoll, i);
    }
    // MVCC compactions (etcd's Compact), so that watchers behind them are
    // cancelled with compact_revision.
    if (watch_rng_.chance(0.5)) schedule(watch_rng_.range(300 * kMs, 2 * kSec), EvKind::kCompact);
    // Lease clients, with their own stream too. TTLs from the server's
    // minimum (1.5 election timeouts: 10 ticks of 10 ms) to 2 s above it.
    leases_on_ = true;
    lease_rng_ = Rng(watch_rng_.fork());
    lease_ttl_min_s_ = kv::lease_min_ttl_seconds(10 * 10);
    lease_ttl_max_s_ = lease_ttl_min_s_ + static_cast<int64_t>(lease_rng_.range(0, 2));
    lease_pool_.push_back(static_cast<int64_t>((0x7full << 40) | 1));  // never granted
    const int n_lease_clients = static_cast<int>(lease_rng_.range(1, 2));
    for (int i = 0; i < n_lease_clients; ++i) {
      LeaseClient c;
      c.index = i;
      lease_clients_.push_back(c);
      schedule(lease_rng_.range(0, 300 * kMs), EvKind::kLeaseStep, i);
    }
  }
  for (int i = 1; i <= opt_.nodes; ++i) create_node(NodeId(static_cast<uint64_t>(i))).joined = true;
  next_node_id_ = static_cast<uint64_t>(opt_.nodes) + 1;
  for (int i = 0; i < clients_n_; ++i) {
    ClientState c;
    c.index = i;
    clients_.push_back(c);
    schedule(rng_.range(0, 100 * kMs), EvKind::kClientNext, i);
  }
  if (faults_ & (kFaultNetwork | kFaultPartition | kFaultCrash | kFaultFigure8)) {
    schedule(rng_.range(100 * kMs, fault_interval_us_), EvKind::kFault);
  }
  if (faults_ & kFaultMembership) schedule(rng_.range(300 * kMs, 1 * kSec), EvKind::kAdmin);
  schedule(fault_phase_us_, EvKind::kEndFaults);

  uint64_t events = 0;
  while (result_.ok && phase_ != Phase::kDone && !queue_.empty()) {
    if (++events > kMaxEventsPerRun) {
      fail("bounded work", "the run exceeded " + std::to_string(kMaxEventsPerRun) + " events");
      break;
    }
    Event e = queue_.top();
    queue_.pop();
    RAFTKV_CHECK(e.at_us >= now_us_);
    now_us_ = e.at_us;
    trace_hash_ = mix(trace_hash_, (static_cast<uint64_t>(e.kind) << 48) ^ e.at_us ^
                                       (static_cast<uint64_t>(e.a) << 40));
    handle(e);
    if (!result_.ok) break;
    drain();
    if (!result_.ok) break;
    check_step();
  }
  if (result_.ok && phase_ == Phase::kDone) final_checks();
  if (result_.ok && phase_ != Phase::kDone) fail("liveness", "the event queue ran dry");

  result_.stats.sim_us = now_us_;
  result_.stats.events = events;
  result_.stats.trace_hash = trace_hash_;
  result_.last_events.assign(trace_.begin(), trace_.end());
  for (auto& [id, n] : nodes_) {
    n->core.reset();
    n->hub.reset();
    if (n->machine) n->machine->crash();  // nothing of it is needed any more
    n->machine.reset();
  }
  std::filesystem::remove_all(run_dir_, ec);
  return result_;
}

}  // namespace

RunResult run_simulation(const RunOptions& options) {
  RAFTKV_CHECK(options.nodes >= 1 && options.nodes + kMaxAddedNodes < static_cast<int>(kMaxNodes));
  Simulation sim(options);
  return sim.run();
}

}  // namespace raftkv::sim
