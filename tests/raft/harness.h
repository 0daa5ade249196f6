// A deterministic in-memory cluster of raft::Core instances for tests.
//
// Each node has a MemoryLogStorage and a toy state machine (the list of
// applied entry payloads, so any two histories can be compared). The harness
// handles Ready exactly as ready.h prescribes: immediate messages to the
// network, persist snapshot/entries/hard state, release after-persist
// messages, apply committed entries (conf changes through apply_conf_change),
// advance. Messages sit in one queue until delivered; tests deliver them in
// order (stabilize), one by one, or not at all.
//
// A crash drops the Core (and any Ready being handled before it was
// persisted); restart builds a new Core over the same storage. The state
// machine survives a crash, as if it were persisted atomically with its
// applied index after each Ready.
#pragma once

#include <functional>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "raft/core.h"
#include "raft/memory_storage.h"

namespace raftkv::raft::testing {

inline NodeId N(uint64_t v) {
  return NodeId{v};
}
inline Index I(uint64_t v) {
  return Index{v};
}
inline Term T(uint64_t v) {
  return Term{v};
}

std::string encode_history(const std::vector<std::string>& h);
std::vector<std::string> decode_history(const std::string& s);

struct TestNode {
  NodeId id;
  Config cfg;
  std::unique_ptr<MemoryLogStorage> storage;
  std::unique_ptr<Core> core;
  /// history[i] is the payload applied at index i + 1 ("" for the no-op,
  /// "conf:" + context for a conf change).
  std::vector<std::string> history;
  std::vector<ReadState> read_states;
  std::vector<Status> apply_conf_errors;
  bool up = true;
  Index applied() const { return Index{history.size()}; }
};

class Cluster {
 public:
  /// Voters with ids `ids`; `tweak` may adjust each node's Config.
  explicit Cluster(std::vector<uint64_t> ids, std::function<void(Config&)> tweak = nullptr,
                   std::vector<uint64_t> learners = {});

  Core& core(uint64_t id) { return *node(id).core; }
  TestNode& node(uint64_t id);
  MemoryLogStorage& storage(uint64_t id) { return *node(id).storage; }
  std::vector<uint64_t> ids() const;

  /// One Ready cycle for `id` if it has one; returns whether it did. Messages
  /// go to the network queue. If `crash_before_persist`, the immediate
  /// messages leave and then the node crashes before persisting anything.
  bool process_ready(uint64_t id, bool crash_before_persist = false);

  /// Steps `m` into its destination (dropped if down or filtered). Like a
  /// transport, reports every snapshot message's outcome to its sender.
  void deliver(const Message& m);
  /// Loses `m` (reporting a snapshot as failed to its sender).
  void drop(const Message& m);

  /// Repeats: handle every Ready, deliver every queued message, until quiet.
  void stabilize();

  /// Handles readies of `id` and returns (and removes from the network) the
  /// messages it produced, without delivering them.
  std::vector<Message> drain(uint64_t id);

  void tick(uint64_t id, int n = 1);
  void tick_all(int n = 1);

  /// Messages matching `drop` are discarded at delivery.
  void set_drop(std::function<bool(const Message&)> drop) { drop_ = std::move(drop); }
  /// Cuts every link between a node of `a` and a node of `b`.
  void partition(std::set<uint64_t> a, std::set<uint64_t> b);
  void isolate(uint64_t id);
  void heal();
  bool link_up(NodeId from, NodeId to) const;

  void crash(uint64_t id);
  void restart(uint64_t id);

  /// Adds an empty node (no configuration; it learns it from a snapshot).
  /// The current members first snapshot+compact at their applied index so a
  /// new node is caught up by snapshot.
  void add_node(uint64_t id);
  /// Snapshot of `id`'s state machine at its applied index, then compaction.
  void compact(uint64_t id);

  /// Highest-term up node that believes it is leader; 0 if none.
  uint64_t leader() const;
  /// Campaigns on `id` and stabilizes; returns the resulting leader.
  uint64_t elect(uint64_t id);
  /// Proposes through `id` and stabilizes.
  Status propose(uint64_t id, std::string data);

  std::vector<Message>& network() { return net_; }
  /// Benchmarks: record applied entries as empty strings (keeps memory flat).
  void set_record_payloads(bool on) { record_payloads_ = on; }
  std::vector<Status> step_errors;

 private:
  void make_core(TestNode& n);
  void report_snapshot_outcome(const Message& m, bool delivered);
  std::map<uint64_t, TestNode> nodes_;
  std::vector<Message> net_;
  std::function<bool(const Message&)> drop_;
  std::set<std::pair<uint64_t, uint64_t>> cut_;
  std::function<void(Config&)> tweak_;
  bool record_payloads_ = true;
};

/// The Config every test node starts from: election 10 ticks, heartbeat 1
/// tick, pre-vote and check-quorum on, a fixed seed.
Config test_config(uint64_t id);

}  // namespace raftkv::raft::testing
