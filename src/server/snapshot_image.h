// The server's snapshot image: what a raft::Snapshot's data holds.
//
//   +-----------------+--------------------+---------------------------+
//   | "RKVIMG01" (8)  | u32 table length T | T bytes: MemberTable      |
//   +-----------------+--------------------+---------------------------+
//   | frames: u32 n (1..64 MiB) | n bytes: one kv::Store snapshot chunk |
//   | ... repeated ...                                                   |
//   | u32 0 (end)                                                        |
//   +--------------------------------------------------------------------+
//
// Integers little endian. Each kv chunk carries its own checksum
// (docs/kv.md), and the snapshot file wrapping the image is checksummed too
// (storage/snapshot_store.h), so this layer checks only the framing: every
// length against what remains, the end mark, and that nothing trails it.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "base/status.h"
#include "kv/store.h"
#include "server/members.h"

namespace raftkv::server {

/// Receives an image piece by piece; a non-OK status stops the writing.
using ImageSink = std::function<Status(std::string_view)>;

/// Writes an image of the member table and a store snapshot stream (consumed
/// to its end) into `sink`, one kv chunk (~1 MiB) at a time: memory stays
/// bounded whatever the store's size.
Status write_snapshot_image(const MemberTable& members, kv::SnapshotStream& stream,
                            const ImageSink& sink);

/// The same, into memory (small images and tests).
Result<std::string> build_snapshot_image(const MemberTable& members, kv::SnapshotStream& stream);

/// A parsed image: the member table and a cursor over the kv chunks.
class SnapshotImage {
 public:
  /// Checks the header and the framing of the whole image.
  static Result<SnapshotImage> parse(std::string_view image);

  const MemberTable& members() const { return members_; }
  /// A ChunkSource for kv::Store::restore over the kv chunks (views into the
  /// image, which must outlive the source).
  kv::ChunkSource chunks() const;

 private:
  MemberTable members_;
  std::string_view frames_;  ///< From the first frame through the end mark.
};

}  // namespace raftkv::server
