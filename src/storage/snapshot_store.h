// SnapshotStore: state-machine snapshots as checksummed files, written
// atomically and streamed in chunks (an image can be hundreds of MB).
//
// File "<index>-<term>.snap" (16 lowercase hex digits each) in the store's
// directory; integers little-endian:
//
//   offset  size  field
//   ------  ----  ------------------------------------------------------------
//        0     8  magic "RKVSNAP1"
//        8     4  format version (1)
//       12     4  M: metadata length (<= 16 MiB)
//       16     M  metadata: u64 index, u64 term, then voters, learners,
//                 voters_outgoing, learners_next (each u32 count + u64 ids),
//                 u8 auto_leave
//     16+M     4  crc32c of bytes [0, 16 + M)
//   then chunks, each:
//                 u32 n (1 .. 64 MiB), u32 crc32c(n as 4 LE bytes ++ data), n bytes data
//   then the end record:
//                 u32 0, u32 crc32c(4 zero bytes ++ total as 8 LE bytes),
//                 u64 total data bytes
//   and nothing after it.
//
// Atomicity: a snapshot is written to "<name>.tmp", fdatasync'ed, renamed to
// its final name and the directory fsynced; only then does finish() return.
// A crash at any point leaves either the complete new file or none (stale
// .tmp files are deleted by open()). After a successful write only the
// newest `retain` snapshots are kept.
//
// Load rule (docs/storage.md): choose() walks the snapshots from the newest
// and verifies each file completely (every checksum, the total, no trailing
// bytes). The newest valid one is used. A corrupt one is reported in
// SnapshotChoice::problems; falling back to an older valid snapshot is allowed
// only if `usable(metadata)` says the WAL still holds every entry after it
// (wal first_index <= snapshot index + 1). If the newest corrupt snapshot has
// no usable valid predecessor, choose() returns kCorruption: the member must be
// rebuilt (remove its data directory and re-add it).
//
// Threading: one thread at a time per store, writer and reader. Exception:
// begin(), and append()/seal() on the writer it returns, touch only the new
// temporary file, so a background thread may stream a snapshot in while the
// owning thread uses the store; finish() (rename, retention) belongs to the
// owning thread again.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"
#include "raft/types.h"
#include "storage/file_system.h"

namespace raftkv::storage {

struct SnapshotStoreOptions {
  uint32_t retain = 5;             ///< Newest snapshots kept after each write (>= 1).
  uint64_t chunk_bytes = 1 << 20;  ///< Data is framed in chunks of this size.
};

/// Streams one snapshot into a temporary file. Call append() any number of
/// times, then finish(). Destroying an unfinished writer removes its temp file.
/// REQUIRES: the writer does not outlive the SnapshotStore that made it.
class SnapshotWriter {
 public:
  ~SnapshotWriter();
  /// Adds image bytes (buffered up to chunk_bytes, then written).
  Status append(std::string_view data);
  /// Writes the end record and syncs the temporary file: the slow part of
  /// finishing, without making the snapshot visible. At most once.
  Status seal();
  /// Seals (if not yet), renames into place, fsyncs the directory and applies
  /// retention. OK means the snapshot is durable.
  Status finish();
  const std::string& path() const { return final_path_; }
  const raft::SnapshotMetadata& metadata() const { return metadata_; }
  /// Image bytes appended so far.
  uint64_t bytes() const { return total_bytes_; }

 private:
  friend class SnapshotStore;
  SnapshotWriter() = default;
  Status flush_chunk();

  class SnapshotStore* store_ = nullptr;
  std::unique_ptr<File> file_;
  std::string tmp_path_;
  std::string final_path_;
  raft::SnapshotMetadata metadata_;
  // A large image is synced every kSyncEveryBytes as it is written, so its
  // dirty pages never pile up into one long flush that the WAL's next
  // fdatasync would wait behind.
  static constexpr uint64_t kSyncEveryBytes = 8 << 20;

  std::string pending_;
  uint64_t offset_ = 0;
  uint64_t synced_offset_ = 0;
  uint64_t total_bytes_ = 0;
  bool sealed_ = false;
  bool finished_ = false;
  Status failed_;
};

/// Streams a snapshot out of its file, verifying each chunk as it is read
/// (SnapshotStore::verify() checks the whole file up front).
class SnapshotReader {
 public:
  const raft::SnapshotMetadata& metadata() const { return metadata_; }
  /// Image bytes appended so far.
  uint64_t bytes() const { return total_bytes_; }
  /// Next chunk of image bytes into *out; returns false (and leaves *out
  /// empty) once the end record was read and checked. Every chunk is
  /// checksummed before it is returned.
  Result<bool> next_chunk(std::string* out);
  /// The whole image (for small snapshots and tests).
  Result<std::string> read_all();

 private:
  friend class SnapshotStore;
  Status corrupt(uint64_t offset, const std::string& what) const;

  std::unique_ptr<File> file_;
  std::string path_;
  raft::SnapshotMetadata metadata_;
  uint64_t offset_ = 0;
  uint64_t file_bytes_ = 0;
  uint64_t total_bytes_ = 0;
  bool done_ = false;
};

struct SnapshotChoice {
  std::optional<raft::SnapshotMetadata> metadata;  ///< None: no snapshot at all.
  std::string path;
  std::vector<std::string> problems;  ///< Corrupt newer snapshots that were skipped.
};

class SnapshotStore {
 public:
  /// Opens (creating) the store in `dir` and deletes leftover temp files.
  static Result<std::unique_ptr<SnapshotStore>> open(FileSystem* fs, std::string dir,
                                                     SnapshotStoreOptions options = {});

  /// Starts writing a snapshot with `metadata`.
  Result<std::unique_ptr<SnapshotWriter>> begin(const raft::SnapshotMetadata& metadata);
  /// Writes a whole snapshot held in memory (begin + append + finish).
  Status save(const raft::Snapshot& snapshot);

  /// Chooses the snapshot to start from (see the load rule above).
  Result<SnapshotChoice> choose(const std::function<bool(const raft::SnapshotMetadata&)>& usable);

  /// Opens `path` for streaming (header checked; chunks checked as read).
  Result<std::unique_ptr<SnapshotReader>> open_reader(const std::string& path);
  /// Reads and verifies a whole snapshot into memory.
  Result<raft::Snapshot> load(const std::string& path);
  /// Reads the whole file once, checking every checksum. Returns its metadata.
  Result<raft::SnapshotMetadata> verify(const std::string& path);

  /// Paths of the snapshot files, newest (highest index) first.
  Result<std::vector<std::string>> list();

  const std::string& dir() const { return dir_; }

 private:
  friend class SnapshotWriter;
  SnapshotStore(FileSystem* fs, std::string dir, SnapshotStoreOptions options)
      : fs_(fs), dir_(std::move(dir)), options_(options) {}
  Status apply_retention();

  FileSystem* fs_;
  std::string dir_;
  SnapshotStoreOptions options_;
};

/// "00000000000004d2-0000000000000003.snap".
std::string snapshot_file_name(raft::Index index, raft::Term term);
bool parse_snapshot_file_name(std::string_view name, raft::Index* index, raft::Term* term);

/// Metadata codec (exposed for the fuzz target and tests).
std::string encode_snapshot_metadata(const raft::SnapshotMetadata& m);
Result<raft::SnapshotMetadata> decode_snapshot_metadata(std::string_view bytes);

}  // namespace raftkv::storage
