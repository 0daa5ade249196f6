// kv::Store: the replicated state machine of raftkv — an MVCC key-value store
// with etcd v3 semantics (revisions, create/mod revision, version, ranges,
// history reads, transactions, compaction, leases) persisted in RocksDB.
//
// Determinism: applying the same log entries yields the same state, the same
// responses, the same events and the same HashKV on every member, however the
// entries are grouped into apply batches and whatever the member's RocksDB
// compaction or restart history (docs/kv.md, "Determinism").
//
// Threading contract:
//   * ONE apply thread calls apply() and close(). It owns the write path;
//     nothing else writes state. flush() may come from any thread.
//   * Any number of threads may call the reads (range, hash_kv, the getters,
//     snapshot, wait_physical_compaction) concurrently with apply().
//     A read sees the state after some whole applied batch-prefix: it scans
//     the in-memory index under a shared lock, pins a RocksDB snapshot under
//     the same lock and fetches values from that snapshot after releasing it.
//   * A background thread owned by the store removes compacted revisions from
//     RocksDB (physical compaction); it never changes what any read returns.
//
// Durability (docs/kv.md, "Durability"): RocksDB's own WAL is off by default
// because the Raft log is the source of truth. Each apply() batch is one
// RocksDB write batch that also records the applied Raft index, so whatever
// survives a crash is a prefix of the applied batches with a matching
// applied_index(); the server replays the Raft log after applied_index().
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <shared_mutex>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "base/status.h"
#include "etcd/etcdserverpb/rpc.pb.h"
#include "etcd/mvccpb/kv.pb.h"
#include "kv/auth_store.h"
#include "kv/index.h"
#include "raft/types.h"
#include "raftkv/internal.pb.h"

namespace rocksdb {
class DB;
class Snapshot;
struct ReadOptions;
}  // namespace rocksdb

namespace raftkv::kv {

struct StoreOptions {
  /// Write RocksDB's own WAL too. Off: the Raft log is the source of truth and
  /// a crash loses only applied state the server replays (docs/kv.md).
  bool rocksdb_wal = false;
  /// Flush memtables on close() so a clean restart replays nothing. Tests set
  /// false to simulate a crash that loses every unflushed batch.
  bool flush_on_close = true;
  /// Writes that would make logical_size_bytes() exceed this fail with
  /// ResourceExhausted "etcdserver: mvcc: database space exceeded".
  /// 0 = etcd's default, 2 GiB.
  uint64_t quota_backend_bytes = 0;
  /// validate(): largest encoded InternalRequest (etcd default 1.5 MiB).
  uint64_t max_request_bytes = 1572864;
  /// validate(): most operations per txn branch (etcd default 128).
  int max_txn_ops = 128;
  /// Fill Event.prev_kv for every event (costs a value read per change).
  /// The initial value of set_event_prev_kv(): a watch hub turns it off while
  /// no watcher asked for prev_kv.
  bool event_prev_kv = true;
  /// RocksDB block cache.
  uint64_t block_cache_bytes = 64ull << 20;
  /// Physical compaction deletes at most this many revisions per write batch.
  uint32_t physical_compaction_batch = 4096;

  uint64_t effective_quota_bytes() const {
    return quota_backend_bytes == 0 ? (2ull << 30) : quota_backend_bytes;
  }
};

/// One committed Raft entry handed to apply(). `request` is null for entries
/// with no effect on the key-value state (the leader's empty entry, a
/// configuration change): they only advance applied_index().
struct ApplyEntry {
  raft::Index index;
  const raftkvpb::InternalRequest* request = nullptr;
};

/// What one request produced: an error (deterministic, e.g. compacted
/// revision, key not found, no space) or its response with header.revision set.
struct ApplyOutcome {
  raft::Index index;
  uint64_t request_id = 0;  ///< InternalRequest.header.id
  Status status;
  raftkvpb::InternalResponse response;  ///< Meaningful when status.is_ok().
};

/// All events of one revision, in sub-revision order (one txn = one group).
struct RevisionEvents {
  int64_t revision = 0;
  std::vector<mvccpb::Event> events;
};

struct ApplyResult {
  std::vector<ApplyOutcome> outcomes;  ///< One per entry with a request, in order.
  std::vector<RevisionEvents> events;  ///< Ascending revision.
};

/// A page of history for a watcher that starts in the past.
struct EventPage {
  std::vector<RevisionEvents> revisions;  ///< Ascending; whole revisions only.
  int64_t next_revision = 0;  ///< Ask again from here for more (revision()+1 = caught up).
  int64_t revision = 0;       ///< Store revision the page was read at.
};

/// A consistent image of the store at one applied index, as a stream of
/// framed, checksummed chunks (format in docs/kv.md). Holds a RocksDB
/// snapshot: destroy it before the Store.
class SnapshotStream {
 public:
  virtual ~SnapshotStream() = default;
  virtual raft::Index applied_index() const = 0;
  /// The next chunk, or std::nullopt after the last one. A chunk holds about
  /// 1 MiB of records (one large record may overshoot it).
  virtual Result<std::optional<std::string>> next_chunk() = 0;
};

/// Produces the chunks of a snapshot stream for Store::restore, in order;
/// std::nullopt at the end.
using ChunkSource = std::function<Result<std::optional<std::string>>()>;

class Store {
 public:
  /// Largest number of entries one apply() call accepts.
  static constexpr size_t kMaxApplyBatchEntries = 65536;

  /// Opens (creating if missing) the store in `dir` and rebuilds the index.
  /// Fails with Corruption if `dir` holds an unfinished restore.
  static Result<std::unique_ptr<Store>> open(const std::string& dir, const StoreOptions& options);

  /// Builds a new store in `dir` (which must not exist or be empty) from a
  /// snapshot stream, validating every chunk, and opens it. A crash midway
  /// leaves a directory open() refuses; delete it and retry.
  static Result<std::unique_ptr<Store>> restore(const std::string& dir, const StoreOptions& options,
                                                const ChunkSource& source);

  /// How restore_for_new_cluster rewrites the restored state.
  struct Rebase {
    /// The Raft index the restored state counts as applied at: the last
    /// bootstrap entry of the new cluster's log.
    raft::Index applied_index;
  };
  /// Like restore, for a store that seeds a new cluster (backup restore):
  /// the applied index becomes `rebase.applied_index` and the alarms are
  /// dropped (they name members of the old cluster). Keys, revisions,
  /// compaction point and leases are kept.
  static Result<std::unique_ptr<Store>> restore_for_new_cluster(const std::string& dir,
                                                                const StoreOptions& options,
                                                                const ChunkSource& source,
                                                                Rebase rebase);

  ~Store();
  Store(const Store&) = delete;
  Store& operator=(const Store&) = delete;

  /// Checks a request before it is proposed, as etcd's API layer does: empty
  /// keys, ignore_value/ignore_lease with a value/lease, txn op counts,
  /// duplicate keys in a txn, encoded size. Pure; any thread.
  static Status validate(const raftkvpb::InternalRequest& request, const StoreOptions& options);

  /// Applies committed entries in one RocksDB write batch recording the last
  /// index. Apply thread only.
  /// REQUIRES: indexes strictly increase and are > applied_index();
  ///           batch.size() <= kMaxApplyBatchEntries.
  /// An error here is an I/O failure: the store refuses further applies and
  /// the node must stop (the Raft log still holds the entries).
  Result<ApplyResult> apply(std::span<const ApplyEntry> batch);

  /// Range read at the current or a past revision (etcd's Range semantics).
  /// Any thread. header.revision is the store revision at the read.
  Result<etcdserverpb::RangeResponse> range(const etcdserverpb::RangeRequest& request) const;

  /// etcd's HashKV: CRC-32C over every retained revision <= `revision`
  /// (0 = current). Equal on members that applied the same entries. Any thread.
  Result<etcdserverpb::HashKVResponse> hash_kv(int64_t revision) const;

  /// The events of revisions [start_revision, revision()] on keys within
  /// (key, range_end) (etcd's range forms), oldest first, as a watcher
  /// starting at start_revision must receive them before live events. Stops
  /// after the revision in which the page reaches `max_events` (a revision is
  /// never split); page on from next_revision. prev_kv is filled when asked
  /// and the previous change is retained. Compacted (etcd) when
  /// start_revision < compact_revision(), including when a compaction passes
  /// start_revision during the read. Any thread.
  Result<EventPage> events_since(int64_t start_revision, std::string_view key,
                                 std::string_view range_end, bool prev_kv, size_t max_events) const;

  /// etcd's Hash: one checksum of the whole store state — the key history
  /// HashKV covers plus the revision, the compaction point, the leases and the
  /// alarms — read at one consistent point. Equal on members that applied the
  /// same entries. Any thread.
  Result<etcdserverpb::HashResponse> hash() const;

  /// The active alarms, ordered by (member id, alarm type). Any thread.
  std::vector<etcdserverpb::AlarmMember> alarms() const;
  /// Whether any member has raised `type`. Any thread.
  bool alarm_active(etcdserverpb::AlarmType type) const;
  /// compact_revision() when NOSPACE was last activated (or when the store
  /// was opened): a compaction since then is what may have freed space.
  /// Local, not part of the replicated state. Any thread.
  int64_t compact_revision_at_nospace() const { return compact_at_nospace_.load(); }

  /// Bytes the store's files take on disk (RocksDB's SST, log and manifest
  /// files): Maintenance.Status' dbSize. Any thread.
  uint64_t disk_size_bytes() const;

  /// Compacts the whole RocksDB key space (Maintenance.Defragment): rewrites
  /// every SST file without the entries that MVCC compaction deleted. Runs
  /// on the caller's thread alongside applies and reads (RocksDB compactions
  /// never block either); calls are serialized. Returns early with
  /// Unavailable once close() starts. Any thread but the apply thread.
  Status compact_disk();

  /// Whether apply() fills Event.prev_kv (one value read per change). Any
  /// thread; takes effect from the next change applied.
  void set_event_prev_kv(bool on) { event_prev_kv_.store(on, std::memory_order_relaxed); }
  bool event_prev_kv() const { return event_prev_kv_.load(std::memory_order_relaxed); }

  /// Fills ev->prev_kv, if it is empty, with the key's value before the
  /// change `ev` describes (an event apply() produced): nothing for a put
  /// that created the key, or if that value is compacted. Any thread.
  Status fill_prev_kv(mvccpb::Event* ev) const;

  /// A consistent image at the current applied index. Any thread.
  Result<std::unique_ptr<SnapshotStream>> snapshot() const;

  /// Persists every applied batch (memtable flush). Any thread (the server
  /// flushes from its snapshot thread while the apply thread goes on).
  Status flush();

  /// Stops the background thread and closes RocksDB (flushing first if
  /// options.flush_on_close). Apply thread; also done by the destructor.
  /// REQUIRES: no read or SnapshotStream in progress or started afterwards.
  Status close();

  raft::Index applied_index() const { return raft::Index(applied_index_.load()); }
  int64_t revision() const { return revision_.load(); }
  /// -1 until the first compaction (as in etcd).
  int64_t compact_revision() const { return compact_revision_.load(); }
  /// Compaction revision whose old revisions are gone from disk too.
  int64_t physical_compact_revision() const;
  /// Waits until physical_compact_revision() >= rev (for Compact with physical=true).
  bool wait_physical_compaction(int64_t rev, std::chrono::milliseconds timeout) const;
  /// Bytes counted against the quota: keys + values + per-revision overhead of
  /// every retained revision. Deterministic (unlike the RocksDB file size).
  uint64_t logical_size_bytes() const;
  /// Number of keys with retained history (live or not yet compacted away).
  size_t index_key_count() const;

  /// Granted leases and the keys currently attached to one. Any thread; while
  /// apply() runs they may already show changes of the batch in progress.
  bool lease_exists(int64_t id) const;
  std::vector<std::string> lease_keys(int64_t id) const;
  std::vector<int64_t> leases() const;
  /// The TTL a lease was granted with (seconds), or nullopt if it is not granted.
  std::optional<int64_t> lease_ttl(int64_t id) const;

  /// The replicated auth state (users, roles, enabled flag, auth revision).
  /// Any thread.
  const AuthStore& auth() const { return auth_; }

  /// May `user`, identified against auth revision `auth_revision`, make
  /// `req`? OK while auth is disabled. Otherwise etcd's checks: an empty user
  /// (user name is empty), an auth state changed since `auth_revision`
  /// (revision of auth store is old), and the permissions every operation
  /// needs: Range read; Put write (+ read with prev_kv, + write on every key
  /// of its lease); DeleteRange write (+ read with prev_kv); Txn read on every
  /// compare and every operation of both branches, recursively through
  /// nested txns; Compaction root; LeaseRevoke write on every attached key;
  /// LeaseGrant any user. Auth requests are checked by AuthStore::apply.
  /// apply() runs the same check for every request it applies, so a change
  /// of permissions takes effect in log order on every member. Any thread.
  Status check_permission(const raftkvpb::InternalRequest& req, std::string_view user,
                          uint64_t auth_revision) const;

 private:
  struct TxnContext;
  struct LeaseState {
    int64_t ttl_seconds = 0;
    std::set<std::string> keys;
  };

  explicit Store(std::string dir, StoreOptions options);
  Status open_db();
  Status load();
  void start_compactor();
  void compactor_loop();
  Status run_physical_compaction(int64_t rev);

  // Apply helpers (apply thread).
  Status apply_one(const raftkvpb::InternalRequest& req, ApplyOutcome* out, ApplyResult* result);
  Status apply_put(TxnContext& t, const etcdserverpb::PutRequest& req,
                   etcdserverpb::PutResponse* resp);
  Status apply_delete(TxnContext& t, const etcdserverpb::DeleteRangeRequest& req,
                      etcdserverpb::DeleteRangeResponse* resp);
  Status apply_txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp,
                   ApplyResult* result);
  void exec_txn_ops(TxnContext& t, const etcdserverpb::TxnRequest& req,
                    const std::vector<bool>& path, size_t& pos, etcdserverpb::TxnResponse* resp);
  bool compare_holds(const etcdserverpb::Compare& c) const;
  void compare_path(const etcdserverpb::TxnRequest& req, std::vector<bool>* path) const;
  Status check_txn_ops(const etcdserverpb::TxnRequest& req, const std::vector<bool>& path,
                       size_t& pos) const;
  Status apply_alarm(const etcdserverpb::AlarmRequest& req, etcdserverpb::AlarmResponse* resp);
  // The refusal an active alarm imposes on `req` (OK when none): etcd's
  // capped applier under NOSPACE, its corrupt applier under CORRUPT.
  Status alarm_refusal(const raftkvpb::InternalRequest& req) const;
  Result<etcdserverpb::HashKVResponse> hash_kv_impl(int64_t revision,
                                                    std::string* extra_state) const;
  static Result<std::unique_ptr<Store>> restore_impl(const std::string& dir,
                                                     const StoreOptions& options,
                                                     const ChunkSource& source,
                                                     const Rebase* rebase);
  Status apply_compaction(const etcdserverpb::CompactionRequest& req,
                          etcdserverpb::CompactionResponse* resp);
  Status apply_lease_grant(const etcdserverpb::LeaseGrantRequest& req,
                           etcdserverpb::LeaseGrantResponse* resp);
  Status apply_lease_revoke(const etcdserverpb::LeaseRevokeRequest& req,
                            etcdserverpb::LeaseRevokeResponse* resp, ApplyResult* result);
  /// `slot` is `key`'s, found by the caller (one index lookup per put).
  void put_key(TxnContext& t, Index::Slot& slot, std::string_view key, std::string_view value,
               int64_t lease);
  void delete_key(TxnContext& t, std::string_view key);
  // Stages one change in the pending batch and the index, moving the key
  // between leases (from old_lease to r.lease).
  void record_change(Index::Slot& slot, std::string_view key, const KeyRev& r,
                     const mvccpb::KeyValue& stored, int64_t old_lease);
  void finish_txn(TxnContext& t, ApplyResult* result);
  Result<std::string> read_value(int64_t main, uint32_t sub) const;               // apply thread
  Result<mvccpb::KeyValue> read_kv(std::string_view key, const KeyRev& r) const;  // apply thread
  // The live record of change `r` from RocksDB as of `ro` (never the apply
  // thread's pending batch): kNotFound if it is gone. Any thread.
  Status read_committed_kv(const rocksdb::ReadOptions& ro, const KeyRev& r,
                           mvccpb::KeyValue* out) const;
  Result<etcdserverpb::RangeResponse> range_in_txn(const etcdserverpb::RangeRequest& req,
                                                   int64_t cur_rev) const;
  bool over_quota(uint64_t cost_bytes) const;

  const std::string dir_;
  const StoreOptions options_;
  std::unique_ptr<rocksdb::DB> db_;

  // Guards index_ and leases_ (and the published counters' consistency with
  // them). Apply thread: exclusive to mutate; readers: shared.
  mutable std::shared_mutex mu_;
  Index index_;
  std::map<int64_t, LeaseState> leases_;
  AuthStore auth_;  ///< Own lock; mutated by the apply thread only.
  // Active alarms as (member id, etcdserverpb::AlarmType); persisted under
  // meta key "alarms" as an etcdserverpb.AlarmResponse.
  std::set<std::pair<uint64_t, int>> alarms_;
  // Compaction point of index_: set together with pruning it, which happens
  // while the compaction is being applied (before it is published), so
  // readers check this rather than compact_revision_.
  int64_t index_compact_ = -1;

  // Published state (readers). Written under mu_ exclusive.
  std::atomic<uint64_t> applied_index_{0};
  std::atomic<int64_t> revision_{1};
  std::atomic<int64_t> compact_revision_{-1};
  std::atomic<bool> event_prev_kv_{true};
  std::atomic<int64_t> compact_at_nospace_{-1};

  // Apply-thread working state: ahead of the published one inside apply().
  int64_t cur_rev_ = 1;
  int64_t cur_compact_ = -1;
  // Pending write batch of the apply in progress (null outside apply()).
  struct Pending;
  std::unique_ptr<Pending> pending_;
  Status failed_;  ///< Set on the first I/O error; every later apply() returns it.

  // Physical compaction (background thread).
  mutable std::mutex compactor_mu_;
  mutable std::condition_variable compactor_cv_;
  int64_t compactor_target_ = -1;  ///< Latest compaction revision to realize on disk.
  int64_t physical_compact_ = -1;  ///< Realized on disk.
  bool compactor_stop_ = false;
  std::thread compactor_;
  bool closed_ = false;

  // compact_disk(): one at a time; close() cancels a running one and waits.
  mutable std::mutex disk_compact_mu_;
  std::atomic<bool> closing_{false};
};

}  // namespace raftkv::kv
