// libFuzzer target: the WAL record decoder and the whole recovery path, over
// the in-memory FaultFileSystem (no real I/O).
//
// Input: byte 0 selects the layout (bit 0: two segments, split at the 8-byte
// multiple given by bytes 1-2; else one segment from byte 1 on). The bytes are
// installed as segment files and Wal::open recovers them. Properties checked:
//   - nothing crashes, hangs or reads out of bounds (ASan/UBSan);
//   - after a successful open every entry in [first_index, last_index]
//     re-reads and re-validates;
//   - recovery is idempotent: a second open sees the same log;
//   - the recovered WAL accepts a new entry that survives a crash;
//   - the snapshot reader over the same bytes never misbehaves, and a file
//     that verifies also loads.
// Built and run by run_fuzz.sh (see docs/storage.md, "Fuzzing").
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>

#include "storage/fault_file_system.h"
#include "storage/snapshot_store.h"
#include "storage/wal.h"
#include "storage/wal_format.h"

using namespace raftkv;
using namespace raftkv::storage;

namespace {

void decode_all_records(std::string_view buf) {
  // Bounded: each step advances by at least one 16-byte record.
  for (uint64_t off = 0; off < buf.size();) {
    RecordView r;
    std::string why;
    if (decode_record(buf, off, &r, &why) != DecodeOutcome::kRecord) return;
    switch (r.type) {
      case RecordType::kEntry:
        (void)decode_entry(r.payload);
        break;
      case RecordType::kHardState:
        (void)decode_hard_state(r.payload);
        break;
      case RecordType::kSnapshotMarker:
        (void)decode_marker(r.payload);
        break;
      case RecordType::kSegmentHeader:
        (void)decode_segment_header(r.payload);
        break;
    }
    off += r.size_bytes;
  }
}

void require(bool cond, const char* what) {
  if (!cond) {
    std::fprintf(stderr, "wal_fuzz property violated: %s\n", what);
    std::abort();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string_view input(reinterpret_cast<const char*>(data), size);
  const bool two = (input[0] & 1) != 0;
  std::string_view body = input.substr(1);
  std::string first(body), second;
  if (two) {
    if (body.size() < 2) return 0;
    const uint64_t split = std::min<uint64_t>(
        (static_cast<uint8_t>(body[0]) | (static_cast<uint8_t>(body[1]) << 8)) * 8ull,
        body.size() - 2);
    first = std::string(body.substr(2, split));
    second = std::string(body.substr(2 + split));
  }
  decode_all_records(first);
  decode_all_records(second);
  (void)decode_snapshot_metadata(body);

  FaultFileSystem fs;
  {
    // The snapshot reader over the same bytes: verify() must reject or accept
    // without misbehaving, and agree with a streaming read.
    const std::string snap = join_path("/s", snapshot_file_name(raft::Index(1), raft::Term(1)));
    if (!fs.put_file(snap, std::string(body)).is_ok()) return 0;
    Result<std::unique_ptr<SnapshotStore>> store = SnapshotStore::open(&fs, "/s");
    require(store.is_ok(), "snapshot store did not open");
    const bool verified = (*store)->verify(snap).is_ok();
    Result<raft::Snapshot> loaded = (*store)->load(snap);
    require(!verified || loaded.is_ok(), "a verified snapshot failed to load");
  }
  const std::string dir = "/w";
  if (!fs.put_file(join_path(dir, segment_file_name(0, raft::Index(1))), first).is_ok()) return 0;
  if (two && !fs.put_file(join_path(dir, segment_file_name(1, raft::Index(1))), second).is_ok()) {
    return 0;
  }
  WalOptions options;
  options.segment_bytes = 4096;
  Result<std::unique_ptr<Wal>> w = Wal::open(&fs, dir, options);
  if (!w) {
    require(w.status().code() == Code::kCorruption || w.status().code() == Code::kIOError,
            "open failed with an unexpected code");
    return 0;
  }
  Wal& wal = **w;
  const raft::Index first_index = wal.first_index(), last_index = wal.last_index();
  for (raft::Index i = first_index; i <= last_index; ++i) {
    require(wal.read_entry(i).is_ok(), "a recovered entry does not re-read");
  }
  w->reset();
  Result<std::unique_ptr<Wal>> again = Wal::open(&fs, dir, options);
  require(again.is_ok(), "a recovered WAL does not open again");
  require((*again)->first_index() == first_index && (*again)->last_index() == last_index,
          "recovery is not idempotent");
  raft::Entry e;
  e.index = last_index + 1;
  Result<raft::Term> last_term = (*again)->term(last_index);
  require(last_term.is_ok(), "the last index has no term");
  e.term = *last_term;
  e.data = "after recovery";
  require((*again)->save(nullptr, std::span<const raft::Entry>(&e, 1)).is_ok(),
          "append after recovery failed");
  again->reset();
  fs.crash();
  Result<std::unique_ptr<Wal>> third = Wal::open(&fs, dir, options);
  require(third.is_ok(), "open after append and crash failed");
  require((*third)->last_index() == last_index + 1, "the appended entry was lost");
  return 0;
}
