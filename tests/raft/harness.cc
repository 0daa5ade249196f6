#include "harness.h"

#include <algorithm>
#include <cstring>

#include "base/check.h"
#include "raft/conf_change.h"

namespace raftkv::raft::testing {

std::string encode_history(const std::vector<std::string>& h) {
  std::string out;
  for (const std::string& s : h) {
    uint32_t n = static_cast<uint32_t>(s.size());
    out.append(reinterpret_cast<const char*>(&n), 4);
    out += s;
  }
  return out;
}

std::vector<std::string> decode_history(const std::string& s) {
  std::vector<std::string> h;
  size_t pos = 0;
  while (pos < s.size()) {
    RAFTKV_CHECK(pos + 4 <= s.size());
    uint32_t n;
    std::memcpy(&n, s.data() + pos, 4);
    pos += 4;
    RAFTKV_CHECK(pos + n <= s.size());
    h.emplace_back(s.substr(pos, n));
    pos += n;
  }
  return h;
}

Config test_config(uint64_t id) {
  Config c;
  c.id = NodeId{id};
  c.election_ticks = 10;
  c.heartbeat_ticks = 1;
  c.seed = 42;
  return c;
}

Cluster::Cluster(std::vector<uint64_t> ids, std::function<void(Config&)> tweak,
                 std::vector<uint64_t> learners)
    : tweak_(std::move(tweak)) {
  ConfState cs;
  for (uint64_t id : ids) cs.voters.push_back(NodeId{id});
  for (uint64_t id : learners) cs.learners.push_back(NodeId{id});
  std::sort(cs.voters.begin(), cs.voters.end());
  std::sort(cs.learners.begin(), cs.learners.end());
  std::vector<uint64_t> all = ids;
  all.insert(all.end(), learners.begin(), learners.end());
  for (uint64_t id : all) {
    TestNode& n = nodes_[id];
    n.id = NodeId{id};
    n.cfg = test_config(id);
    if (tweak_) tweak_(n.cfg);
    n.storage = std::make_unique<MemoryLogStorage>(cs);
    make_core(n);
  }
}

void Cluster::make_core(TestNode& n) {
  n.cfg.applied = n.applied();
  n.core = std::make_unique<Core>(n.cfg, n.storage.get());
  n.up = true;
}

TestNode& Cluster::node(uint64_t id) {
  auto it = nodes_.find(id);
  RAFTKV_CHECK_MSG(it != nodes_.end(), "harness: unknown node");
  return it->second;
}

std::vector<uint64_t> Cluster::ids() const {
  std::vector<uint64_t> out;
  for (const auto& [id, n] : nodes_) out.push_back(id);
  return out;
}

bool Cluster::process_ready(uint64_t id, bool crash_before_persist) {
  TestNode& n = node(id);
  if (!n.up || !n.core->has_ready()) return false;
  Ready rd = n.core->ready();
  for (Message& m : rd.messages) net_.push_back(std::move(m));
  if (crash_before_persist) {
    crash(id);
    return true;
  }
  if (rd.snapshot) {
    RAFTKV_CHECK(n.storage->apply_snapshot(*rd.snapshot).is_ok());
    n.history = decode_history(rd.snapshot->data);
    RAFTKV_CHECK(n.history.size() == rd.snapshot->metadata.index.value());
  }
  RAFTKV_CHECK(n.storage->append(rd.entries).is_ok());
  if (rd.hard_state) n.storage->set_hard_state(*rd.hard_state);
  for (Message& m :
       rd.messages_after_persist.release(Persisted::kHardStateEntriesAndSnapshotAreDurable)) {
    net_.push_back(std::move(m));
  }
  for (const Entry& e : rd.committed_entries) {
    RAFTKV_CHECK_MSG(e.index == n.applied() + 1, "harness: committed entries out of order");
    if (e.type == EntryType::kConfChange) {
      Result<ConfChange> cc = decode_conf_change(e.data);
      RAFTKV_CHECK(cc.is_ok());
      Result<ConfState> cs = n.core->apply_conf_change(*cc);
      if (cs.is_ok()) {
        n.storage->set_conf_state(*cs);
      } else {
        n.apply_conf_errors.push_back(cs.status());
      }
      n.history.push_back("conf:" + cc->context);
    } else {
      n.history.push_back(record_payloads_ ? e.data : std::string());
    }
  }
  for (const ReadState& rs : rd.read_states) n.read_states.push_back(rs);
  n.core->advance(rd);
  return true;
}

bool Cluster::link_up(NodeId from, NodeId to) const {
  return cut_.count({from.value(), to.value()}) == 0;
}

void Cluster::report_snapshot_outcome(const Message& m, bool delivered) {
  if (m.type != MessageType::kSnapshot) return;
  auto from = nodes_.find(m.from.value());
  if (from != nodes_.end() && from->second.up) from->second.core->report_snapshot(m.to, delivered);
}

void Cluster::drop(const Message& m) {
  report_snapshot_outcome(m, false);
}

void Cluster::deliver(const Message& m) {
  auto it = nodes_.find(m.to.value());
  if (it == nodes_.end() || !it->second.up || !link_up(m.from, m.to) || (drop_ && drop_(m))) {
    drop(m);
    return;
  }
  Status s = it->second.core->step(m);
  if (!s.is_ok()) step_errors.push_back(s);
  // Like a transport: the snapshot was handed over.
  report_snapshot_outcome(m, true);
}

void Cluster::stabilize() {
  for (int round = 0; round < 100000; ++round) {
    bool moved = false;
    for (auto& [id, n] : nodes_) {
      while (process_ready(id)) moved = true;
    }
    if (!net_.empty()) {
      moved = true;
      std::vector<Message> batch = std::move(net_);
      net_.clear();
      for (const Message& m : batch) deliver(m);
    }
    if (!moved) return;
  }
  RAFTKV_CHECK_MSG(false, "harness: cluster did not stabilize");
}

std::vector<Message> Cluster::drain(uint64_t id) {
  std::vector<Message> before = std::move(net_);
  net_.clear();
  while (process_ready(id)) {
  }
  std::vector<Message> out = std::move(net_);
  net_ = std::move(before);
  return out;
}

void Cluster::tick(uint64_t id, int n) {
  for (int i = 0; i < n; ++i) {
    if (node(id).up) node(id).core->tick();
  }
}

void Cluster::tick_all(int n) {
  for (int i = 0; i < n; ++i) {
    for (auto& [id, nd] : nodes_) {
      if (nd.up) nd.core->tick();
    }
  }
}

void Cluster::partition(std::set<uint64_t> a, std::set<uint64_t> b) {
  for (uint64_t x : a) {
    for (uint64_t y : b) {
      cut_.insert({x, y});
      cut_.insert({y, x});
    }
  }
}

void Cluster::isolate(uint64_t id) {
  std::set<uint64_t> others;
  for (const auto& [x, n] : nodes_) {
    if (x != id) others.insert(x);
  }
  partition({id}, others);
}

void Cluster::heal() {
  cut_.clear();
}

void Cluster::crash(uint64_t id) {
  TestNode& n = node(id);
  n.core.reset();
  n.up = false;
}

void Cluster::restart(uint64_t id) {
  TestNode& n = node(id);
  RAFTKV_CHECK(!n.up);
  // The state machine keeps what it applied; the core restarts from storage.
  // A state machine ahead of the stored commit index cannot happen: entries
  // are applied only after the Ready carrying their commit was persisted.
  make_core(n);
}

void Cluster::compact(uint64_t id) {
  TestNode& n = node(id);
  Index applied = n.applied();
  if (applied < n.storage->first_index()) return;
  Status s = n.storage->create_snapshot(applied, n.core->tracker().conf_state(),
                                        encode_history(n.history));
  if (!s.is_ok()) return;
  RAFTKV_CHECK(n.storage->compact(applied).is_ok());
}

void Cluster::add_node(uint64_t id) {
  for (auto& [x, n] : nodes_) {
    if (n.up) compact(x);
  }
  TestNode& n = nodes_[id];
  n.id = NodeId{id};
  n.cfg = test_config(id);
  if (tweak_) tweak_(n.cfg);
  n.storage = std::make_unique<MemoryLogStorage>(ConfState{});
  make_core(n);
}

uint64_t Cluster::leader() const {
  uint64_t best = 0;
  Term best_term{0};
  for (const auto& [id, n] : nodes_) {
    if (n.up && n.core->role() == Role::kLeader && n.core->term() >= best_term) {
      best = id;
      best_term = n.core->term();
    }
  }
  return best;
}

uint64_t Cluster::elect(uint64_t id) {
  core(id).campaign();
  stabilize();
  return leader();
}

Status Cluster::propose(uint64_t id, std::string data) {
  Status s = core(id).propose(std::move(data));
  stabilize();
  return s;
}

}  // namespace raftkv::raft::testing
