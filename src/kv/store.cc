#include "kv/store.h"

#include <rocksdb/cache.h>
#include <rocksdb/db.h>
#include <rocksdb/filter_policy.h>
#include <rocksdb/table.h>
#include <rocksdb/utilities/write_batch_with_index.h>
#include <rocksdb/write_batch.h>

#include <algorithm>
#include <filesystem>

#include "base/check.h"
#include "base/crc32c.h"
#include "kv/errors.h"
#include "kv/keys.h"

namespace raftkv::kv {

using etcdserverpb::Compare;
using etcdserverpb::RangeRequest;
using etcdserverpb::RangeResponse;

namespace {

Status io(const rocksdb::Status& s, std::string_view what) {
  return Status::io_error(std::string(what) + ": " + s.ToString());
}

rocksdb::Slice slice(std::string_view s) {
  return rocksdb::Slice(s.data(), s.size());
}

// Releases a RocksDB snapshot when the read is over.
class SnapshotGuard {
 public:
  SnapshotGuard(rocksdb::DB* db, const rocksdb::Snapshot* snap) : db_(db), snap_(snap) {}
  ~SnapshotGuard() {
    if (snap_ != nullptr) db_->ReleaseSnapshot(snap_);
  }
  SnapshotGuard(const SnapshotGuard&) = delete;
  SnapshotGuard& operator=(const SnapshotGuard&) = delete;

 private:
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
};

// Decodes a revision record. Returns false if malformed.
bool decode_record(std::string_view record, bool* tombstone, mvccpb::KeyValue* kv) {
  if (record.empty()) return false;
  if (record[0] != keys::kPutRecord && record[0] != keys::kTombstoneRecord) return false;
  *tombstone = record[0] == keys::kTombstoneRecord;
  return kv->ParseFromArray(record.data() + 1, static_cast<int>(record.size() - 1));
}

// ---------------------------------------------------------------- range core
// Shared by client reads (under the shared lock, values from a RocksDB
// snapshot) and reads inside applied requests (apply thread, values from the
// pending write batch and the DB).

struct Item {
  std::string key;
  KeyRev rev;
  std::string value;
};

struct Collected {
  std::vector<Item> items;
  int64_t count = 0;
};

bool needs_all_keys(const RangeRequest& r) {
  // etcd fetches everything before sorting or filtering, and applies the
  // limit afterwards; otherwise it fetches limit+1 keys in key order.
  return r.sort_order() != RangeRequest::NONE || r.min_mod_revision() != 0 ||
         r.max_mod_revision() != 0 || r.min_create_revision() != 0 || r.max_create_revision() != 0;
}

// Collects the live keys of the range at `rev` and counts all of them.
void collect(const Index& index, const RangeRequest& r, int64_t rev, Collected* out) {
  const uint64_t fetch_limit =
      needs_all_keys(r) ? 0 : (r.limit() > 0 ? static_cast<uint64_t>(r.limit()) + 1 : 0);
  const bool want_items = !r.count_only();
  index.visit(Bounds::of(r.key(), r.range_end()), rev, [&](const std::string& k, const KeyRev& kr) {
    ++out->count;
    if (want_items && (fetch_limit == 0 || out->items.size() < fetch_limit)) {
      out->items.push_back(Item{k, kr, {}});
    }
    return true;
  });
}

template <typename Less>
void sort_items(std::vector<Item>& items, bool descend, Less less) {
  if (descend) {
    std::stable_sort(items.begin(), items.end(),
                     [&](const Item& a, const Item& b) { return less(b, a); });
  } else {
    std::stable_sort(items.begin(), items.end(), less);
  }
}

// Applies etcd's filters, sort, limit and projection. `fetch` fills the
// value of each item pointed to.
template <typename Fetch>
Result<RangeResponse> finish_range(const RangeRequest& r, int64_t header_rev, Collected c,
                                   Fetch&& fetch) {
  auto& items = c.items;
  auto prune = [&](auto drop) {
    items.erase(std::remove_if(items.begin(), items.end(), drop), items.end());
  };
  if (r.max_mod_revision() != 0)
    prune([&](const Item& i) { return i.rev.main > r.max_mod_revision(); });
  if (r.min_mod_revision() != 0)
    prune([&](const Item& i) { return i.rev.main < r.min_mod_revision(); });
  if (r.max_create_revision() != 0) {
    prune([&](const Item& i) { return i.rev.create > r.max_create_revision(); });
  }
  if (r.min_create_revision() != 0) {
    prune([&](const Item& i) { return i.rev.create < r.min_create_revision(); });
  }

  bool fetched = false;
  auto fetch_all = [&]() -> Status {
    std::vector<Item*> ptrs;
    ptrs.reserve(items.size());
    for (auto& i : items) ptrs.push_back(&i);
    fetched = true;
    return fetch(ptrs);
  };

  RangeRequest::SortOrder order = r.sort_order();
  // etcd: a non-KEY target with no order means ascending.
  if (r.sort_target() != RangeRequest::KEY && order == RangeRequest::NONE) {
    order = RangeRequest::ASCEND;
  }
  if (order != RangeRequest::NONE) {
    const bool desc = order == RangeRequest::DESCEND;
    switch (r.sort_target()) {
      case RangeRequest::VERSION:
        sort_items(items, desc,
                   [](const Item& a, const Item& b) { return a.rev.version < b.rev.version; });
        break;
      case RangeRequest::CREATE:
        sort_items(items, desc,
                   [](const Item& a, const Item& b) { return a.rev.create < b.rev.create; });
        break;
      case RangeRequest::MOD:
        sort_items(items, desc,
                   [](const Item& a, const Item& b) { return a.rev.main < b.rev.main; });
        break;
      case RangeRequest::VALUE:
        RAFTKV_RETURN_IF_ERROR(fetch_all());
        sort_items(items, desc, [](const Item& a, const Item& b) { return a.value < b.value; });
        break;
      default:  // KEY
        sort_items(items, desc, [](const Item& a, const Item& b) { return a.key < b.key; });
        break;
    }
  }

  RangeResponse resp;
  if (r.limit() > 0 && items.size() > static_cast<uint64_t>(r.limit())) {
    items.resize(static_cast<size_t>(r.limit()));
    resp.set_more(true);
  }
  if (!r.keys_only() && !fetched && !items.empty()) RAFTKV_RETURN_IF_ERROR(fetch_all());

  resp.mutable_header()->set_revision(header_rev);
  resp.set_count(c.count);
  resp.mutable_kvs()->Reserve(static_cast<int>(items.size()));
  for (auto& i : items) {
    mvccpb::KeyValue* kv = resp.add_kvs();
    kv->set_key(i.key);
    kv->set_create_revision(i.rev.create);
    kv->set_mod_revision(i.rev.main);
    kv->set_version(i.rev.version);
    kv->set_lease(i.rev.lease);
    if (!r.keys_only()) kv->set_value(std::move(i.value));
  }
  return resp;
}

int compare_int(int64_t a, int64_t b) {
  return a < b ? -1 : (a > b ? 1 : 0);
}

bool compare_kv(const Compare& c, const mvccpb::KeyValue& kv) {
  int result = 0;
  switch (c.target()) {
    case Compare::VALUE: {
      const std::string& want =
          c.target_union_case() == Compare::kValue ? c.value() : std::string();
      int cmp = kv.value().compare(want);
      result = cmp < 0 ? -1 : (cmp > 0 ? 1 : 0);
      break;
    }
    case Compare::CREATE:
      result =
          compare_int(kv.create_revision(),
                      c.target_union_case() == Compare::kCreateRevision ? c.create_revision() : 0);
      break;
    case Compare::MOD:
      result = compare_int(kv.mod_revision(),
                           c.target_union_case() == Compare::kModRevision ? c.mod_revision() : 0);
      break;
    case Compare::VERSION:
      result =
          compare_int(kv.version(), c.target_union_case() == Compare::kVersion ? c.version() : 0);
      break;
    case Compare::LEASE:
      result = compare_int(kv.lease(), c.target_union_case() == Compare::kLease ? c.lease() : 0);
      break;
    default:
      break;
  }
  switch (c.result()) {
    case Compare::EQUAL:
      return result == 0;
    case Compare::NOT_EQUAL:
      return result != 0;
    case Compare::GREATER:
      return result > 0;
    case Compare::LESS:
      return result < 0;
    default:
      return true;
  }
}

bool txn_is_readonly(const etcdserverpb::TxnRequest& t) {
  auto ro = [](const auto& ops) {
    for (const auto& op : ops) {
      switch (op.request_case()) {
        case etcdserverpb::RequestOp::kRequestPut:
        case etcdserverpb::RequestOp::kRequestDeleteRange:
          return false;
        case etcdserverpb::RequestOp::kRequestTxn:
          if (!txn_is_readonly(op.request_txn())) return false;
          break;
        default:
          break;
      }
    }
    return true;
  };
  return ro(t.success()) && ro(t.failure());
}

uint64_t put_bytes(const etcdserverpb::PutRequest& p) {
  return p.key().size() + p.value().size() + Index::kRevisionOverheadBytes;
}

uint64_t txn_put_bytes(const etcdserverpb::TxnRequest& t) {
  uint64_t sum = 0;
  for (const auto* ops : {&t.success(), &t.failure()}) {
    for (const auto& op : *ops) {
      if (op.has_request_put()) sum += put_bytes(op.request_put());
      if (op.has_request_txn()) sum += txn_put_bytes(op.request_txn());
    }
  }
  return sum;
}

}  // namespace

// ---------------------------------------------------------------- internals

struct Store::Pending {
  // Indexed so reads inside the batch see the batch's own writes.
  rocksdb::WriteBatchWithIndex batch{rocksdb::BytewiseComparator(), 0, /*overwrite_key=*/true};
  bool compacted = false;
};

struct Store::TxnContext {
  int64_t begin_rev = 0;
  uint32_t changes = 0;
  std::vector<mvccpb::Event> events;

  int64_t write_rev() const { return begin_rev + 1; }
  /// Reads inside a write see its own earlier changes (etcd's storeTxnWrite).
  int64_t read_rev() const { return changes > 0 ? begin_rev + 1 : begin_rev; }
};

Store::Store(std::string dir, StoreOptions options)
    : dir_(std::move(dir)), options_(std::move(options)) {
  event_prev_kv_.store(options_.event_prev_kv);
}

Store::~Store() {
  (void)close();
}

Result<std::unique_ptr<Store>> Store::open(const std::string& dir, const StoreOptions& options) {
  std::unique_ptr<Store> s(new Store(dir, options));
  RAFTKV_RETURN_IF_ERROR(s->open_db());
  RAFTKV_RETURN_IF_ERROR(s->load());
  s->start_compactor();
  return s;
}

Status Store::open_db() {
  std::error_code ec;
  std::filesystem::create_directories(dir_, ec);
  if (ec) return Status::io_error("create " + dir_ + ": " + ec.message());
  rocksdb::Options o;
  o.create_if_missing = true;
  // Without the WAL, closing must not flush when simulating a crash; with it
  // nothing is lost anyway.
  o.avoid_flush_during_shutdown = !options_.flush_on_close;
  o.max_background_jobs = 2;
  o.IncreaseParallelism(2);
  rocksdb::BlockBasedTableOptions t;
  t.block_cache = rocksdb::NewLRUCache(options_.block_cache_bytes);
  t.cache_index_and_filter_blocks = false;
  // Every value read is a point lookup by revision key: a bloom filter
  // spares the SST files that cannot hold it.
  t.filter_policy.reset(rocksdb::NewBloomFilterPolicy(10));
  o.table_factory.reset(rocksdb::NewBlockBasedTableFactory(t));
  rocksdb::DB* raw = nullptr;
  rocksdb::Status st = rocksdb::DB::Open(o, dir_, &raw);
  if (!st.ok()) return io(st, "open " + dir_);
  db_.reset(raw);
  return Status::ok();
}

Status Store::load() {
  auto get_u64 = [&](std::string_view name, std::optional<uint64_t>* out) -> Status {
    std::string v;
    rocksdb::Status st = db_->Get(rocksdb::ReadOptions(), slice(keys::meta_key(name)), &v);
    if (st.IsNotFound()) {
      out->reset();
      return Status::ok();
    }
    if (!st.ok()) return io(st, "read meta");
    if (v.size() != 8) return Status::corruption("kv meta " + std::string(name) + ": bad length");
    *out = keys::get_be64(v);
    return Status::ok();
  };

  std::string format;
  rocksdb::Status st =
      db_->Get(rocksdb::ReadOptions(), slice(keys::meta_key(keys::kFormatName)), &format);
  if (st.IsNotFound()) {
    std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(rocksdb::ReadOptions()));
    it->SeekToFirst();
    if (it->Valid()) {
      return Status::corruption("kv store in " + dir_ +
                                " has data but no format marker: an unfinished restore");
    }
    if (!it->status().ok()) return io(it->status(), "scan");
    // A new store: revision 1, never compacted (as a fresh etcd).
    rocksdb::WriteBatch wb;
    wb.Put(slice(keys::meta_key(keys::kRevision)), slice(keys::u64_value(1)));
    wb.Put(slice(keys::meta_key(keys::kCompactRev)),
           slice(keys::u64_value(static_cast<uint64_t>(int64_t{-1}))));
    wb.Put(slice(keys::meta_key(keys::kAppliedIndex)), slice(keys::u64_value(0)));
    wb.Put(slice(keys::meta_key(keys::kFormatName)), slice(keys::kFormat));
    rocksdb::WriteOptions wo;
    wo.sync = true;
    st = db_->Write(wo, &wb);
    if (!st.ok()) return io(st, "initialize");
    if (!options_.rocksdb_wal) {
      st = db_->Flush(rocksdb::FlushOptions());
      if (!st.ok()) return io(st, "flush");
    }
  } else if (!st.ok()) {
    return io(st, "read format");
  } else if (format != keys::kFormat) {
    return Status::corruption("kv store format '" + format + "' is not " +
                              std::string(keys::kFormat));
  }

  std::optional<uint64_t> applied, rev, compact, physical;
  RAFTKV_RETURN_IF_ERROR(get_u64(keys::kAppliedIndex, &applied));
  RAFTKV_RETURN_IF_ERROR(get_u64(keys::kRevision, &rev));
  RAFTKV_RETURN_IF_ERROR(get_u64(keys::kCompactRev, &compact));
  RAFTKV_RETURN_IF_ERROR(get_u64(keys::kPhysicalCompactRev, &physical));
  if (!applied || !rev || !compact) return Status::corruption("kv meta missing in " + dir_);

  // Rebuild the index from every stored revision, in revision order.
  std::unique_lock lock(mu_);
  index_.clear();
  leases_.clear();
  rocksdb::ReadOptions scan;
  scan.fill_cache = false;  // a one-off full scan must not evict the working set
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(scan));
  const std::string first(1, keys::kRevPrefix);
  mvccpb::KeyValue kv;
  int64_t max_main = 0;
  for (it->Seek(first); it->Valid() && it->key()[0] == keys::kRevPrefix; it->Next()) {
    std::string_view k(it->key().data(), it->key().size());
    if (!keys::is_rev_key(k)) return Status::corruption("kv: malformed revision key");
    bool tomb = false;
    if (!decode_record(std::string_view(it->value().data(), it->value().size()), &tomb, &kv)) {
      return Status::corruption("kv: malformed record at revision " +
                                std::to_string(keys::rev_main(k)));
    }
    KeyRev r;
    r.main = keys::rev_main(k);
    r.sub = static_cast<uint32_t>(keys::rev_sub(k));
    r.tombstone = tomb;
    if (!tomb) {
      r.create = kv.create_revision();
      r.version = kv.version();
      r.lease = kv.lease();
      r.value_bytes = static_cast<uint32_t>(kv.value().size());
    }
    if (kv.key().empty()) return Status::corruption("kv: record with an empty key");
    const KeyRev* last = index_.latest(kv.key());
    if (last != nullptr && (last->main > r.main || (last->main == r.main && last->sub >= r.sub))) {
      return Status::corruption("kv: revisions out of order");
    }
    index_.append(kv.key(), r);
    max_main = std::max(max_main, r.main);
  }
  if (!it->status().ok()) return io(it->status(), "scan revisions");
  const int64_t revision = static_cast<int64_t>(*rev);
  const int64_t compact_rev = static_cast<int64_t>(*compact);
  if (max_main > revision)
    return Status::corruption("kv: a stored revision is above the store revision");
  if (compact_rev > revision) return Status::corruption("kv: compaction above the store revision");
  if (compact_rev >= 0) index_.compact(compact_rev);

  // Leases, then the keys attached to them.
  const std::string lfirst(1, keys::kLeasePrefix);
  for (it->Seek(lfirst); it->Valid() && it->key()[0] == keys::kLeasePrefix; it->Next()) {
    etcdserverpb::LeaseGrantRequest l;
    if (it->key().size() != 9 ||
        !l.ParseFromArray(it->value().data(), static_cast<int>(it->value().size()))) {
      return Status::corruption("kv: malformed lease record");
    }
    leases_[l.id()].ttl_seconds = l.ttl();
  }
  if (!it->status().ok()) return io(it->status(), "scan leases");
  alarms_.clear();
  {
    std::string v;
    st = db_->Get(rocksdb::ReadOptions(), slice(keys::meta_key(keys::kAlarms)), &v);
    if (!st.ok() && !st.IsNotFound()) return io(st, "read alarms");
    etcdserverpb::AlarmResponse stored;
    if (st.ok() && !stored.ParseFromString(v)) return Status::corruption("kv: malformed alarms");
    for (const auto& a : stored.alarms()) alarms_.emplace(a.memberid(), static_cast<int>(a.alarm()));
  }
  index_.visit(Bounds::of(std::string_view("\0", 1), std::string_view("\0", 1)), revision,
               [&](const std::string& key, const KeyRev& r) {
                 auto l = leases_.find(r.lease);
                 if (r.lease != 0 && l != leases_.end()) l->second.keys.insert(key);
                 return true;
               });

  // Auth state.
  auth_.clear();
  const std::string afirst(1, auth_keys::kAuthPrefix);
  for (it->Seek(afirst); it->Valid() && it->key()[0] == auth_keys::kAuthPrefix; it->Next()) {
    RAFTKV_RETURN_IF_ERROR(auth_.load_record(std::string_view(it->key().data(), it->key().size()),
                                             std::string_view(it->value().data(), it->value().size())));
  }
  if (!it->status().ok()) return io(it->status(), "scan auth");
  {
    auto get_opt = [&](std::string_view name, std::optional<std::string>* out) -> Status {
      std::string v;
      rocksdb::Status gs = db_->Get(rocksdb::ReadOptions(), slice(keys::meta_key(name)), &v);
      if (gs.IsNotFound()) return Status::ok();
      if (!gs.ok()) return io(gs, "read auth meta");
      *out = std::move(v);
      return Status::ok();
    };
    std::optional<std::string> auth_enabled, auth_revision;
    RAFTKV_RETURN_IF_ERROR(get_opt(auth_keys::kEnabled, &auth_enabled));
    RAFTKV_RETURN_IF_ERROR(get_opt(auth_keys::kRevision, &auth_revision));
    RAFTKV_RETURN_IF_ERROR(auth_.load_meta(std::move(auth_enabled), std::move(auth_revision)));
  }

  applied_index_.store(*applied);
  revision_.store(revision);
  compact_revision_.store(compact_rev);
  compact_at_nospace_.store(compact_rev);
  index_compact_ = compact_rev;
  cur_rev_ = revision;
  cur_compact_ = compact_rev;
  {
    std::lock_guard cl(compactor_mu_);
    physical_compact_ = physical ? static_cast<int64_t>(*physical) : -1;
    compactor_target_ = compact_rev;
  }
  return Status::ok();
}

void Store::start_compactor() {
  compactor_ = std::thread([this] { compactor_loop(); });
}

Status Store::close() {
  if (closed_) return Status::ok();
  closed_ = true;
  {
    std::lock_guard l(compactor_mu_);
    compactor_stop_ = true;
  }
  compactor_cv_.notify_all();
  // Cancels a CompactRange in progress so closing does not wait for it.
  closing_.store(true);
  if (db_ != nullptr) db_->DisableManualCompaction();
  if (compactor_.joinable()) compactor_.join();
  // A compact_disk() in progress returns once cancelled; wait for it.
  { std::lock_guard l(disk_compact_mu_); }
  Status result;
  if (db_ != nullptr) {
    if (options_.flush_on_close && failed_.is_ok()) result = flush();
    rocksdb::Status st = db_->Close();
    if (!st.ok() && result.is_ok()) result = io(st, "close");
    db_.reset();
  }
  return result;
}

Status Store::flush() {
  rocksdb::FlushOptions fo;
  fo.wait = true;
  rocksdb::Status st = db_->Flush(fo);
  return st.ok() ? Status::ok() : io(st, "flush");
}

int64_t Store::physical_compact_revision() const {
  std::lock_guard l(compactor_mu_);
  return physical_compact_;
}

bool Store::wait_physical_compaction(int64_t rev, std::chrono::milliseconds timeout) const {
  std::unique_lock l(compactor_mu_);
  return compactor_cv_.wait_for(l, timeout, [&] { return physical_compact_ >= rev; });
}

uint64_t Store::logical_size_bytes() const {
  std::shared_lock l(mu_);
  return index_.logical_bytes();
}

size_t Store::index_key_count() const {
  std::shared_lock l(mu_);
  return index_.key_count();
}

bool Store::lease_exists(int64_t id) const {
  std::shared_lock l(mu_);
  return leases_.count(id) != 0;
}

std::vector<std::string> Store::lease_keys(int64_t id) const {
  std::shared_lock l(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return {};
  return {it->second.keys.begin(), it->second.keys.end()};
}

std::vector<int64_t> Store::leases() const {
  std::shared_lock l(mu_);
  std::vector<int64_t> out;
  out.reserve(leases_.size());
  for (const auto& [id, _] : leases_) out.push_back(id);
  return out;
}

std::optional<int64_t> Store::lease_ttl(int64_t id) const {
  std::shared_lock l(mu_);
  auto it = leases_.find(id);
  if (it == leases_.end()) return std::nullopt;
  return it->second.ttl_seconds;
}

// ---------------------------------------------------------------- physical compaction

void Store::compactor_loop() {
  std::unique_lock l(compactor_mu_);
  while (true) {
    compactor_cv_.wait(l, [&] { return compactor_stop_ || compactor_target_ > physical_compact_; });
    if (compactor_stop_) return;
    const int64_t target = compactor_target_;
    l.unlock();
    Status s = run_physical_compaction(target);
    l.lock();
    if (!s.is_ok()) return;  // stopped, or an I/O error: retried at the next open
    physical_compact_ = target;
    compactor_cv_.notify_all();
  }
}

Status Store::run_physical_compaction(int64_t rev) {
  // Every revision <= rev that the (already compacted) index no longer holds
  // is garbage: no read at >= rev can reach it. Deleting it changes nothing
  // any read returns, so this runs beside applies and reads.
  rocksdb::ReadOptions ro;
  ro.fill_cache = false;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  const std::string end = keys::rev_key(rev + 1, 0);
  rocksdb::WriteOptions wo;
  wo.disableWAL = !options_.rocksdb_wal;
  struct Candidate {
    std::string rev_key;
    std::string key;
  };
  std::vector<Candidate> chunk;
  mvccpb::KeyValue kv;
  it->Seek(std::string(1, keys::kRevPrefix));
  while (true) {
    chunk.clear();
    for (; it->Valid() && chunk.size() < options_.physical_compaction_batch; it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      if (k >= end) break;
      bool tomb = false;
      if (!decode_record(std::string_view(it->value().data(), it->value().size()), &tomb, &kv)) {
        return Status::corruption("kv: malformed record during compaction");
      }
      chunk.push_back({std::string(k), kv.key()});
    }
    if (!it->status().ok()) return io(it->status(), "compaction scan");
    if (chunk.empty()) break;
    rocksdb::WriteBatch wb;
    {
      std::shared_lock l(mu_);
      for (const auto& c : chunk) {
        if (!index_.contains(c.key, keys::rev_main(c.rev_key),
                             static_cast<uint32_t>(keys::rev_sub(c.rev_key)))) {
          wb.Delete(slice(c.rev_key));
        }
      }
    }
    if (wb.Count() > 0) {
      rocksdb::Status st = db_->Write(wo, &wb);
      if (!st.ok()) return io(st, "compaction delete");
    }
    {
      std::lock_guard l(compactor_mu_);
      if (compactor_stop_) return Status::aborted("store closing");
    }
  }
  rocksdb::Status st = db_->Put(wo, slice(keys::meta_key(keys::kPhysicalCompactRev)),
                                slice(keys::u64_value(static_cast<uint64_t>(rev))));
  if (!st.ok()) return io(st, "compaction meta");
  // Reclaim the space in the background (RocksDB compacts while writes go on).
  const std::string begin(1, keys::kRevPrefix);
  rocksdb::Slice b(begin), e(end);
  rocksdb::CompactRangeOptions co;
  co.exclusive_manual_compaction = false;
  st = db_->CompactRange(co, &b, &e);
  if (!st.ok()) return io(st, "compact range");
  return Status::ok();
}

// ---------------------------------------------------------------- reads

Result<RangeResponse> Store::range(const RangeRequest& req) const {
  if (req.key().empty()) return errors::empty_key();
  Collected c;
  int64_t cur = 0;
  const rocksdb::Snapshot* snap = nullptr;
  {
    std::shared_lock l(mu_);
    cur = revision_.load();
    int64_t rev = req.revision();
    if (rev > cur) return errors::future_rev();
    if (rev <= 0) rev = cur;
    if (rev < index_compact_) return errors::compacted();
    collect(index_, req, rev, &c);
    if (!c.items.empty() && !req.keys_only()) snap = db_->GetSnapshot();
  }
  SnapshotGuard guard(db_.get(), snap);
  return finish_range(req, cur, std::move(c), [&](std::vector<Item*>& items) -> Status {
    std::vector<std::string> rkeys;
    rkeys.reserve(items.size());
    std::vector<rocksdb::Slice> slices;
    slices.reserve(items.size());
    for (const Item* i : items) rkeys.push_back(keys::rev_key(i->rev.main, i->rev.sub));
    for (const auto& k : rkeys) slices.emplace_back(k);
    std::vector<std::string> values;
    rocksdb::ReadOptions ro;
    ro.snapshot = snap;
    std::vector<rocksdb::Status> sts = db_->MultiGet(ro, slices, &values);
    mvccpb::KeyValue kv;
    for (size_t n = 0; n < items.size(); ++n) {
      if (!sts[n].ok()) return io(sts[n], "read value");
      bool tomb = false;
      if (!decode_record(values[n], &tomb, &kv) || tomb) {
        return Status::corruption("kv: bad record at revision " +
                                  std::to_string(items[n]->rev.main));
      }
      items[n]->value = std::move(*kv.mutable_value());
    }
    return Status::ok();
  });
}

Result<etcdserverpb::HashKVResponse> Store::hash_kv(int64_t revision) const {
  return hash_kv_impl(revision, nullptr);
}

Result<etcdserverpb::HashKVResponse> Store::hash_kv_impl(int64_t revision,
                                                         std::string* extra_state) const {
  struct Change {
    int64_t main;
    uint32_t sub;
  };
  std::vector<Change> changes;
  int64_t cur = 0;
  int64_t compact = 0;
  const rocksdb::Snapshot* snap = nullptr;
  {
    std::shared_lock l(mu_);
    cur = revision_.load();
    compact = index_compact_;
    // etcd: at or below the compaction point is compacted.
    if (revision > 0 && revision <= compact) return errors::compacted();
    if (revision > 0 && revision > cur) return errors::future_rev();
    if (revision <= 0) revision = cur;
    // etcd's selection: every revision in (compact, revision], and a revision
    // kept by the compaction only while it is still its key's newest at
    // `revision`.
    index_.visit_histories([&](const std::string&, const std::vector<KeyRev>& revs) {
      for (size_t i = 0; i < revs.size() && revs[i].main <= revision; ++i) {
        const bool newest = i + 1 == revs.size() || revs[i + 1].main > revision;
        if (revs[i].main <= compact && !newest) continue;
        changes.push_back({revs[i].main, revs[i].sub});
      }
    });
    if (extra_state != nullptr) {
      // Everything else the state holds, read under the same lock.
      keys::put_be64(extra_state, static_cast<uint64_t>(cur));
      keys::put_be64(extra_state, static_cast<uint64_t>(compact));
      for (const auto& [id, l] : leases_) {
        keys::put_be64(extra_state, static_cast<uint64_t>(id));
        keys::put_be64(extra_state, static_cast<uint64_t>(l.ttl_seconds));
      }
      for (const auto& [member, type] : alarms_) {
        keys::put_be64(extra_state, member);
        keys::put_be64(extra_state, static_cast<uint64_t>(type));
      }
    }
    snap = db_->GetSnapshot();
  }
  SnapshotGuard guard(db_.get(), snap);
  std::sort(changes.begin(), changes.end(), [](const Change& a, const Change& b) {
    return a.main < b.main || (a.main == b.main && a.sub < b.sub);
  });
  uint32_t h = 0;
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  ro.fill_cache = false;
  constexpr size_t kChunk = 1024;
  std::vector<std::string> rkeys;
  std::vector<rocksdb::Slice> slices;
  std::vector<std::string> values;
  for (size_t at = 0; at < changes.size(); at += kChunk) {
    const size_t n = std::min(kChunk, changes.size() - at);
    rkeys.clear();
    slices.clear();
    for (size_t i = 0; i < n; ++i)
      rkeys.push_back(keys::rev_key(changes[at + i].main, changes[at + i].sub));
    for (const auto& k : rkeys) slices.emplace_back(k);
    std::vector<rocksdb::Status> sts = db_->MultiGet(ro, slices, &values);
    for (size_t i = 0; i < n; ++i) {
      if (!sts[i].ok()) return io(sts[i], "hash read");
      h = crc32c_extend(h, rkeys[i].data(), rkeys[i].size());
      h = crc32c_extend(h, values[i].data(), values[i].size());
    }
  }
  etcdserverpb::HashKVResponse resp;
  resp.mutable_header()->set_revision(cur);
  resp.set_hash(h);
  resp.set_compact_revision(compact);
  return resp;
}

Result<EventPage> Store::events_since(int64_t start_revision, std::string_view key,
                                      std::string_view range_end, bool prev_kv,
                                      size_t max_events) const {
  RAFTKV_CHECK(max_events > 0);
  const Bounds bounds = Bounds::of(key, range_end);
  EventPage page;
  int64_t compact = 0;
  const rocksdb::Snapshot* snap = nullptr;
  {
    std::shared_lock l(mu_);
    page.revision = revision_.load();
    compact = index_compact_;
    if (start_revision < compact) return errors::compacted();
    if (start_revision <= 0 || start_revision > page.revision) {
      page.next_revision = std::max<int64_t>(start_revision, page.revision + 1);
      return page;
    }
    snap = db_->GetSnapshot();
  }
  SnapshotGuard guard(db_.get(), snap);
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::unique_ptr<rocksdb::Iterator> it(db_->NewIterator(ro));
  const std::string end = keys::rev_key(page.revision + 1, 0);

  // Records are read in chunks, then checked against the index under the
  // shared lock (a record below the compaction point that the index no
  // longer holds is garbage awaiting physical removal).
  struct Candidate {
    int64_t main;
    uint32_t sub;
    bool tombstone;
    mvccpb::KeyValue kv;
  };
  constexpr size_t kChunk = 256;
  std::vector<Candidate> chunk;
  size_t events = 0;
  int64_t last_rev = start_revision - 1;
  bool full = false;
  it->Seek(keys::rev_key(start_revision, 0));
  while (!full) {
    chunk.clear();
    for (; it->Valid() && chunk.size() < kChunk; it->Next()) {
      std::string_view k(it->key().data(), it->key().size());
      if (k >= end) break;
      Candidate c;
      c.main = keys::rev_main(k);
      c.sub = static_cast<uint32_t>(keys::rev_sub(k));
      if (!decode_record(std::string_view(it->value().data(), it->value().size()), &c.tombstone,
                         &c.kv)) {
        return Status::corruption("kv: malformed record at revision " + std::to_string(c.main));
      }
      if (!bounds.contains(c.kv.key())) continue;
      // A revision is never split: stop at the first change of a new
      // revision once the page is full.
      if (events >= max_events && c.main != last_rev) {
        full = true;
        break;
      }
      last_rev = c.main;
      ++events;
      chunk.push_back(std::move(c));
    }
    if (!it->status().ok()) return io(it->status(), "history scan");
    if (chunk.empty()) break;
    std::vector<std::pair<size_t, KeyRev>> prevs;  // chunk position -> previous change
    {
      std::shared_lock l(mu_);
      if (index_compact_ != compact && start_revision < index_compact_) return errors::compacted();
      for (size_t i = 0; i < chunk.size(); ++i) {
        const Candidate& c = chunk[i];
        if (c.main <= index_compact_ && !index_.contains(c.kv.key(), c.main, c.sub)) {
          chunk[i].main = -1;  // dropped
          continue;
        }
        if (!prev_kv) continue;
        const KeyRev* p = index_.before(c.kv.key(), c.main, c.sub);
        if (p != nullptr && !p->tombstone) prevs.emplace_back(i, *p);
      }
    }
    size_t next_prev = 0;
    for (size_t i = 0; i < chunk.size(); ++i) {
      Candidate& c = chunk[i];
      if (c.main < 0) continue;
      mvccpb::Event ev;
      ev.set_type(c.tombstone ? mvccpb::Event::DELETE : mvccpb::Event::PUT);
      if (c.tombstone) c.kv.set_mod_revision(c.main);
      if (next_prev < prevs.size() && prevs[next_prev].first == i) {
        const KeyRev& p = prevs[next_prev++].second;
        // Under the page's RocksDB snapshot the record cannot be gone.
        RAFTKV_RETURN_IF_ERROR(read_committed_kv(ro, p, ev.mutable_prev_kv()));
      }
      *ev.mutable_kv() = std::move(c.kv);
      if (page.revisions.empty() || page.revisions.back().revision != c.main) {
        page.revisions.push_back(RevisionEvents{c.main, {}});
      }
      page.revisions.back().events.push_back(std::move(ev));
    }
  }
  page.next_revision = full ? last_rev + 1 : page.revision + 1;
  return page;
}

// ---------------------------------------------------------------- apply

Result<ApplyResult> Store::apply(std::span<const ApplyEntry> batch) {
  if (!failed_.is_ok()) return failed_;
  RAFTKV_CHECK_MSG(db_ != nullptr, "apply on a closed store");
  RAFTKV_CHECK(batch.size() <= kMaxApplyBatchEntries);
  ApplyResult result;
  if (batch.empty()) return result;
  pending_ = std::make_unique<Pending>();
  uint64_t last = applied_index_.load();
  for (const ApplyEntry& e : batch) {
    RAFTKV_CHECK_MSG(e.index.value() > last, "apply: indexes must increase past applied_index");
    last = e.index.value();
    if (e.request == nullptr) continue;
    ApplyOutcome out;
    out.index = e.index;
    out.request_id = e.request->header().id();
    Status s = apply_one(*e.request, &out, &result);
    if (!s.is_ok()) {
      failed_ = s;
      pending_.reset();
      return s;
    }
    result.outcomes.push_back(std::move(out));
  }
  auto& wb = pending_->batch;
  wb.Put(slice(keys::meta_key(keys::kAppliedIndex)), slice(keys::u64_value(last)));
  wb.Put(slice(keys::meta_key(keys::kRevision)),
         slice(keys::u64_value(static_cast<uint64_t>(cur_rev_))));
  wb.Put(slice(keys::meta_key(keys::kCompactRev)),
         slice(keys::u64_value(static_cast<uint64_t>(cur_compact_))));
  rocksdb::WriteOptions wo;
  wo.disableWAL = !options_.rocksdb_wal;
  rocksdb::Status st = db_->Write(wo, wb.GetWriteBatch());
  const bool compacted = pending_->compacted;
  pending_.reset();
  if (!st.ok()) {
    failed_ = io(st, "apply write");
    return failed_;
  }
  {
    std::unique_lock l(mu_);
    applied_index_.store(last);
    revision_.store(cur_rev_);
    compact_revision_.store(cur_compact_);
  }
  if (compacted) {
    {
      std::lock_guard l(compactor_mu_);
      compactor_target_ = cur_compact_;
    }
    compactor_cv_.notify_all();
  }
  return result;
}

Status Store::apply_one(const raftkvpb::InternalRequest& req, ApplyOutcome* out,
                        ApplyResult* result) {
  using R = raftkvpb::InternalRequest;
  // The shape checks do not depend on configuration, so every member reaches
  // the same verdict even for a request that skipped validate().
  StoreOptions unlimited;
  unlimited.max_request_bytes = UINT64_MAX;
  unlimited.max_txn_ops = INT32_MAX;
  Status shape = validate(req, unlimited);
  if (!shape.is_ok()) {
    out->status = shape;
    return Status::ok();
  }
  // A failure of the request itself becomes its outcome (deterministic); an
  // I/O error or corruption is returned and stops the store.
  auto settle = [&](Status s) -> Status {
    if (s.is_ok()) return s;
    if (s.code() == Code::kIOError || s.code() == Code::kCorruption) return s;
    out->status = std::move(s);
    out->response.Clear();
    return Status::ok();
  };
  if (AuthStore::is_auth_request(req)) {
    std::vector<AuthWrite> writes;
    Status s = auth_.apply(req, &writes, &out->response);
    for (const auto& [k, v] : writes) {
      if (v) {
        pending_->batch.Put(slice(k), slice(*v));
      } else {
        pending_->batch.Delete(slice(k));
      }
    }
    if (!s.is_ok()) return settle(std::move(s));
    return Status::ok();
  }
  // The permission check that decides: at this point of the log, on every
  // member alike (the API layer's earlier check only spares the log).
  Status permitted = check_permission(req, req.header().username(), req.header().auth_revision());
  if (!permitted.is_ok()) return settle(std::move(permitted));  // refused: nothing applied
  if (Status refused = alarm_refusal(req); !refused.is_ok()) return settle(std::move(refused));
  switch (req.request_case()) {
    case R::kAlarm:
      return settle(apply_alarm(req.alarm(), out->response.mutable_alarm()));
    case R::kRange: {
      auto r = range_in_txn(req.range(), cur_rev_);
      if (!r.is_ok()) return settle(r.status());
      *out->response.mutable_range() = std::move(r.value());
      return Status::ok();
    }
    case R::kPut: {
      const auto& p = req.put();
      if (over_quota(put_bytes(p))) return settle(errors::no_space());
      if (p.lease() != 0 && leases_.count(p.lease()) == 0) return settle(errors::lease_not_found());
      TxnContext t{cur_rev_};
      RAFTKV_RETURN_IF_ERROR(settle(apply_put(t, p, out->response.mutable_put())));
      finish_txn(t, result);
      return Status::ok();
    }
    case R::kDeleteRange: {
      TxnContext t{cur_rev_};
      RAFTKV_RETURN_IF_ERROR(
          settle(apply_delete(t, req.delete_range(), out->response.mutable_delete_range())));
      finish_txn(t, result);
      return Status::ok();
    }
    case R::kTxn:
      return settle(apply_txn(req.txn(), out->response.mutable_txn(), result));
    case R::kCompaction:
      return settle(apply_compaction(req.compaction(), out->response.mutable_compaction()));
    case R::kLeaseGrant:
      return settle(apply_lease_grant(req.lease_grant(), out->response.mutable_lease_grant()));
    case R::kLeaseRevoke:
      return settle(
          apply_lease_revoke(req.lease_revoke(), out->response.mutable_lease_revoke(), result));
    default:  // REQUEST_NOT_SET (auth requests are handled above)
      break;
  }
  out->status = Status::invalid_argument("raftkv: internal request without an operation");
  return Status::ok();
}

bool Store::over_quota(uint64_t cost_bytes) const {
  return cost_bytes > 0 && index_.logical_bytes() + cost_bytes > options_.effective_quota_bytes();
}

Result<std::string> Store::read_value(int64_t main, uint32_t sub) const {
  std::string v;
  const std::string k = keys::rev_key(main, sub);
  rocksdb::Status st = pending_ != nullptr ? pending_->batch.GetFromBatchAndDB(
                                                 db_.get(), rocksdb::ReadOptions(), slice(k), &v)
                                           : db_->Get(rocksdb::ReadOptions(), slice(k), &v);
  if (!st.ok()) return io(st, "read revision " + std::to_string(main));
  return v;
}

Result<mvccpb::KeyValue> Store::read_kv(std::string_view key, const KeyRev& r) const {
  auto rec = read_value(r.main, r.sub);
  if (!rec.is_ok()) return rec.status();
  mvccpb::KeyValue kv;
  bool tomb = false;
  if (!decode_record(*rec, &tomb, &kv) || tomb || kv.key() != key) {
    return Status::corruption("kv: bad record at revision " + std::to_string(r.main));
  }
  return kv;
}

Status Store::fill_prev_kv(mvccpb::Event* ev) const {
  if (ev->has_prev_kv()) return Status::ok();
  const mvccpb::KeyValue& kv = ev->kv();
  if (ev->type() == mvccpb::Event::PUT && kv.version() <= 1) return Status::ok();  // created
  KeyRev p;
  {
    std::shared_lock l(mu_);
    // The newest change before the event's revision (a revision changes a
    // key at most once). Null once compaction dropped it.
    const KeyRev* r = index_.at(kv.key(), kv.mod_revision() - 1);
    if (r == nullptr || r->tombstone) return Status::ok();
    p = *r;
  }
  Status st = read_committed_kv(rocksdb::ReadOptions(), p, ev->mutable_prev_kv());
  if (st.is_ok()) return st;
  ev->clear_prev_kv();
  return st.code() == Code::kNotFound ? Status::ok() : st;  // physically compacted meanwhile
}

Status Store::read_committed_kv(const rocksdb::ReadOptions& ro, const KeyRev& r,
                                mvccpb::KeyValue* out) const {
  std::string rec;
  rocksdb::Status st = db_->Get(ro, slice(keys::rev_key(r.main, r.sub)), &rec);
  if (st.IsNotFound()) return Status::not_found("kv: revision " + std::to_string(r.main) + " is gone");
  if (!st.ok()) return io(st, "read revision " + std::to_string(r.main));
  bool tomb = false;
  if (!decode_record(rec, &tomb, out) || tomb) {
    return Status::corruption("kv: bad record at revision " + std::to_string(r.main));
  }
  return Status::ok();
}

Result<RangeResponse> Store::range_in_txn(const RangeRequest& req, int64_t cur_rev) const {
  int64_t rev = req.revision();
  if (rev > cur_rev) return errors::future_rev();
  if (rev <= 0) rev = cur_rev;
  if (rev < cur_compact_) return errors::compacted();
  Collected c;
  collect(index_, req, rev, &c);
  return finish_range(req, cur_rev, std::move(c), [&](std::vector<Item*>& items) -> Status {
    for (Item* i : items) {
      auto kv = read_kv(i->key, i->rev);
      if (!kv.is_ok()) return kv.status();
      i->value = std::move(*kv->mutable_value());
    }
    return Status::ok();
  });
}

void Store::put_key(TxnContext& t, Index::Slot& slot, std::string_view key, std::string_view value,
                    int64_t lease) {
  const int64_t main = t.write_rev();
  const uint32_t sub = t.changes++;
  const KeyRev* prev = index_.latest(slot);
  const bool live = prev != nullptr && !prev->tombstone;
  KeyRev r;
  r.main = main;
  r.sub = sub;
  r.create = live ? prev->create : main;
  r.version = live ? prev->version + 1 : 1;
  r.lease = lease;
  r.value_bytes = static_cast<uint32_t>(value.size());

  mvccpb::Event ev;
  ev.set_type(mvccpb::Event::PUT);
  if (live && event_prev_kv()) {
    auto pkv = read_kv(key, *prev);
    RAFTKV_CHECK_MSG(pkv.is_ok(), "apply: the previous value of a live key is unreadable");
    *ev.mutable_prev_kv() = std::move(pkv.value());
  }
  const int64_t old_lease = live ? prev->lease : 0;
  mvccpb::KeyValue* kv = ev.mutable_kv();
  kv->set_key(std::string(key));
  kv->set_create_revision(r.create);
  kv->set_mod_revision(main);
  kv->set_version(r.version);
  kv->set_value(std::string(value));
  kv->set_lease(lease);
  record_change(slot, key, r, *kv, old_lease);
  t.events.push_back(std::move(ev));
}

void Store::record_change(Index::Slot& slot, std::string_view key, const KeyRev& r,
                          const mvccpb::KeyValue& stored, int64_t old_lease) {
  std::string record(1, r.tombstone ? keys::kTombstoneRecord : keys::kPutRecord);
  stored.AppendToString(&record);
  pending_->batch.Put(slice(keys::rev_key(r.main, r.sub)), slice(record));
  std::unique_lock l(mu_);
  index_.append(slot, key, r);
  if (old_lease != 0) {
    auto it = leases_.find(old_lease);
    if (it != leases_.end()) it->second.keys.erase(std::string(key));
  }
  if (r.lease != 0) leases_[r.lease].keys.insert(std::string(key));
}

void Store::delete_key(TxnContext& t, std::string_view key) {
  const int64_t main = t.write_rev();
  const uint32_t sub = t.changes++;
  Index::Slot slot = index_.find(key);
  const KeyRev* prev = index_.latest(slot);
  RAFTKV_CHECK(prev != nullptr && !prev->tombstone);
  mvccpb::Event ev;
  ev.set_type(mvccpb::Event::DELETE);
  if (event_prev_kv()) {
    auto pkv = read_kv(key, *prev);
    RAFTKV_CHECK_MSG(pkv.is_ok(), "apply: the previous value of a live key is unreadable");
    *ev.mutable_prev_kv() = std::move(pkv.value());
  }
  const int64_t old_lease = prev->lease;
  KeyRev r;
  r.main = main;
  r.sub = sub;
  r.tombstone = true;
  mvccpb::KeyValue stored;
  stored.set_key(std::string(key));
  record_change(slot, key, r, stored, old_lease);
  // A delete event carries the key and the deleting revision (etcd).
  ev.mutable_kv()->set_key(std::string(key));
  ev.mutable_kv()->set_mod_revision(main);
  t.events.push_back(std::move(ev));
}

void Store::finish_txn(TxnContext& t, ApplyResult* result) {
  if (t.changes == 0) return;
  cur_rev_ = t.write_rev();
  result->events.push_back(RevisionEvents{cur_rev_, std::move(t.events)});
}

Status Store::apply_put(TxnContext& t, const etcdserverpb::PutRequest& req,
                        etcdserverpb::PutResponse* resp) {
  Index::Slot slot = index_.find(req.key());
  const KeyRev* prev = index_.at(slot, t.read_rev());
  const bool live = prev != nullptr && !prev->tombstone;
  if ((req.ignore_value() || req.ignore_lease()) && !live) return errors::key_not_found();
  std::optional<mvccpb::KeyValue> prev_kv;
  if (live && (req.prev_kv() || req.ignore_value())) {
    auto kv = read_kv(req.key(), *prev);
    if (!kv.is_ok()) return kv.status();
    prev_kv = std::move(kv.value());
  }
  const int64_t lease = req.ignore_lease() ? prev->lease : req.lease();
  const std::string& value = req.ignore_value() ? prev_kv->value() : req.value();
  put_key(t, slot, req.key(), value, lease);
  if (req.prev_kv() && prev_kv) *resp->mutable_prev_kv() = std::move(*prev_kv);
  resp->mutable_header()->set_revision(t.write_rev());
  return Status::ok();
}

Status Store::apply_delete(TxnContext& t, const etcdserverpb::DeleteRangeRequest& req,
                           etcdserverpb::DeleteRangeResponse* resp) {
  std::vector<std::pair<std::string, KeyRev>> live;
  index_.visit(Bounds::of(req.key(), req.range_end()), t.read_rev(),
               [&](const std::string& k, const KeyRev& r) {
                 live.emplace_back(k, r);
                 return true;
               });
  if (req.prev_kv()) {
    for (const auto& [k, r] : live) {
      auto kv = read_kv(k, r);
      if (!kv.is_ok()) return kv.status();
      *resp->add_prev_kvs() = std::move(kv.value());
    }
  }
  for (const auto& [k, r] : live) delete_key(t, k);
  resp->set_deleted(static_cast<int64_t>(live.size()));
  resp->mutable_header()->set_revision(t.changes > 0 ? t.write_rev() : t.begin_rev);
  return Status::ok();
}

bool Store::compare_holds(const Compare& c) const {
  bool any = false;
  bool holds = true;
  index_.visit(Bounds::of(c.key(), c.range_end()), cur_rev_,
               [&](const std::string& k, const KeyRev& r) {
                 any = true;
                 mvccpb::KeyValue kv;
                 if (c.target() == Compare::VALUE) {
                   auto full = read_kv(k, r);
                   RAFTKV_CHECK_MSG(full.is_ok(), "apply: a live value is unreadable");
                   kv = std::move(full.value());
                 } else {
                   kv.set_create_revision(r.create);
                   kv.set_mod_revision(r.main);
                   kv.set_version(r.version);
                   kv.set_lease(r.lease);
                 }
                 holds = compare_kv(c, kv);
                 return holds;
               });
  if (!any) {
    // A value compare on a missing key always fails; other targets compare
    // against zero (etcd).
    if (c.target() == Compare::VALUE) return false;
    return compare_kv(c, mvccpb::KeyValue());
  }
  return holds;
}

void Store::compare_path(const etcdserverpb::TxnRequest& req, std::vector<bool>* path) const {
  bool ok = true;
  for (const auto& c : req.compare()) {
    if (!compare_holds(c)) {
      ok = false;
      break;
    }
  }
  path->push_back(ok);
  for (const auto& op : ok ? req.success() : req.failure()) {
    if (op.has_request_txn()) compare_path(op.request_txn(), path);
  }
}

Status Store::check_txn_ops(const etcdserverpb::TxnRequest& req, const std::vector<bool>& path,
                            size_t& pos) const {
  // etcd checks every put of the chosen path before any range.
  const bool ok = path[pos++];
  for (const auto& op : ok ? req.success() : req.failure()) {
    if (op.has_request_txn()) {
      RAFTKV_RETURN_IF_ERROR(check_txn_ops(op.request_txn(), path, pos));
    } else if (op.has_request_put()) {
      const auto& p = op.request_put();
      if (p.ignore_value() || p.ignore_lease()) {
        const KeyRev* r = index_.at(p.key(), cur_rev_);
        if (r == nullptr || r->tombstone) return errors::key_not_found();
      }
      if (p.lease() != 0 && leases_.count(p.lease()) == 0) return errors::lease_not_found();
    }
  }
  return Status::ok();
}

namespace {
Status check_txn_ranges(const etcdserverpb::TxnRequest& req, const std::vector<bool>& path,
                        size_t& pos, int64_t cur_rev, int64_t compact_rev) {
  const bool ok = path[pos++];
  for (const auto& op : ok ? req.success() : req.failure()) {
    if (op.has_request_txn()) {
      RAFTKV_RETURN_IF_ERROR(check_txn_ranges(op.request_txn(), path, pos, cur_rev, compact_rev));
    } else if (op.has_request_range()) {
      const int64_t rev = op.request_range().revision();
      if (rev == 0) continue;
      if (rev > cur_rev) return errors::future_rev();
      if (rev < compact_rev) return errors::compacted();
    }
  }
  return Status::ok();
}
}  // namespace

Status Store::apply_txn(const etcdserverpb::TxnRequest& req, etcdserverpb::TxnResponse* resp,
                        ApplyResult* result) {
  std::vector<bool> path;
  compare_path(req, &path);
  const bool write = !txn_is_readonly(req);
  if (write) {
    size_t pos = 0;
    RAFTKV_RETURN_IF_ERROR(check_txn_ops(req, path, pos));
  }
  {
    size_t pos = 0;
    RAFTKV_RETURN_IF_ERROR(check_txn_ranges(req, path, pos, cur_rev_, cur_compact_));
  }
  if (write && over_quota(txn_put_bytes(req))) return errors::no_space();
  TxnContext t{cur_rev_};
  size_t pos = 0;
  exec_txn_ops(t, req, path, pos, resp);
  resp->mutable_header()->set_revision(t.changes > 0 ? t.write_rev() : t.begin_rev);
  finish_txn(t, result);
  return Status::ok();
}

void Store::exec_txn_ops(TxnContext& t, const etcdserverpb::TxnRequest& req,
                         const std::vector<bool>& path, size_t& pos,
                         etcdserverpb::TxnResponse* resp) {
  const bool ok = path[pos++];
  resp->set_succeeded(ok);
  resp->mutable_header();
  for (const auto& op : ok ? req.success() : req.failure()) {
    etcdserverpb::ResponseOp* r = resp->add_responses();
    switch (op.request_case()) {
      case etcdserverpb::RequestOp::kRequestRange: {
        auto rr = range_in_txn(op.request_range(), t.read_rev());
        RAFTKV_CHECK_MSG(rr.is_ok(), "txn range failed after its checks passed");
        *r->mutable_response_range() = std::move(rr.value());
        break;
      }
      case etcdserverpb::RequestOp::kRequestPut: {
        Status s = apply_put(t, op.request_put(), r->mutable_response_put());
        RAFTKV_CHECK_MSG(s.is_ok(), "txn put failed after its checks passed");
        break;
      }
      case etcdserverpb::RequestOp::kRequestDeleteRange: {
        Status s = apply_delete(t, op.request_delete_range(), r->mutable_response_delete_range());
        RAFTKV_CHECK_MSG(s.is_ok(), "txn delete failed");
        break;
      }
      case etcdserverpb::RequestOp::kRequestTxn:
        exec_txn_ops(t, op.request_txn(), path, pos, r->mutable_response_txn());
        break;
      case etcdserverpb::RequestOp::REQUEST_NOT_SET:
        break;
    }
  }
}

Status Store::apply_compaction(const etcdserverpb::CompactionRequest& req,
                               etcdserverpb::CompactionResponse* resp) {
  const int64_t rev = req.revision();
  if (rev <= cur_compact_) return errors::compacted();
  if (rev > cur_rev_) return errors::future_rev();
  cur_compact_ = rev;
  {
    // Readers reject revisions below index_compact_ from now on, so nobody
    // sees the partly pruned history.
    std::unique_lock l(mu_);
    index_compact_ = rev;
    index_.compact(rev);
  }
  pending_->compacted = true;
  resp->mutable_header()->set_revision(cur_rev_);
  return Status::ok();
}

Status Store::alarm_refusal(const raftkvpb::InternalRequest& req) const {
  using R = raftkvpb::InternalRequest;
  if (alarms_.empty()) return Status::ok();  // apply thread: alarms_ is its own state
  bool corrupt = false, nospace = false;
  for (const auto& [member, type] : alarms_) {
    corrupt |= type == etcdserverpb::AlarmType::CORRUPT;
    nospace |= type == etcdserverpb::AlarmType::NOSPACE;
  }
  switch (req.request_case()) {
    case R::kPut:
    case R::kLeaseGrant:
      if (corrupt) return errors::corrupt_cluster();
      if (nospace) return errors::no_space();
      return Status::ok();
    case R::kTxn:
      if (txn_is_readonly(req.txn())) return Status::ok();
      if (corrupt) return errors::corrupt_cluster();
      if (nospace && txn_put_bytes(req.txn()) > 0) return errors::no_space();
      return Status::ok();
    case R::kDeleteRange:
    case R::kCompaction:
    case R::kLeaseRevoke:
      return corrupt ? errors::corrupt_cluster() : Status::ok();
    default:
      return Status::ok();
  }
}

Status Store::apply_alarm(const etcdserverpb::AlarmRequest& req,
                          etcdserverpb::AlarmResponse* resp) {
  using A = etcdserverpb::AlarmRequest;
  const auto type = static_cast<int>(req.alarm());
  const std::pair<uint64_t, int> key(req.memberid(), type);
  resp->mutable_header()->set_revision(cur_rev_);
  switch (req.action()) {
    case A::GET:
      for (const auto& [member, t] : alarms_) {
        if (type != etcdserverpb::AlarmType::NONE && t != type) continue;
        auto* m = resp->add_alarms();
        m->set_memberid(member);
        m->set_alarm(static_cast<etcdserverpb::AlarmType>(t));
      }
      return Status::ok();
    case A::ACTIVATE:
      if (type != etcdserverpb::AlarmType::NOSPACE && type != etcdserverpb::AlarmType::CORRUPT) {
        return Status::invalid_argument("raftkv: only NOSPACE and CORRUPT alarms can be activated");
      }
      break;
    case A::DEACTIVATE:
      if (alarms_.count(key) == 0) return Status::ok();  // etcd: nothing to report
      break;
    default:
      return Status::invalid_argument("raftkv: unknown alarm action");
  }
  auto* m = resp->add_alarms();
  m->set_memberid(req.memberid());
  m->set_alarm(req.alarm());
  if (req.action() == A::ACTIVATE && type == etcdserverpb::AlarmType::NOSPACE) {
    compact_at_nospace_.store(cur_compact_);
  }
  {
    std::unique_lock l(mu_);
    if (req.action() == A::ACTIVATE) {
      alarms_.insert(key);
    } else {
      alarms_.erase(key);
    }
  }
  etcdserverpb::AlarmResponse stored;
  for (const auto& [member, t] : alarms_) {
    auto* a = stored.add_alarms();
    a->set_memberid(member);
    a->set_alarm(static_cast<etcdserverpb::AlarmType>(t));
  }
  if (alarms_.empty()) {
    pending_->batch.Delete(slice(keys::meta_key(keys::kAlarms)));
  } else {
    pending_->batch.Put(slice(keys::meta_key(keys::kAlarms)), slice(stored.SerializeAsString()));
  }
  return Status::ok();
}

Status Store::apply_lease_grant(const etcdserverpb::LeaseGrantRequest& req,
                                etcdserverpb::LeaseGrantResponse* resp) {
  constexpr int64_t kMaxLeaseTtlSeconds = 9000000000;
  if (req.id() == 0) {
    return Status::invalid_argument("raftkv: a lease grant must carry its id when proposed");
  }
  if (req.ttl() > kMaxLeaseTtlSeconds) return errors::lease_ttl_too_large();
  if (leases_.count(req.id()) != 0) return errors::lease_exists();
  if (over_quota(Index::kRevisionOverheadBytes)) return errors::no_space();
  etcdserverpb::LeaseGrantRequest stored;
  stored.set_id(req.id());
  stored.set_ttl(req.ttl());
  pending_->batch.Put(slice(keys::lease_key(req.id())), slice(stored.SerializeAsString()));
  {
    std::unique_lock l(mu_);
    leases_[req.id()].ttl_seconds = req.ttl();
  }
  resp->mutable_header()->set_revision(cur_rev_);
  resp->set_id(req.id());
  resp->set_ttl(req.ttl());
  return Status::ok();
}

Status Store::apply_lease_revoke(const etcdserverpb::LeaseRevokeRequest& req,
                                 etcdserverpb::LeaseRevokeResponse* resp, ApplyResult* result) {
  auto it = leases_.find(req.id());
  if (it == leases_.end()) return errors::lease_not_found();
  // All attached keys go in one revision, in key order.
  const std::vector<std::string> attached(it->second.keys.begin(), it->second.keys.end());
  TxnContext t{cur_rev_};
  for (const auto& k : attached) delete_key(t, k);
  finish_txn(t, result);
  pending_->batch.Delete(slice(keys::lease_key(req.id())));
  {
    std::unique_lock l(mu_);
    leases_.erase(req.id());
  }
  resp->mutable_header()->set_revision(cur_rev_);
  return Status::ok();
}

}  // namespace raftkv::kv
