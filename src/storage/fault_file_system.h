// FaultFileSystem: an in-memory FileSystem that remembers what is durable and
// can fail the way real disks fail. Used by the storage tests, the fuzz target
// and the deterministic simulator (src/sim/).
//
// Model. Every file has its current bytes (what reads see) and its durable
// bytes (what survives a crash): File::sync() makes the current bytes durable.
// Every directory has its current entries and its durable entries:
// sync_dir() makes the current entries durable. A crash resets both to their
// durable state, so an un-synced write, or a created/renamed/removed file whose
// directory was not synced, is undone. Directories themselves are durable once
// created (the storage code creates them once, at startup).
//
// Faults, all deterministic (no clocks, no randomness inside):
//   crash(mode)            power loss; `mode` chooses how much un-synced state survives.
//   tear_last_write(p, n)  keep only the first n bytes of the last un-synced write to p.
//   flip_bit(p, off, bit)  silent media corruption, in current and durable bytes.
//   fail_writes / fail_syncs  ENOSPC or EIO after k more successful calls (sticky).
//
// Handles opened before a crash are stale: every call on them fails with
// kIOError, as a process killed by the crash would never use them again.
//
// Threading: single-threaded, like everything else in the simulator.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "storage/file_system.h"

namespace raftkv::storage {

class FaultFileSystem final : public FileSystem {
 public:
  enum class Failure : uint8_t {
    kNone,
    kNoSpace,  ///< "No space left on device (ENOSPC)".
    kIO,       ///< "Input/output error (EIO)".
  };

  enum class CrashMode : uint8_t {
    kDropUnsynced,      ///< Only what was synced survives (the strict case).
    kKeepUnsyncedData,  ///< File bytes were flushed; un-synced directory changes are lost.
    kKeepUnsynced,      ///< The OS flushed everything just before power was lost.
  };

  FaultFileSystem();
  ~FaultFileSystem() override;

  // FileSystem.
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override;
  Status create_dir(const std::string& path) override;
  Status sync_dir(const std::string& path) override;
  Status rename(const std::string& from, const std::string& to) override;
  Status remove(const std::string& path) override;
  Result<std::vector<std::string>> list(const std::string& path) override;
  bool exists(const std::string& path) override;

  // Faults.

  /// Simulates power loss and restart. Every open handle becomes stale.
  void crash(CrashMode mode = CrashMode::kDropUnsynced);

  /// Power loss after the OS wrote back part of what was not synced: for each
  /// file (in path order) a prefix of its un-synced changes survives, the last
  /// surviving write possibly torn; each directory keeps or loses its
  /// un-synced entry changes as a whole. Every choice is `choose(n)`, which
  /// must return a number in [0, n]: the simulator passes its seeded
  /// generator, so the outcome is reproducible.
  void crash_partial(const std::function<uint64_t(uint64_t n)>& choose);

  /// Cuts the most recent un-synced write to `path` down to its first
  /// `keep_bytes` bytes (the rest of the range returns to what was there
  /// before). Combine with crash(kKeepUnsynced) for a torn write.
  /// kFailedPrecondition if `path` has no un-synced write.
  Status tear_last_write(const std::string& path, uint64_t keep_bytes);

  /// XORs bit `bit` (0..7) of byte `offset` of `path`, durably.
  Status flip_bit(const std::string& path, uint64_t offset, int bit);

  /// After `after_ok` more successful writes (pwrite/append/truncate/
  /// preallocate), every write fails with `f` until cleared with kNone.
  void fail_writes(Failure f, uint64_t after_ok = 0);
  /// After `after_ok` more successful File::sync()/sync_dir() calls, every
  /// sync fails with `f` until cleared with kNone. A failed sync makes nothing durable.
  void fail_syncs(Failure f, uint64_t after_ok = 0);

  // Inspection (tests).

  /// Current bytes of `path` (what a read sees).
  Result<std::string> contents(const std::string& path) const;
  /// Bytes of `path` that would survive crash(kDropUnsynced); kNotFound if the
  /// file's entry itself is not durable.
  Result<std::string> durable_contents(const std::string& path) const;
  /// Replaces `path`'s contents (creating it), durably, entry included.
  Status put_file(const std::string& path, const std::string& bytes);

  uint64_t read_calls() const { return read_calls_; }    ///< File::read calls.
  uint64_t write_calls() const { return write_calls_; }  ///< pwrite + append calls.
  uint64_t bytes_written() const { return bytes_written_; }  ///< By pwrite + append.
  uint64_t sync_calls() const { return sync_calls_; }    ///< File::sync calls.
  uint64_t dir_sync_calls() const { return dir_sync_calls_; }

 private:
  struct Inode;
  struct Dir;
  class Handle;
  friend class Handle;

  Status check_write(const std::string& path);
  Status check_sync(const std::string& path);
  Dir* find_dir(const std::string& dir);
  const Dir* find_dir(const std::string& dir) const;
  std::shared_ptr<Inode> lookup(const std::string& path) const;

  std::map<std::string, std::unique_ptr<Dir>> dirs_;
  uint64_t epoch_ = 0;  ///< Bumped by crash(); handles of older epochs are stale.
  Failure write_failure_ = Failure::kNone;
  uint64_t writes_before_failure_ = 0;
  Failure sync_failure_ = Failure::kNone;
  uint64_t syncs_before_failure_ = 0;
  uint64_t read_calls_ = 0;
  uint64_t write_calls_ = 0;
  uint64_t bytes_written_ = 0;
  uint64_t sync_calls_ = 0;
  uint64_t dir_sync_calls_ = 0;
};

}  // namespace raftkv::storage
