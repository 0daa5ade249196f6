// Where received snapshot images go while their chunks arrive.
//
// The receiver of a SendSnapshot stream never holds the image in one wire
// buffer: each chunk (≤ the sender's chunk size) is checked and handed to a
// SnapshotWriter, then dropped. What the writer does with the bytes is the
// caller's choice: MemorySnapshotSink gathers them in one buffer reserved up
// front (bounded), FileSnapshotSink streams them to a file and hands the raft
// loop the file's path instead of the bytes.
//
// Thread-safety: open() may be called concurrently from several gRPC threads
// (one per incoming transfer); a writer is used by one thread at a time.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "raft/types.h"

namespace raftkv::transport {

/// Receives the bytes of one snapshot transfer, in order. Destroying a writer
/// that was not finished discards what it received.
class SnapshotWriter {
 public:
  virtual ~SnapshotWriter() = default;
  /// Appends the next `chunk` of the image.
  virtual Status append(std::string_view chunk) = 0;
  /// Called once after the last chunk passed its checks. Returns what becomes
  /// the delivered message's Snapshot::data.
  virtual Result<std::string> finish() = 0;
};

class SnapshotSink {
 public:
  virtual ~SnapshotSink() = default;
  /// Starts receiving an image of `total_bytes` bytes from `from` for the
  /// snapshot described by `md` (already validated). Returns an error to refuse
  /// the transfer (too large, no space); the sender then reports failure.
  virtual Result<std::unique_ptr<SnapshotWriter>> open(raft::NodeId from,
                                                       const raft::SnapshotMetadata& md,
                                                       uint64_t total_bytes) = 0;
};

/// Gathers images in memory, refusing any larger than `max_bytes`.
class MemorySnapshotSink final : public SnapshotSink {
 public:
  explicit MemorySnapshotSink(uint64_t max_bytes) : max_bytes_(max_bytes) {}
  Result<std::unique_ptr<SnapshotWriter>> open(raft::NodeId from, const raft::SnapshotMetadata& md,
                                               uint64_t total_bytes) override;

 private:
  const uint64_t max_bytes_;
};

/// Streams images into files under `dir` (which must exist): bytes go to
/// "<dir>/snap-<from hex>-<term hex>-<index hex>.part", are fsynced on finish
/// and the file is renamed to ".snap"; the delivered Snapshot::data is then
/// that final path, and the receiver (the raft loop's owner) takes ownership
/// of the file. Images larger than `max_bytes` are refused.
class FileSnapshotSink final : public SnapshotSink {
 public:
  FileSnapshotSink(std::string dir, uint64_t max_bytes)
      : dir_(std::move(dir)), max_bytes_(max_bytes) {}
  Result<std::unique_ptr<SnapshotWriter>> open(raft::NodeId from, const raft::SnapshotMetadata& md,
                                               uint64_t total_bytes) override;

 private:
  const std::string dir_;
  const uint64_t max_bytes_;
};

}  // namespace raftkv::transport
