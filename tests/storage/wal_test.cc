// The write-ahead log: record round trips, group commit, recovery of torn
// tails at every byte, corruption detection, crash semantics, follower
// truncation, segment rollover/release and the failure policy.
#include "storage/wal.h"

#include <gtest/gtest.h>

#include <random>

#include "storage/fault_file_system.h"
#include "test_util.h"

namespace raftkv::storage {
namespace {

using raft::Entry;
using raft::HardState;
using raft::Index;
using raft::NodeId;
using raft::Term;
using testing::make_entries;
using testing::make_entry;

constexpr const char* kDir = "/data/wal";

WalOptions small_segments(uint64_t bytes = 64 << 10) {
  WalOptions o;
  o.segment_bytes = bytes;
  return o;
}

std::unique_ptr<Wal> open_ok(FileSystem* fs, WalOptions o = small_segments(),
                             WalRecoveryReport* report = nullptr) {
  Result<std::unique_ptr<Wal>> w = Wal::open(fs, kDir, o, report);
  EXPECT_TRUE(w.is_ok()) << w.status().to_string();
  return w.is_ok() ? std::move(*w) : nullptr;
}

// Every entry in [first, last] reads back equal to what make_entry built at `term_of(i)`.
template <typename TermOf>
void expect_log(Wal* w, uint64_t first, uint64_t last, TermOf term_of, size_t data_bytes = 40) {
  ASSERT_EQ(w->first_index(), Index(first));
  ASSERT_EQ(w->last_index(), Index(last));
  for (uint64_t i = first; i <= last; ++i) {
    Result<Entry> e = w->read_entry(Index(i));
    ASSERT_TRUE(e.is_ok()) << i << ": " << e.status().to_string();
    EXPECT_EQ(*e, make_entry(i, term_of(i), data_bytes)) << "entry " << i;
    EXPECT_EQ(*w->term(Index(i)), Term(term_of(i)));
  }
}

std::string only_segment(Wal* w) {
  EXPECT_EQ(w->segment_paths().size(), 1u);
  return w->segment_paths().back();
}

TEST(Wal, EmptyDirectoryOpensAnEmptyLog) {
  FaultFileSystem fs;
  auto w = open_ok(&fs);
  EXPECT_EQ(w->first_index(), Index(1));
  EXPECT_EQ(w->last_index(), Index(0));
  EXPECT_TRUE(w->hard_state().empty());
  EXPECT_EQ(w->segment_paths().size(), 1u);
  // The first segment's directory entry is durable at once.
  EXPECT_TRUE(fs.durable_contents(w->segment_paths()[0]).is_ok());
}

TEST(Wal, EveryRecordTypeRoundTripsThroughRecovery) {
  FaultFileSystem fs;
  HardState hs{Term(3), NodeId(2), Index(4)};
  {
    auto w = open_ok(&fs);
    ASSERT_OK(w->save(&hs, make_entries(1, 5, 3)));
    SnapshotMarker m{Index(2), Term(3)};
    ASSERT_OK(w->save(nullptr, {}, &m));
  }
  fs.crash();
  WalRecoveryReport report;
  auto w = open_ok(&fs, small_segments(), &report);
  EXPECT_EQ(w->hard_state(), hs);
  EXPECT_EQ(w->base(), (SnapshotMarker{Index(2), Term(3)}));
  expect_log(w.get(), 3, 5, [](uint64_t) { return 3; });
  EXPECT_EQ(report.truncated_bytes, 0u);
  EXPECT_EQ(report.records, 1u + 5 + 1 + 1);  // header, entries, hard state, marker
  Result<Entry> compacted = w->read_entry(Index(2));
  EXPECT_EQ(compacted.status().code(), Code::kOutOfRange);
  EXPECT_EQ(w->read_entry(Index(6)).status().code(), Code::kUnavailable);
}

TEST(Wal, RecordCodecsRoundTripAndRejectBadSizes) {
  std::string buf;
  Entry e = make_entry(7, 2, 100);
  e.type = raft::EntryType::kConfChange;
  append_entry_record(&buf, e, 9, false);
  append_hard_state_record(&buf, HardState{Term(1), NodeId(5), Index(6)}, 9, false);
  append_marker_record(&buf, SnapshotMarker{Index(3), Term(1)}, 9, false);
  append_segment_header_record(&buf, SegmentHeader{1, 4, Index(8)}, 9, true);
  ASSERT_EQ(buf.size() % 8, 0u);
  RecordView r;
  std::string why;
  uint64_t off = 0;
  ASSERT_EQ(decode_record(buf, off, &r, &why), DecodeOutcome::kRecord) << why;
  EXPECT_EQ(*decode_entry(r.payload), e);
  EXPECT_EQ(r.batch, 9u);
  EXPECT_FALSE(r.batch_end());
  off += r.size_bytes;
  ASSERT_EQ(decode_record(buf, off, &r, &why), DecodeOutcome::kRecord);
  EXPECT_EQ(*decode_hard_state(r.payload), (HardState{Term(1), NodeId(5), Index(6)}));
  off += r.size_bytes;
  ASSERT_EQ(decode_record(buf, off, &r, &why), DecodeOutcome::kRecord);
  EXPECT_EQ(*decode_marker(r.payload), (SnapshotMarker{Index(3), Term(1)}));
  off += r.size_bytes;
  ASSERT_EQ(decode_record(buf, off, &r, &why), DecodeOutcome::kRecord);
  EXPECT_EQ(*decode_segment_header(r.payload), (SegmentHeader{1, 4, Index(8)}));
  EXPECT_TRUE(r.batch_end());
  EXPECT_EQ(off + r.size_bytes, buf.size());
  EXPECT_EQ(decode_hard_state("short").status().code(), Code::kCorruption);
  EXPECT_EQ(decode_marker(std::string(17, 'x')).status().code(), Code::kCorruption);
  EXPECT_EQ(decode_entry(std::string(5, 'x')).status().code(), Code::kCorruption);
  EXPECT_EQ(decode_record(std::string(16, '\0'), 0, &r, &why), DecodeOutcome::kZero);
  EXPECT_EQ(decode_record(buf.substr(0, 20), 0, &r, &why), DecodeOutcome::kTruncated);
}

TEST(Wal, SegmentFileNamesRoundTrip) {
  std::string n = segment_file_name(3, Index(1234));
  EXPECT_EQ(n, "0000000000000003-00000000000004d2.wal");
  uint64_t seq;
  Index first;
  ASSERT_TRUE(parse_segment_file_name(n, &seq, &first));
  EXPECT_EQ(seq, 3u);
  EXPECT_EQ(first, Index(1234));
  EXPECT_FALSE(parse_segment_file_name("000000000000000g-00000000000004d2.wal", &seq, &first));
  EXPECT_FALSE(parse_segment_file_name("snap.tmp", &seq, &first));
}

TEST(Wal, GroupCommitIsOneWriteAndOneFdatasync) {
  FaultFileSystem fs;
  auto w = open_ok(&fs, small_segments(1 << 20));
  HardState hs{Term(1), NodeId(1), Index(0)};
  const uint64_t writes = fs.write_calls(), syncs = fs.sync_calls();
  ASSERT_OK(w->save(&hs, make_entries(1, 64, 1)));
  EXPECT_EQ(fs.write_calls() - writes, 1u);
  EXPECT_EQ(fs.sync_calls() - syncs, 1u);
  EXPECT_EQ(w->last_index(), Index(64));
}

TEST(Wal, ZerosAreWrittenAMebibyteAheadOfTheRecords) {
  // A write into a preallocated (unwritten) extent makes fdatasync write
  // metadata too; the WAL writes zeros ahead so most saves land on blocks
  // written before (wal.cc, kZeroAheadBytes).
  constexpr uint64_t kMiB = 1 << 20;
  FaultFileSystem fs;
  const uint64_t at_start = fs.bytes_written();
  auto w = open_ok(&fs, small_segments(4 * kMiB));
  const uint64_t after_open = fs.bytes_written();
  EXPECT_GE(after_open - at_start, kMiB);  // the segment header, then zeros
  // Saves within that first mebibyte write their records only.
  HardState hs{Term(1), NodeId(1), Index(0)};
  ASSERT_OK(w->save(&hs, make_entries(1, 10, 1)));
  const uint64_t one_save = fs.bytes_written() - after_open;
  EXPECT_LT(one_save, 4096u);
  // Enough saves to cross it: one of them writes the next mebibyte of zeros.
  uint64_t next = 11;
  uint64_t largest = 0;
  for (int i = 0; i < 2000; ++i) {  // 800 bytes each
    const uint64_t before = fs.bytes_written();
    ASSERT_OK(w->save(nullptr, make_entries(next, next + 9, 1)));
    next += 10;
    largest = std::max(largest, fs.bytes_written() - before);
  }
  EXPECT_GE(largest, kMiB);
  EXPECT_LE(largest, kMiB + 4096);
  // The zeros read back as unwritten space: the whole log recovers.
  w.reset();
  auto again = open_ok(&fs, small_segments(4 * kMiB));
  ASSERT_NE(again, nullptr);
  EXPECT_EQ(again->last_index(), Index(next - 1));
}

TEST(Wal, SaveIsDurableWhenItReturns) {
  FaultFileSystem fs;
  auto w = open_ok(&fs);
  ASSERT_OK(w->save(nullptr, make_entries(1, 3, 1)));
  fs.crash();  // Drops everything not synced.
  auto r = open_ok(&fs);
  expect_log(r.get(), 1, 3, [](uint64_t) { return 1; });
}

// Builds a WAL of `batches` batches of 2 entries each (all synced) and returns
// the durable bytes of its single segment plus each batch's end offset.
struct BuiltLog {
  std::string path;
  std::string bytes;
  std::vector<uint64_t> batch_end;  ///< batch_end[k]: offset after batch k (k from 0).
};

BuiltLog build_log(int batches) {
  FaultFileSystem fs;
  auto w = open_ok(&fs);
  BuiltLog out;
  out.path = only_segment(w.get());
  for (int b = 0; b < batches; ++b) {
    HardState hs{Term(1), NodeId(1), Index(2 * b)};
    EXPECT_TRUE(w->save(&hs, make_entries(2 * b + 1, 2 * b + 2, 1)).is_ok());
  }
  out.bytes = *fs.durable_contents(out.path);
  // Batch ends, skipping the segment header's own batch.
  for (uint64_t off = 0;;) {
    RecordView r;
    std::string why;
    if (decode_record(out.bytes, off, &r, &why) != DecodeOutcome::kRecord) break;
    off += r.size_bytes;
    if (r.batch_end() && r.type != RecordType::kSegmentHeader) out.batch_end.push_back(off);
  }
  EXPECT_EQ(out.batch_end.size(), static_cast<size_t>(batches));
  return out;
}

// The rule: cutting the last segment at any byte recovers exactly the batches
// that lie wholly before the cut (a prefix), whether the lost bytes read back
// as the preallocated zeros or the file is physically shorter.
TEST(WalRecovery, TruncationAtEveryByteOfTheLastRecordsRecoversACompleteBatchPrefix) {
  const int kBatches = 5;
  BuiltLog log = build_log(kBatches);
  const uint64_t from = log.batch_end[kBatches - 4];  // The last three batches.
  const uint64_t to = log.batch_end[kBatches - 1];
  int cases = 0;
  for (uint64_t cut = from; cut <= to; ++cut) {
    for (bool zero_tail : {true, false}) {
      FaultFileSystem fs;
      std::string bytes = log.bytes.substr(0, cut);
      if (zero_tail) bytes.resize(log.bytes.size(), '\0');
      ASSERT_OK(fs.put_file(log.path, bytes));
      WalRecoveryReport report;
      auto w = open_ok(&fs, small_segments(), &report);
      ASSERT_NE(w, nullptr) << "cut at " << cut;
      int complete = 0;
      // A batch survives if every byte of it that is not zero survived (its
      // trailing zeros read back the same from the zero-filled tail).
      auto needed = [&](int k) {
        uint64_t e = log.batch_end[k];
        while (e > 0 && log.bytes[e - 1] == 0) --e;
        return zero_tail ? e : log.batch_end[k];
      };
      while (complete < kBatches && needed(complete) <= cut) ++complete;
      ASSERT_EQ(w->last_index(), Index(2 * complete)) << "cut at " << cut;
      EXPECT_EQ(w->hard_state().commit, Index(2 * (complete - 1))) << "cut at " << cut;
      for (int i = 1; i <= 2 * complete; ++i) {
        ASSERT_EQ(*w->read_entry(Index(i)), make_entry(i, 1)) << "cut at " << cut;
      }
      // The node can go on writing after the repaired tail, and that survives.
      HardState hs{Term(2), NodeId(1), Index(0)};
      ASSERT_OK(w->save(&hs, make_entries(2 * complete + 1, 2 * complete + 1, 2)));
      w.reset();
      fs.crash();
      auto again = open_ok(&fs);
      ASSERT_EQ(again->last_index(), Index(2 * complete + 1)) << "cut at " << cut;
      EXPECT_EQ(again->hard_state(), hs);
      ++cases;
    }
  }
  EXPECT_GT(cases, 300);
}

// The rule: a flipped bit anywhere in a record that is not the last one is
// corruption, reported with the file and the offset of the damaged record.
TEST(WalRecovery, BitFlipInAnyNonFinalRecordIsReportedWithFileAndOffset) {
  BuiltLog log = build_log(3);
  const uint64_t data_end = log.batch_end.back();
  // Offsets of every record, to name the expected one.
  std::vector<uint64_t> starts;
  for (uint64_t off = 0; off < data_end;) {
    RecordView r;
    std::string why;
    ASSERT_EQ(decode_record(log.bytes, off, &r, &why), DecodeOutcome::kRecord);
    starts.push_back(off);
    off += r.size_bytes;
  }
  const uint64_t last_record = starts.back();
  int cases = 0;
  for (uint64_t byte = 0; byte < last_record; ++byte) {
    const int bit = static_cast<int>(byte % 8);
    FaultFileSystem fs;
    ASSERT_OK(fs.put_file(log.path, log.bytes));
    ASSERT_OK(fs.flip_bit(log.path, byte, bit));
    Result<std::unique_ptr<Wal>> w = Wal::open(&fs, kDir, small_segments());
    ASSERT_FALSE(w.is_ok()) << "flip of byte " << byte << " went unnoticed";
    EXPECT_EQ(w.status().code(), Code::kCorruption);
    const uint64_t record = *(std::upper_bound(starts.begin(), starts.end(), byte) - 1);
    const std::string msg = w.status().message();
    EXPECT_NE(msg.find(log.path), std::string::npos) << msg;
    EXPECT_NE(msg.find("offset " + std::to_string(record)), std::string::npos)
        << "byte " << byte << ": " << msg;
    EXPECT_NE(msg.find("remove its data directory"), std::string::npos) << msg;
    ++cases;
  }
  EXPECT_GT(cases, 200);
}

TEST(WalRecovery, ChecksumMismatchMessageSaysExpectedAndFound) {
  BuiltLog log = build_log(2);
  FaultFileSystem fs;
  ASSERT_OK(fs.put_file(log.path, log.bytes));
  ASSERT_OK(fs.flip_bit(log.path, 40, 3));  // Inside the first entry's payload.
  Result<std::unique_ptr<Wal>> w = Wal::open(&fs, kDir, small_segments());
  ASSERT_EQ(w.status().code(), Code::kCorruption);
  EXPECT_NE(w.status().message().find("expected crc32c 0x"), std::string::npos)
      << w.status().message();
  EXPECT_NE(w.status().message().find("found 0x"), std::string::npos);
}

// Power loss with the OS having written the pages of the last write out of
// order: a sector in the middle never reached the disk. That write was never
// acknowledged, so recovery drops it and starts.
TEST(WalRecovery, UnfinishedLastWriteWithAMissingMiddleSectorIsTruncated) {
  FaultFileSystem fs;
  std::string path;
  {
    auto w = open_ok(&fs);
    path = only_segment(w.get());
    ASSERT_OK(w->save(nullptr, make_entries(1, 2, 1)));
    fs.fail_syncs(FaultFileSystem::Failure::kIO);
    EXPECT_FALSE(w->save(nullptr, make_entries(3, 40, 1, 100)).is_ok());
  }
  fs.crash(FaultFileSystem::CrashMode::kKeepUnsynced);
  fs.fail_syncs(FaultFileSystem::Failure::kNone);
  std::string bytes = *fs.contents(path);
  // Zero the second whole sector of the unfinished write.
  uint64_t end2 = 0;
  for (uint64_t off = 0;;) {
    RecordView r;
    std::string why;
    ASSERT_EQ(decode_record(bytes, off, &r, &why), DecodeOutcome::kRecord);
    off += r.size_bytes;
    if (r.batch_end() && r.type == RecordType::kEntry) {
      end2 = off;
      break;
    }
  }
  const uint64_t sector = (end2 / 512 + 2) * 512;
  std::fill(bytes.begin() + static_cast<ptrdiff_t>(sector),
            bytes.begin() + static_cast<ptrdiff_t>(sector + 512), '\0');
  ASSERT_OK(fs.put_file(path, bytes));
  WalRecoveryReport report;
  auto w = open_ok(&fs, small_segments(), &report);
  expect_log(w.get(), 1, 2, [](uint64_t) { return 1; });
  EXPECT_GT(report.truncated_bytes, 0u);
  EXPECT_EQ(report.repaired_segment, path);
}

// The rule: whatever a crash drops, no record whose save() returned OK is lost,
// and what is recovered is a prefix of what was written.
TEST(WalCrash, DroppingUnsyncedWritesNeverLosesAnAcknowledgedRecord) {
  for (int fail_after = 0; fail_after < 12; ++fail_after) {
    for (auto mode :
         {FaultFileSystem::CrashMode::kDropUnsynced, FaultFileSystem::CrashMode::kKeepUnsyncedData,
          FaultFileSystem::CrashMode::kKeepUnsynced}) {
      FaultFileSystem fs;
      uint64_t acked = 0;
      {
        auto w = open_ok(&fs, small_segments(4096));  // Forces segment cuts too.
        fs.fail_syncs(FaultFileSystem::Failure::kIO, fail_after);
        for (uint64_t b = 0; b < 20; ++b) {
          HardState hs{Term(1), NodeId(1), Index(acked)};
          if (!w->save(&hs, make_entries(b * 5 + 1, b * 5 + 5, 1, 120)).is_ok()) break;
          acked = b * 5 + 5;
        }
      }
      fs.crash(mode);
      fs.fail_syncs(FaultFileSystem::Failure::kNone);
      auto w = open_ok(&fs, small_segments(4096));
      ASSERT_NE(w, nullptr);
      ASSERT_GE(w->last_index(), Index(acked)) << "fail_after " << fail_after;
      if (mode == FaultFileSystem::CrashMode::kDropUnsynced) {
        EXPECT_EQ(w->last_index(), Index(acked));
      }
      for (uint64_t i = 1; i <= w->last_index().value(); ++i) {
        ASSERT_EQ(*w->read_entry(Index(i)), make_entry(i, 1, 120));
      }
    }
  }
}

// The simulator's crash: a seeded part of the un-synced writes survives,
// the last one torn. Acknowledged records always survive, and what is
// recovered is a valid prefix of what was written.
TEST(WalCrash, PartialWriteBackCrashesKeepAcknowledgedRecordsAndAPrefix) {
  for (uint32_t seed = 1; seed <= 200; ++seed) {
    std::mt19937_64 rng(seed);
    auto choose = [&](uint64_t n) { return std::uniform_int_distribution<uint64_t>(0, n)(rng); };
    FaultFileSystem fs;
    uint64_t acked = 0, written = 0;
    {
      auto w = open_ok(&fs, small_segments(4096));
      const uint64_t ok_syncs = choose(12);
      fs.fail_syncs(FaultFileSystem::Failure::kIO, ok_syncs);
      for (uint64_t b = 0; b < 20; ++b) {
        written = b * 3 + 3;
        if (!w->save(nullptr, make_entries(b * 3 + 1, b * 3 + 3, 1, 90)).is_ok()) break;
        acked = written;
      }
    }
    fs.crash_partial(choose);
    fs.fail_syncs(FaultFileSystem::Failure::kNone);
    auto w = open_ok(&fs, small_segments(4096));
    ASSERT_NE(w, nullptr) << "seed " << seed;
    ASSERT_GE(w->last_index(), Index(acked)) << "seed " << seed;
    ASSERT_LE(w->last_index(), Index(written)) << "seed " << seed;
    for (uint64_t i = 1; i <= w->last_index().value(); ++i) {
      ASSERT_EQ(*w->read_entry(Index(i)), make_entry(i, 1, 90)) << "seed " << seed;
    }
  }
}

TEST(WalCrash, TornLastWriteAtEveryByteKeepsAcknowledgedRecords) {
  FaultFileSystem base_fs;
  std::string path;
  uint64_t last_write_bytes = 0;
  {
    auto w = open_ok(&base_fs);
    path = only_segment(w.get());
    ASSERT_OK(w->save(nullptr, make_entries(1, 4, 1)));
  }
  // Measure the size of the torn write once.
  {
    std::string b;
    append_entry_record(&b, make_entry(5, 1), 0, false);
    append_entry_record(&b, make_entry(6, 1), 0, true);
    last_write_bytes = b.size();
  }
  for (uint64_t keep = 0; keep <= last_write_bytes; ++keep) {
    FaultFileSystem fs;
    ASSERT_OK(fs.put_file(path, *base_fs.durable_contents(path)));
    auto w = open_ok(&fs);
    fs.fail_syncs(FaultFileSystem::Failure::kIO);
    EXPECT_FALSE(w->save(nullptr, make_entries(5, 6, 1)).is_ok());
    ASSERT_OK(fs.tear_last_write(path, keep));
    w.reset();
    fs.crash(FaultFileSystem::CrashMode::kKeepUnsynced);
    fs.fail_syncs(FaultFileSystem::Failure::kNone);
    auto r = open_ok(&fs);
    ASSERT_NE(r, nullptr) << "keep " << keep;
    // The final record's zero padding may be lost without losing the record.
    const uint64_t padding = record_bytes(57) - (kRecordHeaderBytes + 57);
    const uint64_t expect_last = keep >= last_write_bytes - padding ? 6 : 4;
    expect_log(r.get(), 1, expect_last, [](uint64_t) { return 1; });
  }
}

// A follower's conflicting suffix is replaced (Raft §5.3), and after a crash
// the log recovers with the replacement, not the old entries.
TEST(Wal, FollowerTruncationThenCrashRecoversTheReplacedLog) {
  FaultFileSystem fs;
  {
    auto w = open_ok(&fs);
    ASSERT_OK(w->save(nullptr, make_entries(1, 10, 1)));
    ASSERT_OK(w->save(nullptr, make_entries(6, 8, 2)));
    EXPECT_EQ(w->last_index(), Index(8));
    EXPECT_EQ(*w->term(Index(6)), Term(2));
    EXPECT_EQ(*w->term(Index(5)), Term(1));
    EXPECT_EQ(w->read_entry(Index(9)).status().code(), Code::kUnavailable);
    ASSERT_OK(w->save(nullptr, make_entries(9, 9, 3)));
  }
  fs.crash();
  auto w = open_ok(&fs);
  expect_log(w.get(), 1, 9, [](uint64_t i) { return i <= 5 ? 1 : i <= 8 ? 2 : 3; });
}

TEST(Wal, ReplacingTheWholeLogFromItsFirstIndexRecovers) {
  FaultFileSystem fs;
  {
    auto w = open_ok(&fs);
    ASSERT_OK(w->save(nullptr, make_entries(1, 5, 1)));
    ASSERT_OK(w->save(nullptr, make_entries(1, 2, 2)));
  }
  fs.crash();
  auto w = open_ok(&fs);
  expect_log(w.get(), 1, 2, [](uint64_t) { return 2; });
}

// A snapshot installed from the leader whose last entry is not in the log
// discards the whole log (§5.3); one that matches keeps the suffix.
TEST(Wal, SnapshotMarkerDiscardsOrKeepsTheLogByTheInstallSnapshotRule) {
  FaultFileSystem fs;
  {
    auto w = open_ok(&fs);
    ASSERT_OK(w->save(nullptr, make_entries(1, 10, 1)));
    SnapshotMarker keep{Index(4), Term(1)};
    ASSERT_OK(w->save(nullptr, {}, &keep));
    EXPECT_EQ(w->first_index(), Index(5));
    EXPECT_EQ(w->last_index(), Index(10));
    SnapshotMarker conflicting{Index(7), Term(5)};
    ASSERT_OK(w->save(nullptr, make_entries(8, 9, 5), &conflicting));
    EXPECT_EQ(w->first_index(), Index(8));
    EXPECT_EQ(w->last_index(), Index(9));
    EXPECT_EQ(*w->term(Index(7)), Term(5));
  }
  fs.crash();
  auto w = open_ok(&fs);
  EXPECT_EQ(w->base(), (SnapshotMarker{Index(7), Term(5)}));
  expect_log(w.get(), 8, 9, [](uint64_t) { return 5; });
}

TEST(Wal, SegmentRolloverAndReleaseBelowTheSnapshot) {
  FaultFileSystem fs;
  HardState hs{Term(4), NodeId(3), Index(0)};
  {
    auto w = open_ok(&fs, small_segments(4096));
    for (uint64_t b = 0; b < 30; ++b) {
      hs.commit = Index(b * 4);
      ASSERT_OK(w->save(&hs, make_entries(b * 4 + 1, b * 4 + 4, 4, 100)));
    }
    EXPECT_GE(w->segment_paths().size(), 4u);
    const uint64_t before = w->segment_paths().size();
    SnapshotMarker m{Index(60), Term(4)};
    ASSERT_OK(w->save(nullptr, {}, &m));
    EXPECT_LT(w->segment_paths().size(), before);
    EXPECT_GE(w->segment_paths().size(), 2u);
    // The released files are gone, durably.
    Result<std::vector<std::string>> names = fs.list(kDir);
    EXPECT_EQ(names->size(), w->segment_paths().size());
  }
  fs.crash();
  auto w = open_ok(&fs, small_segments(4096));
  EXPECT_EQ(w->hard_state(), hs);
  EXPECT_EQ(w->base(), (SnapshotMarker{Index(60), Term(4)}));
  expect_log(
      w.get(), 61, 120, [](uint64_t) { return 4; }, 100);
  // Writing goes on in the last segment and rolls over again.
  ASSERT_OK(w->save(nullptr, make_entries(121, 160, 4, 100)));
  w.reset();
  fs.crash();
  auto again = open_ok(&fs, small_segments(4096));
  EXPECT_EQ(again->last_index(), Index(160));
  EXPECT_EQ(again->hard_state(), hs);
}

TEST(Wal, ABatchLargerThanASegmentGetsASegmentOfItsOwn) {
  FaultFileSystem fs;
  {
    auto w = open_ok(&fs, small_segments(4096));
    ASSERT_OK(w->save(nullptr, make_entries(1, 3, 1, 5000)));
    ASSERT_OK(w->save(nullptr, make_entries(4, 4, 1, 10)));
  }
  fs.crash();
  auto w = open_ok(&fs, small_segments(4096));
  EXPECT_EQ(w->last_index(), Index(4));
  EXPECT_EQ(*w->read_entry(Index(2)), make_entry(2, 1, 5000));
}

TEST(WalRecovery, AMissingMiddleSegmentIsCorruption) {
  FaultFileSystem fs;
  std::vector<std::string> paths;
  {
    auto w = open_ok(&fs, small_segments(4096));
    for (uint64_t b = 0; b < 10; ++b)
      ASSERT_OK(w->save(nullptr, make_entries(b * 4 + 1, b * 4 + 4, 1, 200)));
    paths = w->segment_paths();
  }
  ASSERT_GE(paths.size(), 3u);
  ASSERT_OK(fs.remove(paths[1]));
  Result<std::unique_ptr<Wal>> w = Wal::open(&fs, kDir, small_segments(4096));
  ASSERT_EQ(w.status().code(), Code::kCorruption);
  EXPECT_NE(w.status().message().find("is missing"), std::string::npos) << w.status().message();
}

// Found by wal_fuzz: a last segment with no header at all (its cut never
// reached the disk) is removed, and the log goes on from the previous one.
TEST(WalRecovery, AHeaderlessLastSegmentIsRemovedAndWritingGoesOn) {
  for (bool only_segment : {true, false}) {
    FaultFileSystem fs;
    uint64_t last = 0;
    if (!only_segment) {
      auto w = open_ok(&fs);
      ASSERT_OK(w->save(nullptr, make_entries(1, 3, 1)));
      last = 3;
    }
    const std::string stray = join_path(kDir, segment_file_name(only_segment ? 0 : 1, Index(4)));
    ASSERT_OK(fs.put_file(stray, std::string(4096, '\0')));
    WalRecoveryReport report;
    auto w = open_ok(&fs, small_segments(), &report);
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(report.repaired_segment, stray);
    EXPECT_EQ(w->last_index(), Index(last));
    ASSERT_OK(w->save(nullptr, make_entries(last + 1, last + 1, 1)));
    w.reset();
    fs.crash();
    auto again = open_ok(&fs);
    ASSERT_NE(again, nullptr);
    EXPECT_EQ(again->last_index(), Index(last + 1));
  }
}

TEST(WalRecovery, UnsupportedFormatVersionIsRefused) {
  FaultFileSystem fs;
  std::string seg;
  append_segment_header_record(&seg, SegmentHeader{7, 0, Index(1)}, 1, true);
  seg.resize(8192, '\0');
  ASSERT_OK(fs.put_file(join_path(kDir, segment_file_name(0, Index(1))), seg));
  Result<std::unique_ptr<Wal>> w = Wal::open(&fs, kDir, small_segments());
  ASSERT_EQ(w.status().code(), Code::kCorruption);
  EXPECT_NE(w.status().message().find("version 7"), std::string::npos) << w.status().message();
}

// A crash while cutting a new segment (file synced, directory not) loses the
// unacknowledged batch only.
TEST(WalCrash, CrashDuringSegmentCutKeepsTheAcknowledgedLog) {
  for (auto mode :
       {FaultFileSystem::CrashMode::kDropUnsynced, FaultFileSystem::CrashMode::kKeepUnsynced}) {
    // First learn which save cuts the second segment.
    uint64_t acked = 0;
    {
      FaultFileSystem probe;
      auto w = open_ok(&probe, small_segments(4096));
      for (uint64_t b = 0; w->segment_paths().size() == 1; ++b) {
        ASSERT_OK(w->save(nullptr, make_entries(b * 4 + 1, b * 4 + 4, 1, 200)));
        acked = b * 4 + 4;
      }
    }
    // Rebuild up to just before the cut, then fail the cut's directory sync.
    FaultFileSystem fresh;
    {
      auto w = open_ok(&fresh, small_segments(4096));
      uint64_t b = 0;
      for (; (b + 1) * 4 < acked; ++b)
        ASSERT_OK(w->save(nullptr, make_entries(b * 4 + 1, b * 4 + 4, 1, 200)));
      ASSERT_EQ(w->segment_paths().size(), 1u);
      fresh.fail_syncs(FaultFileSystem::Failure::kIO, 1);  // File sync ok, dir sync fails.
      EXPECT_FALSE(w->save(nullptr, make_entries(b * 4 + 1, b * 4 + 4, 1, 200)).is_ok());
      acked = b * 4;
    }
    fresh.crash(mode);
    fresh.fail_syncs(FaultFileSystem::Failure::kNone);
    auto w = open_ok(&fresh, small_segments(4096));
    ASSERT_NE(w, nullptr);
    EXPECT_EQ(w->last_index(),
              Index(mode == FaultFileSystem::CrashMode::kDropUnsynced ? acked : acked + 4));
    ASSERT_OK(w->save(nullptr,
                      make_entries(w->last_index().value() + 1, w->last_index().value() + 1, 1)));
  }
}

// Failure policy: an error on write or fdatasync fails the WAL for good.
TEST(WalFailure, NoSpaceOnWriteFailsEveryLaterCallAndAcknowledgesNothing) {
  FaultFileSystem fs;
  auto w = open_ok(&fs);
  ASSERT_OK(w->save(nullptr, make_entries(1, 2, 1)));
  fs.fail_writes(FaultFileSystem::Failure::kNoSpace);
  Status s = w->save(nullptr, make_entries(3, 4, 1));
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_NE(s.message().find("ENOSPC"), std::string::npos) << s.message();
  EXPECT_EQ(w->last_index(), Index(2));
  fs.fail_writes(FaultFileSystem::Failure::kNone);  // Space is back: still failed.
  Status again = w->save(nullptr, make_entries(3, 4, 1));
  EXPECT_EQ(again, s);
  EXPECT_EQ(w->failure(), s);
  w.reset();
  fs.crash();
  auto r = open_ok(&fs);
  EXPECT_EQ(r->last_index(), Index(2));
}

TEST(WalFailure, FsyncErrorIsNeverRetried) {
  FaultFileSystem fs;
  auto w = open_ok(&fs);
  fs.fail_syncs(FaultFileSystem::Failure::kIO);
  Status s = w->save(nullptr, make_entries(1, 2, 1));
  EXPECT_EQ(s.code(), Code::kIOError);
  EXPECT_NE(s.message().find("EIO"), std::string::npos) << s.message();
  EXPECT_EQ(w->last_index(), Index(0));  // Not acknowledged, not visible.
  fs.fail_syncs(FaultFileSystem::Failure::kNone);
  const uint64_t syncs = fs.sync_calls(), writes = fs.write_calls();
  HardState hs{Term(1), NodeId(1), Index(0)};
  EXPECT_FALSE(w->save(&hs, make_entries(1, 2, 1)).is_ok());
  EXPECT_EQ(fs.sync_calls(), syncs);  // No second fdatasync was attempted.
  EXPECT_EQ(fs.write_calls(), writes);
  EXPECT_TRUE(w->hard_state().empty());
}

}  // namespace
}  // namespace raftkv::storage
