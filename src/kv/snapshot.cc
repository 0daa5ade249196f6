// Store::snapshot / Store::restore: the store as a stream of framed,
// checksummed chunks (docs/kv.md, "Snapshot stream").
//
//   chunk   := magic "RKVS" (4) | kind (1) | payload length (4, LE) | payload
//              | crc32c (4, LE) of kind, length and payload
//   kind 1  header:  format version (4, LE) | applied index (8, LE)
//   kind 2  data:    { key length (4, LE) | value length (4, LE) | key | value }*
//   kind 3  trailer: record count (8, LE) | data chunk count (8, LE)
//
// Records are the store's RocksDB pairs ('r', 'm', 'l', 'a' keys) read from one
// RocksDB snapshot, except the format marker (restore writes it last) and
// the physical-compaction mark (the restored store re-runs it).
#include <rocksdb/db.h>
#include <rocksdb/write_batch.h>

#include <filesystem>

#include "base/check.h"
#include "base/crc32c.h"
#include "kv/keys.h"
#include "kv/store.h"

namespace raftkv::kv {
namespace {

constexpr std::string_view kMagic = "RKVS";
constexpr uint32_t kStreamVersion = 1;
constexpr uint8_t kHeader = 1;
constexpr uint8_t kData = 2;
constexpr uint8_t kTrailer = 3;
constexpr size_t kChunkTargetBytes = 1 << 20;
constexpr size_t kMaxChunkPayloadBytes = 64u << 20;  // refuse absurd lengths before allocating

void put_le32(std::string* s, uint32_t v) {
  for (int i = 0; i < 4; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
void put_le64(std::string* s, uint64_t v) {
  for (int i = 0; i < 8; ++i) s->push_back(static_cast<char>((v >> (8 * i)) & 0xFF));
}
uint64_t get_le(std::string_view s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i)
    v = (v << 8) | static_cast<unsigned char>(s[at + static_cast<size_t>(i)]);
  return v;
}

std::string frame(uint8_t kind, std::string_view payload) {
  std::string c(kMagic);
  std::string body(1, static_cast<char>(kind));
  put_le32(&body, static_cast<uint32_t>(payload.size()));
  body.append(payload);
  c.append(body);
  put_le32(&c, crc32c(body));
  return c;
}

// Validates one chunk; on success sets kind and payload (a view into chunk).
Status unframe(std::string_view chunk, uint8_t* kind, std::string_view* payload) {
  if (chunk.size() < 13 || chunk.substr(0, 4) != kMagic) {
    return Status::corruption("snapshot chunk: bad magic or too short");
  }
  const uint64_t len = get_le(chunk, 5, 4);
  if (len > kMaxChunkPayloadBytes || chunk.size() != 13 + len) {
    return Status::corruption("snapshot chunk: length mismatch");
  }
  const std::string_view body = chunk.substr(4, 5 + len);
  if (crc32c(body) != static_cast<uint32_t>(get_le(chunk, 9 + len, 4))) {
    return Status::corruption("snapshot chunk: checksum mismatch");
  }
  *kind = static_cast<uint8_t>(chunk[4]);
  *payload = chunk.substr(9, len);
  return Status::ok();
}

bool skipped_in_stream(std::string_view key) {
  return key == keys::meta_key(keys::kFormatName) ||
         key == keys::meta_key(keys::kPhysicalCompactRev);
}

class RocksSnapshotStream final : public SnapshotStream {
 public:
  RocksSnapshotStream(rocksdb::DB* db, const rocksdb::Snapshot* snap, raft::Index applied)
      : db_(db), snap_(snap), applied_(applied) {
    rocksdb::ReadOptions ro;
    ro.snapshot = snap_;
    ro.fill_cache = false;
    it_.reset(db_->NewIterator(ro));
    it_->SeekToFirst();
  }
  ~RocksSnapshotStream() override {
    it_.reset();
    db_->ReleaseSnapshot(snap_);
  }

  raft::Index applied_index() const override { return applied_; }

  Result<std::optional<std::string>> next_chunk() override {
    switch (stage_) {
      case Stage::kHeader: {
        std::string p;
        put_le32(&p, kStreamVersion);
        put_le64(&p, applied_.value());
        stage_ = Stage::kData;
        return std::optional<std::string>(frame(kHeader, p));
      }
      case Stage::kData: {
        std::string p;
        for (; it_->Valid() && p.size() < kChunkTargetBytes; it_->Next()) {
          std::string_view k(it_->key().data(), it_->key().size());
          if (skipped_in_stream(k)) continue;
          put_le32(&p, static_cast<uint32_t>(k.size()));
          put_le32(&p, static_cast<uint32_t>(it_->value().size()));
          p.append(k);
          p.append(it_->value().data(), it_->value().size());
          ++records_;
        }
        if (!it_->status().ok())
          return Status::io_error("snapshot scan: " + it_->status().ToString());
        if (!p.empty()) {
          ++data_chunks_;
          return std::optional<std::string>(frame(kData, p));
        }
        std::string t;
        put_le64(&t, records_);
        put_le64(&t, data_chunks_);
        stage_ = Stage::kDone;
        return std::optional<std::string>(frame(kTrailer, t));
      }
      case Stage::kDone:
        break;
    }
    return std::optional<std::string>();
  }

 private:
  enum class Stage { kHeader, kData, kDone };
  rocksdb::DB* db_;
  const rocksdb::Snapshot* snap_;
  raft::Index applied_;
  std::unique_ptr<rocksdb::Iterator> it_;
  Stage stage_ = Stage::kHeader;
  uint64_t records_ = 0;
  uint64_t data_chunks_ = 0;
};

}  // namespace

Result<std::unique_ptr<SnapshotStream>> Store::snapshot() const {
  RAFTKV_CHECK_MSG(db_ != nullptr, "snapshot of a closed store");
  const rocksdb::Snapshot* snap = db_->GetSnapshot();
  // The applied index as of the snapshot, read from the snapshot itself: it
  // is written in the same batch as the state it describes.
  rocksdb::ReadOptions ro;
  ro.snapshot = snap;
  std::string v;
  rocksdb::Status st = db_->Get(ro, keys::meta_key(keys::kAppliedIndex), &v);
  if (!st.ok() || v.size() != 8) {
    db_->ReleaseSnapshot(snap);
    return Status::io_error("snapshot: cannot read the applied index: " + st.ToString());
  }
  return std::unique_ptr<SnapshotStream>(
      new RocksSnapshotStream(db_.get(), snap, raft::Index(keys::get_be64(v))));
}

Result<std::unique_ptr<Store>> Store::restore(const std::string& dir, const StoreOptions& options,
                                              const ChunkSource& source) {
  return restore_impl(dir, options, source, nullptr);
}

Result<std::unique_ptr<Store>> Store::restore_for_new_cluster(const std::string& dir,
                                                              const StoreOptions& options,
                                                              const ChunkSource& source,
                                                              Rebase rebase) {
  return restore_impl(dir, options, source, &rebase);
}

Result<std::unique_ptr<Store>> Store::restore_impl(const std::string& dir,
                                                   const StoreOptions& options,
                                                   const ChunkSource& source,
                                                   const Rebase* rebase) {
  std::error_code ec;
  if (std::filesystem::exists(dir, ec) && !std::filesystem::is_empty(dir, ec)) {
    return Status::failed_precondition("restore: " + dir + " is not empty");
  }
  {
    rocksdb::Options o;
    o.create_if_missing = true;
    o.error_if_exists = true;
    rocksdb::DB* raw = nullptr;
    rocksdb::Status st = rocksdb::DB::Open(o, dir, &raw);
    if (!st.ok()) return Status::io_error("restore: open " + dir + ": " + st.ToString());
    std::unique_ptr<rocksdb::DB> db(raw);
    rocksdb::WriteOptions wo;
    wo.disableWAL = true;  // made durable by the flush before the format marker

    bool header = false, trailer = false;
    uint64_t applied = 0, records = 0, data_chunks = 0;
    constexpr uint64_t kMaxChunks = uint64_t{1} << 32;
    for (uint64_t n = 0; !trailer; ++n) {
      if (n >= kMaxChunks) return Status::corruption("restore: too many chunks");
      auto next = source();
      if (!next.is_ok()) return next.status();
      if (!next->has_value()) return Status::corruption("restore: stream ended before its trailer");
      const std::string& chunk = **next;
      uint8_t kind = 0;
      std::string_view p;
      RAFTKV_RETURN_IF_ERROR(unframe(chunk, &kind, &p));
      if (!header) {
        if (kind != kHeader || p.size() != 12) return Status::corruption("restore: missing header");
        if (get_le(p, 0, 4) != kStreamVersion)
          return Status::corruption("restore: unknown stream version");
        applied = get_le(p, 4, 8);
        header = true;
        continue;
      }
      if (kind == kTrailer) {
        if (p.size() != 16 || get_le(p, 0, 8) != records || get_le(p, 8, 8) != data_chunks) {
          return Status::corruption("restore: trailer does not match the records received");
        }
        trailer = true;
        break;
      }
      if (kind != kData) return Status::corruption("restore: unexpected chunk kind");
      ++data_chunks;
      rocksdb::WriteBatch wb;
      size_t at = 0;
      while (at < p.size()) {
        if (p.size() - at < 8) return Status::corruption("restore: truncated record");
        const uint64_t kl = get_le(p, at, 4), vl = get_le(p, at + 4, 4);
        at += 8;
        if (kl == 0 || p.size() - at < kl + vl)
          return Status::corruption("restore: truncated record");
        std::string_view k = p.substr(at, kl), v = p.substr(at + kl, vl);
        at += kl + vl;
        const bool known = (keys::is_rev_key(k)) || (k[0] == keys::kLeasePrefix && k.size() == 9) ||
                           auth_keys::is_auth_key(k) ||
                           (k[0] == keys::kMetaPrefix && !skipped_in_stream(k));
        if (!known) return Status::corruption("restore: unknown record key");
        wb.Put(rocksdb::Slice(k.data(), k.size()), rocksdb::Slice(v.data(), v.size()));
        ++records;
      }
      st = db->Write(wo, &wb);
      if (!st.ok()) return Status::io_error("restore write: " + st.ToString());
    }
    std::string v;
    st = db->Get(rocksdb::ReadOptions(), keys::meta_key(keys::kAppliedIndex), &v);
    if (!st.ok() || v.size() != 8 || keys::get_be64(v) != applied) {
      return Status::corruption("restore: applied index in the data does not match the header");
    }
    if (rebase != nullptr) {
      rocksdb::WriteBatch wb;
      wb.Put(keys::meta_key(keys::kAppliedIndex), keys::u64_value(rebase->applied_index.value()));
      wb.Delete(keys::meta_key(keys::kAlarms));
      st = db->Write(wo, &wb);
      if (!st.ok()) return Status::io_error("restore write: " + st.ToString());
    }
    st = db->Flush(rocksdb::FlushOptions());
    if (!st.ok()) return Status::io_error("restore flush: " + st.ToString());
    // Only now is the store complete: mark it, durably.
    rocksdb::WriteOptions sync;
    sync.sync = true;
    st = db->Put(sync, keys::meta_key(keys::kFormatName), keys::kFormat);
    if (!st.ok()) return Status::io_error("restore mark: " + st.ToString());
    st = db->Close();
    if (!st.ok()) return Status::io_error("restore close: " + st.ToString());
  }
  return open(dir, options);
}

}  // namespace raftkv::kv
