// Backup files: what Maintenance.Snapshot streams, `etcdctl snapshot save`
// stores, and `raftkv snapshot restore` (raftkvctl snapshot restore) turns
// into the data directory of a member of a new cluster.
//
//   +-----------------+----------------------------------------------------+
//   | "RKVBAK01" (8)  | frames: u32 n (1..64 MiB) | n bytes: kv::Store chunk |
//   |                 | ... repeated ...                                    |
//   |                 | u32 0 (end mark)                                    |
//   +-----------------+----------------------------------------------------+
//   | zero padding: 0..511 bytes, so that everything before the digest is a |
//   | multiple of 512 bytes long                                            |
//   +----------------------------------------------------------------------+
//   | SHA-256 (32) of every byte before it                                  |
//   +----------------------------------------------------------------------+
//
// Integers little endian. The total length is 32 more than a multiple of 512
// and ends with the SHA-256 of what precedes it: the two properties etcd's
// client checks before it keeps a downloaded snapshot. The kv chunks carry
// the store's own framing and CRC32C (docs/kv.md); the file holds only
// member-independent data (no member table, no WAL): restore builds those for
// the new cluster from its flags, as etcd's restore does.
//
// Refused on read (each with a message naming the problem): a length that
// breaks the 512 rule, a digest mismatch, a bad magic, a frame length out of
// range, a missing end mark, a non-zero padding byte, padding of 512 bytes or
// more, and anything the kv chunks' own checks reject.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "kv/store.h"
#include "server/config.h"

namespace raftkv::server {

/// Produces a backup file incrementally, for streaming: feed kv chunks in
/// order, take the bytes each call appends, then finish().
class BackupWriter {
 public:
  BackupWriter();
  ~BackupWriter();
  BackupWriter(const BackupWriter&) = delete;
  BackupWriter& operator=(const BackupWriter&) = delete;

  /// Appends the file header (first call only) and the frame of `chunk` to
  /// `out`. Errors: kInternal if the chunk cannot be framed (empty, > 64 MiB).
  Status add_chunk(std::string_view chunk, std::string* out);
  /// Appends the end mark, the padding and the digest to `out`. Once.
  void finish(std::string* out);

 private:
  void emit(std::string_view bytes, std::string* out);
  struct Digest;
  Digest* digest_;
  uint64_t length_ = 0;
  bool started_ = false;
};

/// Writes a whole backup of `stream` (consumed to its end) to `out`.
Status write_backup(kv::SnapshotStream& stream, std::string* out);

/// A verified backup held in memory: checksum, framing and padding checked.
class Backup {
 public:
  static Result<Backup> parse(std::string bytes);
  /// A ChunkSource over the kv chunks (the Backup must outlive it).
  kv::ChunkSource chunks() const;
  uint64_t size_bytes() const { return bytes_.size(); }

 private:
  std::string bytes_;
  size_t frames_begin_ = 0;
};

/// Reads and verifies the backup at `path`.
Result<Backup> read_backup_file(const std::string& path);

/// What `snapshot status` prints about a backup.
struct BackupStatus {
  uint32_t hash = 0;  ///< HashKV of the restored store at its revision.
  int64_t revision = 0;
  uint64_t total_keys = 0;
  uint64_t total_size_bytes = 0;
};

/// etcd's `snapshot restore`: verifies the backup at `file` and builds
/// cfg.data_dir (which must not exist or be empty) for member cfg.name of a
/// new cluster described by cfg.initial_cluster and cfg.initial_cluster_token:
/// the store restored from the file (applied index rebased onto the new log,
/// alarms dropped), the bootstrap log and raftkv.meta. Starting every member
/// of --initial-cluster from its restored directory with
/// --initial-cluster-state new gives a cluster that serves the backup's keys.
/// A failure midway leaves a directory to delete before retrying.
Status restore_backup(const std::string& file, const Config& cfg);

/// Restores the backup into a temporary directory under `scratch_dir` and
/// reports its hash, revision, key count and size; removes what it created.
Result<BackupStatus> backup_status(const std::string& file, const std::string& scratch_dir);

/// `raftkv snapshot restore|status ...` (argv[1] == "snapshot"): runs the
/// subcommand and returns the process exit code; messages go to stdout and
/// stderr.
int snapshot_command_main(int argc, const char* const* argv);

}  // namespace raftkv::server
