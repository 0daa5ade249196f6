// The WAL's on-disk record format: framing, checksums and payload codecs.
//
// A WAL is a directory of segment files named "<seq>-<first_index>.wal" (both
// 16 lowercase hex digits): `seq` counts segments from 0 without gaps,
// `first_index` is the index the segment's first entry was expected to have
// (informational). Each segment is preallocated (zero-filled) and holds a
// sequence of records, 8-byte aligned:
//
//   offset  size  field
//   ------  ----  -----------------------------------------------------------
//        0     4  crc32c      CRC32C of bytes [4, 16 + length), little-endian
//        4     4  length      payload length in bytes (LE)
//        8     4  batch       low 32 bits of the id of the write (group commit)
//                             that carried this record (LE)
//       12     1  type        1 segment header, 2 entry, 3 hard state,
//                             4 snapshot marker (0 never: zero-filled space)
//       13     1  flags       bit 0: last record of its batch; others 0
//       14     2  reserved    0
//       16     n  payload     (see below)
//     16+n   0-7  padding     zeros up to the next multiple of 8
//
// Payloads (integers little-endian):
//   segment header  u32 magic 0x57564B52 ("RKVW"), u16 format version (1),
//                   u16 reserved 0, u64 seq, u64 first_index        (24 bytes)
//   entry           u64 term, u64 index, u8 entry type, data bytes (17 + n)
//   hard state      u64 term, u64 vote, u64 commit                  (24 bytes)
//   snapshot marker u64 index, u64 term                             (16 bytes)
//
// The recovery rule that uses the `batch` and `flags` fields is in wal.h and
// docs/storage.md. The codecs are pure functions: any thread may call them.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/status.h"
#include "raft/types.h"

namespace raftkv::storage {

enum class RecordType : uint8_t {
  kSegmentHeader = 1,
  kEntry = 2,
  kHardState = 3,
  kSnapshotMarker = 4,
};

inline constexpr uint64_t kRecordHeaderBytes = 16;
inline constexpr uint32_t kSegmentMagic = 0x57564B52;  // "RKVW" read as LE bytes.
inline constexpr uint16_t kWalFormatVersion = 1;
/// Largest payload accepted (a bound on what a corrupt length can make us read).
inline constexpr uint32_t kMaxRecordPayloadBytes = 512u << 20;
inline constexpr uint8_t kFlagBatchEnd = 1;

/// Bytes a record with an `n`-byte payload occupies, padding included.
constexpr uint64_t record_bytes(uint64_t payload_bytes) {
  return (kRecordHeaderBytes + payload_bytes + 7) & ~uint64_t{7};
}

struct SegmentHeader {
  uint16_t version = kWalFormatVersion;
  uint64_t seq = 0;
  raft::Index first_index;
  bool operator==(const SegmentHeader&) const = default;
};

/// "The log before and including `index` is covered by a snapshot whose last
/// entry is (index, term)."
struct SnapshotMarker {
  raft::Index index;
  raft::Term term;
  bool operator==(const SnapshotMarker&) const = default;
};

/// A record found in a buffer; `payload` points into that buffer.
struct RecordView {
  RecordType type = RecordType::kEntry;
  uint8_t flags = 0;
  uint32_t batch = 0;
  std::string_view payload;
  uint64_t offset = 0;      ///< Where the record starts.
  uint64_t size_bytes = 0;  ///< record_bytes(payload.size()).
  bool batch_end() const { return (flags & kFlagBatchEnd) != 0; }
};

/// Appends one framed record whose payload is `part1` followed by `part2`.
void append_record(std::string* out, RecordType type, uint32_t batch, bool batch_end,
                   std::string_view part1, std::string_view part2 = {});

/// Appends a framed record of each kind.
void append_entry_record(std::string* out, const raft::Entry& e, uint32_t batch, bool batch_end);
void append_hard_state_record(std::string* out, const raft::HardState& hs, uint32_t batch,
                              bool batch_end);
void append_marker_record(std::string* out, const SnapshotMarker& m, uint32_t batch,
                          bool batch_end);
void append_segment_header_record(std::string* out, const SegmentHeader& h, uint32_t batch,
                                  bool batch_end);

enum class DecodeOutcome : uint8_t {
  kRecord,     ///< A valid record; *out filled.
  kZero,       ///< The header is all zero bytes: unwritten (preallocated) space.
  kTruncated,  ///< Fewer bytes remain than the header or its length announces.
  kInvalid,    ///< Bad checksum, type, flags, length or padding; *why says which.
};

/// Decodes the record at `offset` of `buf`, validating every header field, the
/// checksum and the padding. Never reads outside `buf`.
/// REQUIRES: offset is a multiple of 8 and <= buf.size().
DecodeOutcome decode_record(std::string_view buf, uint64_t offset, RecordView* out,
                            std::string* why);

/// Payload decoders: validate the size and fields; Code::kCorruption otherwise.
Result<raft::Entry> decode_entry(std::string_view payload);
Result<raft::HardState> decode_hard_state(std::string_view payload);
Result<SnapshotMarker> decode_marker(std::string_view payload);
Result<SegmentHeader> decode_segment_header(std::string_view payload);
/// Entry index and term only (no copy of the data), for recovery.
Result<std::pair<raft::Index, raft::Term>> decode_entry_id(std::string_view payload);

/// "0000000000000003-00000000000004d2.wal".
std::string segment_file_name(uint64_t seq, raft::Index first_index);
/// Parses a segment file name; false if `name` is not one.
bool parse_segment_file_name(std::string_view name, uint64_t* seq, raft::Index* first_index);

/// Parses 1 to 16 lowercase hex digits; false on anything else.
bool parse_hex_u64(std::string_view s, uint64_t* v);

// Little-endian helpers shared by the storage codecs.
void put_u16(std::string* out, uint16_t v);
void put_u32(std::string* out, uint32_t v);
void put_u64(std::string* out, uint64_t v);
uint16_t get_u16(const char* p);
uint32_t get_u32(const char* p);
uint64_t get_u64(const char* p);

}  // namespace raftkv::storage
