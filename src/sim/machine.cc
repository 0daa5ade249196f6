#include "sim/machine.h"

#include "base/check.h"
#include "kv/store.h"
#include "sim/rng.h"

namespace raftkv::sim {

namespace {

uint64_t digest_bytes(const std::string& s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

class KvMachine final : public Machine {
 public:
  explicit KvMachine(std::unique_ptr<kv::Store> store) : store_(std::move(store)) {}
  ~KvMachine() override {
    if (store_) crash();
  }

  raft::Index applied_index() const override { return store_->applied_index(); }

  std::vector<MachineOutcome> apply(const std::vector<MachineEntry>& batch) override {
    std::vector<kv::ApplyEntry> entries;
    entries.reserve(batch.size());
    for (const MachineEntry& e : batch) entries.push_back(kv::ApplyEntry{e.index, e.request});
    auto res = store_->apply(entries);
    RAFTKV_CHECK_MSG(res.is_ok(), res.status().to_string().c_str());
    std::vector<MachineOutcome> out;
    size_t next = 0;
    for (const kv::ApplyOutcome& o : res->outcomes) {
      while (batch[next].request == nullptr || batch[next].index != o.index) ++next;
      const raftkvpb::InternalRequest& req = *batch[next].request;
      MachineOutcome m;
      m.index = o.index;
      m.request_id = req.header().id();
      m.member_id = req.header().member_id();
      RAFTKV_CHECK_MSG(o.status.is_ok(), o.status.to_string().c_str());
      m.ok = true;
      if (req.has_delete_range()) m.ok = o.response.delete_range().deleted() > 0;
      if (req.has_txn()) m.ok = o.response.txn().succeeded();
      m.digest = digest_bytes(o.response.SerializeAsString(), 1469598103934665603ull);
      out.push_back(m);
    }
    return out;
  }

  Value get(const std::string& key) const override {
    etcdserverpb::RangeRequest rr;
    rr.set_key(key);
    auto resp = store_->range(rr);
    RAFTKV_CHECK_MSG(resp.is_ok(), resp.status().to_string().c_str());
    if (resp->kvs_size() == 0) return std::nullopt;
    return resp->kvs(0).value();
  }

  void flush() override {
    Status s = store_->flush();
    RAFTKV_CHECK_MSG(s.is_ok(), s.to_string().c_str());
  }

  void crash() override {
    // Opened with flush_on_close = false and no RocksDB WAL: closing drops
    // every unflushed batch, exactly as power loss would.
    Status s = store_->close();
    (void)s;  // a failed close loses the same unflushed state
    store_.reset();
  }

  uint64_t state_hash() const override {
    auto h = store_->hash_kv(0);
    RAFTKV_CHECK_MSG(h.is_ok(), h.status().to_string().c_str());
    return (static_cast<uint64_t>(h->hash()) << 32) ^ static_cast<uint64_t>(h->header().revision());
  }

 private:
  std::unique_ptr<kv::Store> store_;
};

class ReferenceMachine final : public Machine {
 public:
  explicit ReferenceMachine(ReferenceDisk* disk) : disk_(disk), kv_(disk->kv), applied_(disk->applied) {}

  raft::Index applied_index() const override { return applied_; }

  std::vector<MachineOutcome> apply(const std::vector<MachineEntry>& batch) override {
    std::vector<MachineOutcome> out;
    for (const MachineEntry& e : batch) {
      RAFTKV_CHECK(e.index > applied_);
      applied_ = e.index;
      if (e.request == nullptr) continue;
      const raftkvpb::InternalRequest& req = *e.request;
      MachineOutcome m;
      m.index = e.index;
      m.request_id = req.header().id();
      m.member_id = req.header().member_id();
      if (req.has_put()) {
        kv_[req.put().key()] = req.put().value();
        m.ok = true;
      } else if (req.has_delete_range()) {
        m.ok = kv_.erase(req.delete_range().key()) > 0;
      } else if (req.has_txn()) {
        const etcdserverpb::Compare& c = req.txn().compare(0);
        auto it = kv_.find(c.key());
        const bool holds = c.target() == etcdserverpb::Compare::VALUE
                               ? (it != kv_.end() && it->second == c.value())
                               : it == kv_.end();
        if (holds) {
          const auto& put = req.txn().success(0).request_put();
          kv_[put.key()] = put.value();
        }
        m.ok = holds;
      } else {
        RAFTKV_CHECK_MSG(false, "reference machine: request kind the simulator never sends");
      }
      uint64_t d = m.ok ? 2 : 3;
      m.digest = splitmix64(d) ^ e.index.value();
      out.push_back(m);
    }
    return out;
  }

  Value get(const std::string& key) const override {
    auto it = kv_.find(key);
    if (it == kv_.end()) return std::nullopt;
    return it->second;
  }

  void flush() override {
    disk_->kv = kv_;
    disk_->applied = applied_;
  }

  void crash() override {}

  uint64_t state_hash() const override {
    uint64_t h = 1469598103934665603ull;
    for (const auto& [k, v] : kv_) h = digest_bytes(v, digest_bytes(k, h) ^ 0xFF);
    return h;
  }

 private:
  ReferenceDisk* disk_;
  std::map<std::string, std::string> kv_;
  raft::Index applied_;
};

}  // namespace

std::unique_ptr<Machine> open_kv_machine(const std::string& dir) {
  kv::StoreOptions so;
  so.rocksdb_wal = false;
  so.flush_on_close = false;  // a crash loses every unflushed apply batch
  so.block_cache_bytes = 1 << 20;
  auto store = kv::Store::open(dir, so);
  RAFTKV_CHECK_MSG(store.is_ok(), store.status().to_string().c_str());
  return std::make_unique<KvMachine>(std::move(*store));
}

std::unique_ptr<Machine> open_reference_machine(ReferenceDisk* disk) {
  return std::make_unique<ReferenceMachine>(disk);
}

}  // namespace raftkv::sim
