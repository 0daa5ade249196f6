// Store's maintenance reads and operations: alarms, the whole-state hash,
// the on-disk size and the online defragmentation (Maintenance service).
#include <rocksdb/db.h>

#include <filesystem>

#include "base/crc32c.h"
#include "kv/keys.h"
#include "kv/store.h"

namespace raftkv::kv {

Result<etcdserverpb::HashResponse> Store::hash() const {
  std::string extra;
  Result<etcdserverpb::HashKVResponse> kv = hash_kv_impl(0, &extra);
  if (!kv) return kv.status();
  // Users, roles and the auth switch are part of the backend etcd hashes.
  keys::put_be64(&extra, auth_.hash());
  etcdserverpb::HashResponse resp;
  *resp.mutable_header() = kv->header();
  resp.set_hash(crc32c_extend(kv->hash(), extra.data(), extra.size()));
  return resp;
}

std::vector<etcdserverpb::AlarmMember> Store::alarms() const {
  std::shared_lock l(mu_);
  std::vector<etcdserverpb::AlarmMember> out;
  out.reserve(alarms_.size());
  for (const auto& [member, type] : alarms_) {
    out.emplace_back();
    out.back().set_memberid(member);
    out.back().set_alarm(static_cast<etcdserverpb::AlarmType>(type));
  }
  return out;
}

bool Store::alarm_active(etcdserverpb::AlarmType type) const {
  std::shared_lock l(mu_);
  for (const auto& [member, t] : alarms_) {
    if (t == type) return true;
  }
  return false;
}

uint64_t Store::disk_size_bytes() const {
  namespace fs = std::filesystem;
  std::error_code ec;
  uint64_t total = 0;
  // Bounded by the directory's entries; RocksDB keeps no subdirectories.
  for (fs::directory_iterator it(dir_, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code fec;
    if (!it->is_regular_file(fec)) continue;
    const uintmax_t n = it->file_size(fec);
    if (!fec) total += n;
  }
  return total;
}

Status Store::compact_disk() {
  std::lock_guard l(disk_compact_mu_);
  if (closing_.load() || db_ == nullptr) return Status::unavailable("etcdserver: server stopped");
  rocksdb::CompactRangeOptions co;
  co.exclusive_manual_compaction = false;  // background compactions keep running
  co.bottommost_level_compaction = rocksdb::BottommostLevelCompaction::kForce;
  rocksdb::Status st = db_->CompactRange(co, nullptr, nullptr);
  if (!st.ok()) {
    if (closing_.load()) return Status::unavailable("etcdserver: server stopped");
    return Status::io_error("defragment: " + st.ToString());
  }
  return Status::ok();
}

}  // namespace raftkv::kv
