#include "storage/wal.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>

#include "base/check.h"

namespace raftkv::storage {

using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::Term;

namespace {

constexpr uint64_t kSectorBytes = 512;

const char* kOperatorAdvice =
    " The records after this point were acknowledged as durable, so the log cannot be repaired "
    "by truncation. To recover: stop this member, remove its data directory, and re-add it to "
    "the cluster as a new member (it will catch up from the leader's snapshot and log).";

std::string at(const std::string& path, uint64_t offset) {
  char b[48];
  std::snprintf(b, sizeof b, " at offset %" PRIu64, offset);
  return "WAL segment " + path + b;
}

bool all_zero(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c == 0; });
}

uint64_t payload_bytes(const Entry& e) {
  return 17 + e.data.size();
}

// How far ahead of the records the WAL writes zeros into a segment.
// fallocate reserves a segment's blocks as unwritten extents; the first
// write to such a block makes fdatasync also write the extent's metadata
// (measured on ext4: ~190 us per write+fdatasync instead of ~125 us, and a
// third more CPU). Writing zeros ahead in 1 MiB steps pays that once per
// MiB of log instead of once per batch; zeros are what recovery reads as
// unwritten space anyway.
constexpr uint64_t kZeroAheadBytes = 1 << 20;

}  // namespace

struct Wal::Segment {
  uint64_t seq = 0;
  std::string path;
  std::unique_ptr<File> file;
  uint64_t capacity_bytes = 0;  ///< File size (preallocated).
  uint64_t max_index = 0;       ///< Highest entry index recorded in it (0: none).
  uint64_t end_offset = 0;      ///< End of its last complete batch (recovery).
  /// Bytes from the start that were written, with records or zeros, and so
  /// are no longer unwritten (preallocated) extents.
  uint64_t written_end = 0;

  /// Appends to `bytes`, about to be written at `offset`, the zeros that keep
  /// the written part of the segment kZeroAheadBytes ahead of the records.
  void pad_with_zeros_ahead(uint64_t offset, std::string* bytes) {
    const uint64_t end = offset + bytes->size();
    if (end <= written_end) return;
    const uint64_t target = std::max(end, std::min(capacity_bytes, end + kZeroAheadBytes));
    bytes->append(target - end, '\0');
    written_end = target;
  }
};

Wal::Wal(FileSystem* fs, std::string dir, WalOptions options)
    : fs_(fs), dir_(std::move(dir)), options_(options) {}
Wal::~Wal() = default;

Result<std::unique_ptr<Wal>> Wal::open(FileSystem* fs, std::string dir, WalOptions options,
                                       WalRecoveryReport* report) {
  RAFTKV_CHECK(options.segment_bytes >= 4096);
  std::unique_ptr<Wal> wal(new Wal(fs, std::move(dir), options));
  WalRecoveryReport local;
  Status s = wal->recover(report != nullptr ? report : &local);
  if (!s) return s;
  return wal;
}

Status Wal::fail(Status s) {
  RAFTKV_CHECK(!s.is_ok());
  if (failed_.is_ok()) {
    failed_ = Status(s.code(), "WAL is in the failed state after: " + s.message() +
                                   " (nothing more is written or acknowledged; restart the "
                                   "member to recover from what is on disk)");
  }
  return failed_;
}

Wal::Segment* Wal::find_segment(uint64_t seq) {
  if (segments_.empty() || seq < segments_.front()->seq) return nullptr;
  uint64_t k = seq - segments_.front()->seq;
  return k < segments_.size() ? segments_[k].get() : nullptr;
}

std::vector<std::string> Wal::segment_paths() const {
  std::vector<std::string> out;
  for (const auto& s : segments_) out.push_back(s->path);
  return out;
}

Result<Term> Wal::term(Index i) const {
  if (i == base_.index) return base_.term;
  if (i < base_.index) return Status::out_of_range("index compacted into a snapshot");
  if (i > last_index()) return Status::unavailable("index past the end of the log");
  return log_[distance(log_first_, i)].term;
}

// ---------------------------------------------------------------------------
// The log rules shared by save() and recovery.

Status Wal::apply_marker(const SnapshotMarker& m) {
  if (m.index < base_.index) {
    return Status::corruption("snapshot marker at index " + std::to_string(m.index.value()) +
                              " is below the previous one at " +
                              std::to_string(base_.index.value()));
  }
  if (!log_.empty()) {
    const Index last = last_index();
    if (m.index >= log_first_ && m.index <= last) {
      if (log_[distance(log_first_, m.index)].term == m.term) {
        // Keep the suffix after the snapshot point (§5.3).
        log_.erase(log_.begin(),
                   log_.begin() + static_cast<ptrdiff_t>(distance(log_first_, m.index) + 1));
        log_first_ = m.index + 1;
      } else {
        log_.clear();
      }
    } else if (m.index > last) {
      log_.clear();
    }
    // m.index < log_first_: the marker restates an older snapshot point.
  }
  base_ = m;
  if (log_.empty()) log_first_ = base_.index + 1;
  return Status::ok();
}

Status Wal::apply_entry(Index index, const Loc& loc) {
  if (index <= base_.index) {
    return Status::corruption("entry " + std::to_string(index.value()) +
                              " is at or below the snapshot marker at " +
                              std::to_string(base_.index.value()));
  }
  if (log_.empty() || index > last_index() + 1 || index <= log_first_) {
    // Start, a replaced whole log, or (during recovery only) a gap that a
    // later marker must close.
    log_.clear();
    log_first_ = index;
  } else {
    log_.resize(distance(log_first_, index));  // Drop the replaced suffix.
    if (loc.term < log_.back().term) {
      return Status::corruption("entry " + std::to_string(index.value()) + " has term " +
                                std::to_string(loc.term.value()) + ", below the term " +
                                std::to_string(log_.back().term.value()) +
                                " of the entry before it");
    }
  }
  log_.push_back(loc);
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Writing.

Status Wal::create_first_segment() {
  auto seg = std::make_unique<Segment>();
  seg->seq = 0;
  seg->path = join_path(dir_, segment_file_name(0, Index(1)));
  Result<std::unique_ptr<File>> f = fs_->open(seg->path, OpenMode::kCreateTruncate);
  if (!f) return fail(f.status());
  seg->file = std::move(*f);
  buf_.clear();
  append_segment_header_record(&buf_, SegmentHeader{kWalFormatVersion, 0, Index(1)}, next_batch_++,
                               true);
  if (Status s = seg->file->preallocate(options_.segment_bytes); !s) return fail(s);
  seg->capacity_bytes = options_.segment_bytes;
  const uint64_t header_bytes = buf_.size();
  seg->pad_with_zeros_ahead(0, &buf_);
  if (Status s = seg->file->pwrite(0, buf_); !s) return fail(s);
  if (Status s = seg->file->sync(); !s) return fail(s);
  if (Status s = fs_->sync_dir(dir_); !s) return fail(s);
  write_offset_ = header_bytes;
  segments_.push_back(std::move(seg));
  return Status::ok();
}

Status Wal::cut_segment(const std::string& batch_bytes, Index first_new_index) {
  auto seg = std::make_unique<Segment>();
  seg->seq = segments_.back()->seq + 1;
  seg->path = join_path(dir_, segment_file_name(seg->seq, first_new_index));
  seg->capacity_bytes = std::max<uint64_t>(options_.segment_bytes, batch_bytes.size());
  Result<std::unique_ptr<File>> f = fs_->open(seg->path, OpenMode::kCreateTruncate);
  if (!f) return fail(f.status());
  seg->file = std::move(*f);
  if (Status s = seg->file->preallocate(seg->capacity_bytes); !s) return fail(s);
  std::string padded = batch_bytes;
  seg->pad_with_zeros_ahead(0, &padded);
  if (Status s = seg->file->pwrite(0, padded); !s) return fail(s);
  if (Status s = seg->file->sync(); !s) return fail(s);
  if (Status s = fs_->sync_dir(dir_); !s) return fail(s);
  segments_.push_back(std::move(seg));
  write_offset_ = 0;
  return Status::ok();
}

Status Wal::save(const HardState* hard_state, std::span<const Entry> entries,
                 const SnapshotMarker* marker) {
  if (!failed_.is_ok()) return failed_;
  if (hard_state == nullptr && entries.empty() && marker == nullptr) return Status::ok();

  // Preconditions (bugs in the caller abort: writing them would make a log
  // that recovery must refuse).
  Index first_after = first_index();
  Index last_after = last_index();
  if (marker != nullptr) {
    RAFTKV_CHECK_MSG(marker->index >= base_.index, "snapshot marker below the current base");
    Result<Term> t = term(marker->index);
    first_after = marker->index + 1;
    if (!(t.is_ok() && *t == marker->term)) last_after = marker->index;
  }
  uint64_t need = 0;
  for (size_t k = 0; k < entries.size(); ++k) {
    RAFTKV_CHECK_MSG(k == 0 || entries[k].index == entries[k - 1].index + 1,
                     "entries of one save() must be consecutive");
    RAFTKV_CHECK_MSG(k == 0 || entries[k].term >= entries[k - 1].term,
                     "entry terms must not decrease");
    RAFTKV_CHECK_MSG(payload_bytes(entries[k]) <= kMaxRecordPayloadBytes, "entry too large");
    need += record_bytes(payload_bytes(entries[k]));
  }
  if (!entries.empty()) {
    RAFTKV_CHECK_MSG(entries[0].index >= first_after && entries[0].index <= last_after + 1,
                     "first entry must be in [first_index, last_index + 1]");
    if (entries[0].index > first_after) {
      Result<Term> prev = term(entries[0].index - 1);
      RAFTKV_CHECK_MSG(prev.is_ok() && *prev <= entries[0].term, "entry terms must not decrease");
    }
  }
  if (marker != nullptr) need += record_bytes(16);
  if (hard_state != nullptr) need += record_bytes(24);

  buf_.clear();
  const bool cut = write_offset_ + need > segments_.back()->capacity_bytes;
  const Index first_new_index = entries.empty() ? last_after + 1 : entries[0].index;
  if (cut) {
    // The new segment restates the snapshot point and hard state, so older
    // segments can be released without losing them.
    const uint32_t b = next_batch_++;
    const bool has_base = base_.index != Index{};
    const bool has_hs = !hard_state_.empty();
    append_segment_header_record(
        &buf_, SegmentHeader{kWalFormatVersion, segments_.back()->seq + 1, first_new_index}, b,
        !has_base && !has_hs);
    if (has_base) append_marker_record(&buf_, base_, b, !has_hs);
    if (has_hs) append_hard_state_record(&buf_, hard_state_, b, true);
  }
  const uint32_t batch = next_batch_;
  const size_t n_records = (marker ? 1 : 0) + entries.size() + (hard_state ? 1 : 0);
  size_t written = 0;
  if (marker != nullptr) append_marker_record(&buf_, *marker, batch, ++written == n_records);
  std::vector<Loc> locs;
  locs.reserve(entries.size());
  for (const Entry& e : entries) {
    const uint64_t off = buf_.size();
    append_entry_record(&buf_, e, batch, ++written == n_records);
    locs.push_back(Loc{e.term, 0, off, buf_.size() - off});
  }
  if (hard_state != nullptr)
    append_hard_state_record(&buf_, *hard_state, batch, ++written == n_records);

  // One write, one fdatasync.
  if (cut) {
    RAFTKV_RETURN_IF_ERROR(cut_segment(buf_, first_new_index));
  } else {
    Segment* seg = segments_.back().get();
    const size_t batch_bytes = buf_.size();
    seg->pad_with_zeros_ahead(write_offset_, &buf_);
    const Status s = seg->file->pwrite(write_offset_, buf_);
    buf_.resize(batch_bytes);
    if (!s) return fail(s);
    if (Status st = seg->file->sync(); !st) return fail(st);
  }
  ++next_batch_;

  // Durable: now update the in-memory view.
  Segment* seg = segments_.back().get();
  if (marker != nullptr) RAFTKV_CHECK(apply_marker(*marker).is_ok());
  for (size_t k = 0; k < entries.size(); ++k) {
    locs[k].seq = seg->seq;
    locs[k].offset += write_offset_;
    RAFTKV_CHECK(apply_entry(entries[k].index, locs[k]).is_ok());
    seg->max_index = std::max(seg->max_index, entries[k].index.value());
  }
  if (hard_state != nullptr) hard_state_ = *hard_state;
  write_offset_ += buf_.size();
  if (marker != nullptr) return release_segments();
  return Status::ok();
}

Status Wal::release_segments() {
  bool removed = false;
  // Bounded by the number of segments.
  while (segments_.size() > 1 && segments_.front()->max_index <= base_.index.value()) {
    segments_.front()->file.reset();
    if (Status s = fs_->remove(segments_.front()->path); !s) return fail(s);
    segments_.erase(segments_.begin());
    removed = true;
  }
  if (removed) {
    if (Status s = fs_->sync_dir(dir_); !s) return fail(s);
  }
  return Status::ok();
}

// ---------------------------------------------------------------------------
// Reading.

Result<Entry> Wal::read_entry(Index i) {
  if (i <= base_.index) return Status::out_of_range("entry compacted into a snapshot");
  if (i > last_index()) return Status::unavailable("entry past the end of the log");
  const Loc& loc = log_[distance(log_first_, i)];
  Segment* seg = find_segment(loc.seq);
  RAFTKV_CHECK(seg != nullptr);
  std::string bytes;
  RAFTKV_RETURN_IF_ERROR(seg->file->read(loc.offset, loc.size_bytes, &bytes));
  RecordView rec;
  std::string why;
  if (decode_record(bytes, 0, &rec, &why) != DecodeOutcome::kRecord ||
      rec.type != RecordType::kEntry) {
    return Status::corruption(at(seg->path, loc.offset) + ": re-reading entry " +
                              std::to_string(i.value()) +
                              " failed: " + (why.empty() ? "not an entry record" : why));
  }
  Result<Entry> e = decode_entry(rec.payload);
  if (!e) return Status::corruption(at(seg->path, loc.offset) + ": " + e.status().message());
  if (e->index != i) {
    return Status::corruption(at(seg->path, loc.offset) + ": expected entry " +
                              std::to_string(i.value()) + ", found entry " +
                              std::to_string(e->index.value()));
  }
  return e;
}

// ---------------------------------------------------------------------------
// Recovery.

namespace {

struct ScanResult {
  std::vector<RecordView> records;  ///< Records of complete batches only.
  uint64_t complete_end = 0;        ///< Offset after the last complete batch.
  bool damaged = false;             ///< An invalid record or unfinished batch was found.
  uint64_t bad_offset = 0;
  std::string why;
  uint64_t data_end = 0;  ///< Offset after the last non-zero byte.
};

// Looks past a damaged record at `x` for valid records. Returns "" if the
// damage is a torn write of the batch `batch_x`, else a description of the
// evidence that acknowledged data follows.
std::string classify_damage(std::string_view buf, uint64_t x, uint32_t batch_x, bool header_zero) {
  uint64_t first_valid = buf.size();
  for (uint64_t p = x + 8; p + kRecordHeaderBytes <= buf.size(); p += 8) {
    const auto type = static_cast<uint8_t>(buf[p + 12]);
    if (type < 1 || type > 4) continue;  // Cheap filter before the checksum.
    RecordView rec;
    std::string why;
    if (decode_record(buf, p, &rec, &why) != DecodeOutcome::kRecord) continue;
    if (rec.batch != batch_x) {
      char b[160];
      std::snprintf(b, sizeof b,
                    "a valid record of a later write (batch %u) follows at offset %" PRIu64,
                    rec.batch, p);
      return b;
    }
    first_valid = std::min(first_valid, p);
    p += rec.size_bytes - 8;
  }
  if (first_valid == buf.size() || header_zero) return "";
  // Valid records of the same unfinished write follow: torn only if a sector
  // of it never reached the disk (still zero); a flipped bit leaves none.
  for (uint64_t s = (x + kSectorBytes - 1) / kSectorBytes * kSectorBytes;
       s + kSectorBytes <= first_valid; s += kSectorBytes) {
    if (all_zero(buf.substr(s, kSectorBytes))) return "";
  }
  char b[160];
  std::snprintf(b, sizeof b,
                "valid records of the same write follow at offset %" PRIu64
                ", so this is not an unfinished write",
                first_valid);
  return b;
}

ScanResult scan_segment(std::string_view buf) {
  ScanResult r;
  std::vector<RecordView> records;
  uint64_t off = 0;
  // Bounded: every iteration advances by at least one record (>= 16 bytes).
  while (off < buf.size()) {
    RecordView rec;
    std::string why;
    DecodeOutcome o = decode_record(buf, off, &rec, &why);
    if (o == DecodeOutcome::kZero) {
      if (all_zero(buf.substr(off))) break;
      o = DecodeOutcome::kInvalid;
      why = "zero-filled record header followed by non-zero bytes";
    }
    if (o == DecodeOutcome::kRecord && !records.empty() && !records.back().batch_end() &&
        rec.batch != records.back().batch) {
      o = DecodeOutcome::kInvalid;
      why = "record of batch " + std::to_string(rec.batch) + " interrupts unfinished batch " +
            std::to_string(records.back().batch);
    }
    if (o != DecodeOutcome::kRecord) {
      r.damaged = true;
      r.bad_offset = off;
      r.why = why.empty() ? "record truncated by the end of the file" : why;
      break;
    }
    records.push_back(rec);
    off += rec.size_bytes;
    if (rec.batch_end()) {
      r.complete_end = off;
      r.records.insert(r.records.end(), records.begin() + static_cast<ptrdiff_t>(r.records.size()),
                       records.end());
    }
  }
  if (!r.damaged && records.size() != r.records.size()) {
    r.damaged = true;
    r.bad_offset = off;
    r.why = "the last batch ends without its final record";
  }
  uint64_t end = buf.size();
  while (end > 0 && buf[end - 1] == 0) --end;
  r.data_end = end;
  return r;
}

}  // namespace

Status Wal::recover(WalRecoveryReport* report) {
  RAFTKV_RETURN_IF_ERROR(fs_->create_dir(dir_));
  Result<std::vector<std::string>> names = fs_->list(dir_);
  if (!names) return names.status();
  std::vector<std::pair<uint64_t, std::string>> files;
  for (const std::string& n : *names) {
    uint64_t seq;
    Index first;
    if (parse_segment_file_name(n, &seq, &first)) files.emplace_back(seq, n);
  }
  std::sort(files.begin(), files.end());
  if (files.empty()) return create_first_segment();
  for (size_t k = 1; k < files.size(); ++k) {
    if (files[k].first != files[k - 1].first + 1) {
      return Status::corruption("WAL directory " + dir_ + ": segment " +
                                std::to_string(files[k - 1].first + 1) + " is missing between " +
                                files[k - 1].second + " and " + files[k].second + "." +
                                kOperatorAdvice);
    }
  }

  uint32_t last_batch = 0;
  for (size_t k = 0; k < files.size(); ++k) {
    const bool last = k + 1 == files.size();
    auto seg = std::make_unique<Segment>();
    seg->seq = files[k].first;
    seg->path = join_path(dir_, files[k].second);
    Result<std::unique_ptr<File>> f =
        fs_->open(seg->path, last ? OpenMode::kReadWrite : OpenMode::kRead);
    if (!f) return f.status();
    seg->file = std::move(*f);
    Result<uint64_t> size = seg->file->size();
    if (!size) return size.status();
    seg->capacity_bytes = *size;
    std::string buf;
    RAFTKV_RETURN_IF_ERROR(seg->file->read(0, *size, &buf));
    ++report->segments;

    ScanResult scan = scan_segment(buf);
    if (scan.damaged) {
      uint32_t batch_x = last_batch + 1;
      bool header_zero =
          scan.bad_offset + kRecordHeaderBytes <= buf.size() &&
          all_zero(std::string_view(buf).substr(scan.bad_offset, kRecordHeaderBytes));
      // The damaged record continues the batch of the record before it,
      // unless that record ended its batch.
      if (scan.bad_offset > scan.complete_end) {
        RecordView prev;
        std::string why;
        // The last record before the damage is a valid one of the unfinished batch.
        uint64_t off = scan.complete_end;
        while (off < scan.bad_offset &&
               decode_record(buf, off, &prev, &why) == DecodeOutcome::kRecord) {
          batch_x = prev.batch;
          off += prev.size_bytes;
        }
      } else if (!scan.records.empty()) {
        batch_x = scan.records.back().batch + 1;
      }
      std::string evidence = last ? classify_damage(buf, scan.bad_offset, batch_x, header_zero)
                                  : "a later segment exists";
      if (!evidence.empty()) {
        return Status::corruption(at(seg->path, scan.bad_offset) + ": " + scan.why +
                                  " (expected a valid record continuing the log; " + evidence +
                                  ")." + kOperatorAdvice);
      }
      // Torn tail: cut the unfinished batch off, durably, before going on.
      report->truncated_bytes += std::max(scan.data_end, scan.bad_offset) - scan.complete_end;
      report->repaired_segment = seg->path;
      if (!scan.records.empty()) {
        RAFTKV_RETURN_IF_ERROR(seg->file->truncate(scan.complete_end));
        RAFTKV_RETURN_IF_ERROR(
            seg->file->preallocate(std::max(seg->capacity_bytes, options_.segment_bytes)));
        RAFTKV_RETURN_IF_ERROR(seg->file->sync());
        seg->capacity_bytes = std::max(seg->capacity_bytes, options_.segment_bytes);
      }
    }
    if (scan.records.empty()) {
      if (!last) {
        return Status::corruption(at(seg->path, 0) +
                                  ": expected a segment header, found no valid record, and later "
                                  "segments exist." +
                                  kOperatorAdvice);
      }
      // Not even the segment header of the last segment survived: the cut
      // that created it never completed (nothing in it was acknowledged).
      report->repaired_segment = seg->path;
      seg->file.reset();
      RAFTKV_RETURN_IF_ERROR(fs_->remove(seg->path));
      RAFTKV_RETURN_IF_ERROR(fs_->sync_dir(dir_));
      if (segments_.empty()) return create_first_segment();
      // The previous segment is the last one again; it was recovered whole.
      Result<std::unique_ptr<File>> rw = fs_->open(segments_.back()->path, OpenMode::kReadWrite);
      if (!rw) return rw.status();
      segments_.back()->file = std::move(*rw);
      break;
    }

    // Replay the complete batches.
    for (size_t r = 0; r < scan.records.size(); ++r) {
      const RecordView& rec = scan.records[r];
      Status s;
      if (r == 0) {
        Result<SegmentHeader> h = rec.type == RecordType::kSegmentHeader
                                      ? decode_segment_header(rec.payload)
                                      : Result<SegmentHeader>(Status::corruption(
                                            "the first record is not a segment header"));
        if (h && h->seq != seg->seq) {
          s = Status::corruption("segment header says seq " + std::to_string(h->seq) +
                                 " but the file name says " + std::to_string(seg->seq));
        } else {
          s = h.status();
        }
      } else {
        switch (rec.type) {
          case RecordType::kSegmentHeader:
            s = Status::corruption("a segment header in the middle of a segment");
            break;
          case RecordType::kEntry: {
            Result<std::pair<Index, Term>> id = decode_entry_id(rec.payload);
            if (!id) {
              s = id.status();
              break;
            }
            s = apply_entry(id->first, Loc{id->second, seg->seq, rec.offset, rec.size_bytes});
            seg->max_index = std::max(seg->max_index, id->first.value());
            break;
          }
          case RecordType::kHardState: {
            Result<HardState> hs = decode_hard_state(rec.payload);
            if (hs) hard_state_ = *hs;
            s = hs.status();
            break;
          }
          case RecordType::kSnapshotMarker: {
            Result<SnapshotMarker> m = decode_marker(rec.payload);
            s = m ? apply_marker(*m) : m.status();
            break;
          }
        }
      }
      if (!s)
        return Status::corruption(at(seg->path, rec.offset) + ": " + s.message() + "." +
                                  kOperatorAdvice);
      last_batch = rec.batch;
      ++report->records;
    }
    seg->end_offset = scan.complete_end;
    segments_.push_back(std::move(seg));
  }
  if (!log_.empty() && log_first_ != base_.index + 1) {
    return Status::corruption("WAL directory " + dir_ + ": entries " +
                              std::to_string(base_.index.value() + 1) + " to " +
                              std::to_string(log_first_.value() - 1) +
                              " are missing (a segment holding them was lost)." + kOperatorAdvice);
  }
  if (log_.empty()) log_first_ = base_.index + 1;
  write_offset_ = segments_.back()->end_offset;
  next_batch_ = last_batch + 1;
  // Segment removal by an earlier crash may be half done: finish it.
  return release_segments();
}

}  // namespace raftkv::storage
