#include "sim/machine.h"

#include <chrono>
#include <string_view>

#include "base/check.h"
#include "kv/store.h"
#include "sim/rng.h"

namespace raftkv::sim {

namespace {

// Image framing shared by both machines: u32 length (little endian) + bytes,
// repeated; a zero length ends the image.
void put_frame(std::string* out, std::string_view bytes) {
  const uint32_t n = static_cast<uint32_t>(bytes.size());
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((n >> (8 * i)) & 0xFF));
  out->append(bytes);
}

/// Reads the next frame; nullopt at the end mark. Error on bad framing.
Result<std::optional<std::string_view>> next_frame(std::string_view* in) {
  if (in->size() < 4) return Status::corruption("sim image: truncated frame header");
  uint32_t n = 0;
  for (int i = 0; i < 4; ++i) n |= static_cast<uint32_t>(static_cast<unsigned char>((*in)[i])) << (8 * i);
  in->remove_prefix(4);
  if (n == 0) {
    if (!in->empty()) return Status::corruption("sim image: bytes after the end mark");
    return std::optional<std::string_view>();
  }
  if (in->size() < n) return Status::corruption("sim image: truncated frame");
  std::string_view f = in->substr(0, n);
  in->remove_prefix(n);
  return std::optional<std::string_view>(f);
}

kv::StoreOptions kv_options() {
  kv::StoreOptions so;
  so.rocksdb_wal = false;
  so.flush_on_close = false;  // a crash loses every unflushed apply batch
  so.block_cache_bytes = 1 << 20;
  return so;
}

uint64_t digest_bytes(const std::string& s, uint64_t h) {
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

/// The revision a successful response names in its header (0: none).
int64_t response_revision(const raftkvpb::InternalResponse& r) {
  switch (r.response_case()) {
    case raftkvpb::InternalResponse::kPut: return r.put().header().revision();
    case raftkvpb::InternalResponse::kDeleteRange: return r.delete_range().header().revision();
    case raftkvpb::InternalResponse::kTxn: return r.txn().header().revision();
    case raftkvpb::InternalResponse::kLeaseRevoke: return r.lease_revoke().header().revision();
    default: return 0;
  }
}

class KvMachine final : public Machine {
 public:
  explicit KvMachine(std::unique_ptr<kv::Store> store) : store_(std::move(store)) {
    wait_for_compactor();  // a reopened store resumes an unfinished one
  }
  ~KvMachine() override {
    if (store_) crash();
  }

  raft::Index applied_index() const override { return store_->applied_index(); }

  std::vector<MachineOutcome> apply(const std::vector<MachineEntry>& batch) override {
    const int64_t revision_before = store_->revision();
    std::vector<kv::ApplyEntry> entries;
    entries.reserve(batch.size());
    for (const MachineEntry& e : batch) entries.push_back(kv::ApplyEntry{e.index, e.request});
    auto res = store_->apply(entries);
    RAFTKV_CHECK_MSG(res.is_ok(), res.status().to_string().c_str());
    wait_for_compactor();
    last_events_ = std::move(res->events);
    std::vector<MachineOutcome> out;
    size_t next = 0;
    // Revisions only grow; an entry created one when its response names a
    // revision above every earlier one (a failed or read-only entry names
    // the current revision or none).
    int64_t top = revision_before;
    for (const kv::ApplyOutcome& o : res->outcomes) {
      while (batch[next].request == nullptr || batch[next].index != o.index) ++next;
      const raftkvpb::InternalRequest& req = *batch[next].request;
      MachineOutcome m;
      m.index = o.index;
      m.request_id = req.header().id();
      m.member_id = req.header().member_id();
      if (req.has_compaction() && !o.status.is_ok()) {
        // A compaction of a revision already compacted is refused (etcd's
        // ErrCompacted), the same way on every member.
        m.digest = digest_bytes(o.status.to_string(), 1469598103934665603ull);
        out.push_back(m);
        continue;
      }
      if (!o.status.is_ok()) {
        // Lease requests fail the same way on every member: a put with or a
        // revoke of a lease that does not exist ("requested lease not
        // found"), a grant of an id already granted. Anything else is a bug.
        const bool lease_refusal =
            ((req.has_put() || req.has_lease_revoke()) && o.status.code() == Code::kNotFound) ||
            (req.has_lease_grant() && o.status.code() == Code::kFailedPrecondition);
        RAFTKV_CHECK_MSG(lease_refusal, o.status.to_string().c_str());
        m.digest = digest_bytes(o.status.to_string(), 1469598103934665603ull);
        out.push_back(m);
        continue;
      }
      m.ok = true;
      if (req.has_delete_range()) m.ok = o.response.delete_range().deleted() > 0;
      if (req.has_txn()) m.ok = o.response.txn().succeeded();
      m.digest = digest_bytes(o.response.SerializeAsString(), 1469598103934665603ull);
      const int64_t rev = response_revision(o.response);
      if (rev > top) {
        m.created_revision = rev;
        top = rev;
      }
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
    // Hash, not HashKV: the lease table must agree too.
    auto h = store_->hash();
    RAFTKV_CHECK_MSG(h.is_ok(), h.status().to_string().c_str());
    return (static_cast<uint64_t>(h->hash()) << 32) ^ static_cast<uint64_t>(h->header().revision());
  }

  std::string image() const override {
    auto stream = store_->snapshot();
    RAFTKV_CHECK_MSG(stream.is_ok(), stream.status().to_string().c_str());
    std::string out;
    for (;;) {
      auto chunk = (*stream)->next_chunk();
      RAFTKV_CHECK_MSG(chunk.is_ok(), chunk.status().to_string().c_str());
      if (!chunk->has_value()) break;
      put_frame(&out, **chunk);
    }
    put_frame(&out, {});
    return out;
  }

  std::shared_ptr<kv::Store> kv_store() const override { return store_; }
  const std::vector<kv::RevisionEvents>& last_events() const override { return last_events_; }

 private:
  // The store deletes the records a compaction made obsolete on a thread of
  // its own. Whether those deletes precede a flush, a crash or a snapshot
  // image would depend on that thread's progress, and a seed would not replay
  // the same in every process; so the simulated member waits for it right
  // after the apply that compacted (also after a restart that resumes it).
  void wait_for_compactor() const {
    const int64_t compacted = store_->compact_revision();
    if (compacted <= 0 || store_->physical_compact_revision() >= compacted) return;
    RAFTKV_CHECK_MSG(store_->wait_physical_compaction(compacted, std::chrono::minutes(2)),
                     "the store's physical compaction did not finish within 2 minutes");
  }

  std::shared_ptr<kv::Store> store_;
  std::vector<kv::RevisionEvents> last_events_;
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

  std::string image() const override {
    std::string out;
    put_frame(&out, std::to_string(applied_.value()));
    for (const auto& [k, v] : kv_) {
      // Prefixed so that an empty key or value never reads as the end mark.
      put_frame(&out, "k" + k);
      put_frame(&out, "v" + v);
    }
    put_frame(&out, {});
    return out;
  }

 private:
  ReferenceDisk* disk_;
  std::map<std::string, std::string> kv_;
  raft::Index applied_;
};

}  // namespace

std::unique_ptr<Machine> open_kv_machine(const std::string& dir) {
  auto store = kv::Store::open(dir, kv_options());
  RAFTKV_CHECK_MSG(store.is_ok(), store.status().to_string().c_str());
  return std::make_unique<KvMachine>(std::move(*store));
}

std::unique_ptr<Machine> open_reference_machine(ReferenceDisk* disk) {
  return std::make_unique<ReferenceMachine>(disk);
}

Result<std::unique_ptr<Machine>> restore_kv_machine(const std::string& dir, const std::string& image) {
  std::string_view rest = image;
  kv::ChunkSource source = [&rest]() -> Result<std::optional<std::string>> {
    auto f = next_frame(&rest);
    if (!f.is_ok()) return f.status();
    if (!f->has_value()) return std::optional<std::string>();
    return std::optional<std::string>(std::string(**f));
  };
  auto store = kv::Store::restore(dir, kv_options(), source);
  if (!store.is_ok()) return store.status();
  return std::unique_ptr<Machine>(std::make_unique<KvMachine>(std::move(*store)));
}

Result<std::unique_ptr<Machine>> restore_reference_machine(ReferenceDisk* disk,
                                                           const std::string& image) {
  std::string_view rest = image;
  auto applied = next_frame(&rest);
  if (!applied.is_ok()) return applied.status();
  if (!applied->has_value()) return Status::corruption("sim image: no applied index");
  ReferenceDisk fresh;
  fresh.applied = raft::Index(std::stoull(std::string(**applied)));
  for (;;) {
    auto k = next_frame(&rest);
    if (!k.is_ok()) return k.status();
    if (!k->has_value()) break;
    auto v = next_frame(&rest);
    if (!v.is_ok()) return v.status();
    if (!v->has_value()) return Status::corruption("sim image: key without a value");
    fresh.kv.emplace(std::string((**k).substr(1)), std::string((**v).substr(1)));
  }
  *disk = std::move(fresh);
  return open_reference_machine(disk);
}

}  // namespace raftkv::sim
