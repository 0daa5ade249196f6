// FileSystem: the one border between raftkv's durable storage and the disk.
//
// Everything in src/storage/ does its I/O through this interface, so the same
// WAL and snapshot code runs on the real disk (PosixFileSystem) and inside the
// deterministic simulator and the tests (FaultFileSystem, fault_file_system.h),
// which can crash, tear writes, flip bits and fail with ENOSPC/EIO on demand.
//
// Durability model (what callers may rely on, and what FaultFileSystem
// enforces): bytes written to a file survive a crash only after File::sync()
// returned OK; a created, renamed or removed directory entry survives a crash
// only after sync_dir() of its directory returned OK. Errors are Code::kIOError
// with the operating system's words and errno name in the message, e.g.
// "write wal/0000.wal: No space left on device (ENOSPC)".
//
// Threading: a File is used by one thread at a time (the WAL belongs to the
// raft loop); they hold no locks. The POSIX file system keeps no state of its
// own, so different threads may use it and their own Files at once (the
// server streams snapshot files on a thread of their own); the fault-injecting
// one is single-threaded.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace raftkv::storage {

/// An open file. Offsets and sizes are in bytes.
class File {
 public:
  virtual ~File() = default;

  /// Writes `data` at `offset`, extending the file if it ends past the end.
  /// The bytes are not durable until sync().
  virtual Status pwrite(uint64_t offset, std::string_view data) = 0;

  /// Writes `data` at the current end of the file.
  virtual Status append(std::string_view data) = 0;

  /// Reads up to `n` bytes at `offset` into `out` (resized to what was read;
  /// shorter only at end of file).
  virtual Status read(uint64_t offset, uint64_t n, std::string* out) = 0;

  /// Makes every write to this file durable (fdatasync). After a failure the
  /// state of the unsynced bytes is unknown: callers must not retry and assume
  /// success (see docs/storage.md, "Failure policy").
  virtual Status sync() = 0;

  /// Sets the file's size to `size_bytes` (dropping or zero-extending).
  /// Durable after sync().
  virtual Status truncate(uint64_t size_bytes) = 0;

  /// Reserves space so the file is at least `size_bytes` long, the new bytes
  /// reading as zeros (fallocate). Durable after sync().
  virtual Status preallocate(uint64_t size_bytes) = 0;

  /// Current size of the file in bytes.
  virtual Result<uint64_t> size() = 0;
};

enum class OpenMode : uint8_t {
  kRead,             ///< Existing file, read only.
  kReadWrite,        ///< Existing file, read and write.
  kCreateExclusive,  ///< New file (fails with kAlreadyExists if present), read and write.
  kCreateTruncate,   ///< Create or empty an existing file, read and write.
};

class FileSystem {
 public:
  virtual ~FileSystem() = default;

  /// Opens `path` as `mode` says. A missing file is Code::kNotFound.
  virtual Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) = 0;

  /// Creates directory `path` (and missing parents). OK if it exists.
  virtual Status create_dir(const std::string& path) = 0;

  /// Makes the entries of directory `path` durable (fsync of the directory):
  /// creations, renames and removals of files inside it.
  virtual Status sync_dir(const std::string& path) = 0;

  /// Atomically replaces `to` with `from` (rename(2)). Durable after
  /// sync_dir() of the directory.
  virtual Status rename(const std::string& from, const std::string& to) = 0;

  /// Removes file `path`. Durable after sync_dir(). Missing is kNotFound.
  virtual Status remove(const std::string& path) = 0;

  /// Names (not paths) of the regular files in directory `path`, sorted.
  virtual Result<std::vector<std::string>> list(const std::string& path) = 0;

  /// True if a file or directory exists at `path`.
  virtual bool exists(const std::string& path) = 0;
};

/// The real file system (open/pwrite/fdatasync/fallocate/rename/fsync of dirs).
/// Stateless; one instance may be shared.
std::unique_ptr<FileSystem> make_posix_file_system();

/// "dir/name", without doubling a trailing slash.
std::string join_path(std::string_view dir, std::string_view name);

}  // namespace raftkv::storage
