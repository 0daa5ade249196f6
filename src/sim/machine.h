// The replicated state machine as the simulator drives it: the real kv::Store
// (RocksDB in a temporary directory), or a small in-memory reference machine
// with the same request semantics for the seeds that do not pay for RocksDB
// (docs/simulator.md, "State machines").
//
// Both keep a durable and a volatile part the same way the real store does
// without its own WAL: apply() changes only the volatile part, flush() makes
// it durable, and a crash (destroying the machine with crash()) keeps only
// what was flushed; the node then replays the Raft log after applied_index().
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "base/status.h"
#include "kv/store.h"
#include "raft/types.h"
#include "raftkv/internal.pb.h"
#include "sim/history.h"

namespace raftkv::sim {

/// What applying one request produced, as the simulator needs it.
struct MachineOutcome {
  raft::Index index;
  uint64_t request_id = 0;  ///< InternalRequest.header.id
  uint64_t member_id = 0;   ///< InternalRequest.header.member_id
  /// kCas: succeeded; kDelete: a key was deleted; kPut: took effect (false:
  /// its lease was not found); lease grant / revoke: succeeded.
  bool ok = false;
  uint64_t digest = 0;      ///< Digest of the full response (equal on every node).
  /// The store revision this entry created (kv::Store only; 0: none). A
  /// lease revoke's deletes are the events of this revision.
  int64_t created_revision = 0;
};

struct MachineEntry {
  raft::Index index;
  const raftkvpb::InternalRequest* request = nullptr;  ///< null: advances the index only
};

class Machine {
 public:
  virtual ~Machine() = default;
  /// Last index applied (what survives a crash: the last flushed one).
  virtual raft::Index applied_index() const = 0;
  /// REQUIRES: indexes ascending and > applied_index(). Aborts on I/O errors
  /// (the simulated node has no other disk to fall back to).
  virtual std::vector<MachineOutcome> apply(const std::vector<MachineEntry>& batch) = 0;
  /// The current value of `key`.
  virtual Value get(const std::string& key) const = 0;
  /// Makes everything applied durable.
  virtual void flush() = 0;
  /// Power loss: drops what was not flushed. The machine is unusable afterwards.
  virtual void crash() = 0;
  /// Digest of the whole state (kv: etcd's Hash — the key history, the
  /// revision, the compaction point and the lease table).
  virtual uint64_t state_hash() const = 0;
  /// A snapshot image of the state at applied_index() (kv: the framed chunks
  /// of kv::Store::snapshot()). Restore it with restore_*_machine.
  virtual std::string image() const = 0;
  /// The real store behind the machine (what a kv::WatchHub reads history
  /// from), or null for the reference machine.
  virtual std::shared_ptr<kv::Store> kv_store() const { return nullptr; }
  /// The events (ascending revisions) of the last apply() call: what the
  /// node's apply loop feeds its kv::WatchHub. Empty for the reference machine.
  virtual const std::vector<kv::RevisionEvents>& last_events() const {
    static const std::vector<kv::RevisionEvents> kNone;
    return kNone;
  }
};

/// Durable part of the reference machine: outlives every incarnation of a node.
struct ReferenceDisk {
  std::map<std::string, std::string> kv;
  raft::Index applied;
};

/// The real kv::Store in `dir` (opened, or created, now).
std::unique_ptr<Machine> open_kv_machine(const std::string& dir);
/// The in-memory register-per-key machine over `disk`.
std::unique_ptr<Machine> open_reference_machine(ReferenceDisk* disk);

/// Snapshot install: a new kv::Store built in `dir` (which must not exist)
/// from an image of a KvMachine (kv::Store::restore), durable when this returns.
/// Errors: the image is malformed (kCorruption) or an I/O error.
Result<std::unique_ptr<Machine>> restore_kv_machine(const std::string& dir, const std::string& image);
/// Snapshot install for the reference machine: replaces `disk` (durably) with
/// an image of a ReferenceMachine and opens it.
Result<std::unique_ptr<Machine>> restore_reference_machine(ReferenceDisk* disk,
                                                           const std::string& image);

}  // namespace raftkv::sim
