// wal_kill_writer DIR: appends batches to the WAL in DIR on the real disk,
// printing "ack N" after each save() returns (N = last durable index), until
// killed. Every entry's payload is a function of its index, so a checker can
// verify what survived. Every 64 batches it compacts the log up to 200
// entries behind the tail, so segment release is exercised under SIGKILL too.
// Exit codes: 2 when the WAL cannot be opened (corruption), 3 on a save error.
#include <cstdio>
#include <string>

#include "storage/file_system.h"
#include "storage/wal.h"

using raftkv::raft::Entry;
using raftkv::raft::HardState;
using raftkv::raft::Index;
using raftkv::raft::NodeId;
using raftkv::raft::Term;
namespace storage = raftkv::storage;

namespace {
std::string payload(uint64_t index) {
  std::string s = "entry-" + std::to_string(index) + "-";
  while (s.size() < 100) s.push_back(static_cast<char>('a' + (index + s.size()) % 26));
  return s;
}
}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: wal_kill_writer DIR\n");
    return 1;
  }
  auto fs = storage::make_posix_file_system();
  storage::WalOptions options;
  options.segment_bytes = 256 << 10;
  auto wal = storage::Wal::open(fs.get(), argv[1], options);
  if (!wal) {
    std::fprintf(stderr, "%s\n", wal.status().to_string().c_str());
    return 2;
  }
  storage::Wal& w = **wal;
  std::printf("start %llu\n", static_cast<unsigned long long>(w.last_index().value()));
  std::fflush(stdout);
  // Bounded: the test kills us long before this many batches.
  for (uint64_t batch = 0; batch < 10'000'000; ++batch) {
    const uint64_t n = 1 + (batch * 7) % 16;
    std::vector<Entry> entries;
    for (uint64_t k = 0; k < n; ++k) {
      Entry e;
      e.index = w.last_index() + 1 + k;
      e.term = Term(1);
      e.data = payload(e.index.value());
      entries.push_back(std::move(e));
    }
    HardState hs{Term(1), NodeId(1), w.last_index()};
    storage::SnapshotMarker marker{w.last_index() - 200, Term(1)};
    const bool compact = batch % 64 == 63 && w.last_index().value() > 200 + w.base().index.value();
    raftkv::Status s = w.save(&hs, entries, compact ? &marker : nullptr);
    if (!s) {
      std::fprintf(stderr, "%s\n", s.to_string().c_str());
      return 3;
    }
    std::printf("ack %llu\n", static_cast<unsigned long long>(w.last_index().value()));
    std::fflush(stdout);
  }
  return 0;
}
