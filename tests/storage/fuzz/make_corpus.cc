// Writes the seed corpus of wal_fuzz: real WAL segments produced by Wal over
// FaultFileSystem, zero tails stripped, in the fuzz input layout (wal_fuzz.cc).
//   usage: wal_fuzz_make_corpus OUT_DIR
// Built on demand: cmake --build build --target wal_fuzz_make_corpus
#include <cstdio>
#include <fstream>
#include <string>
#include <vector>

#include "storage/fault_file_system.h"
#include "storage/snapshot_store.h"
#include "storage/wal.h"

using namespace raftkv;
using namespace raftkv::storage;

namespace {

std::vector<raft::Entry> entries(uint64_t lo, uint64_t hi, uint64_t term, size_t bytes) {
  std::vector<raft::Entry> v;
  for (uint64_t i = lo; i <= hi; ++i) {
    raft::Entry e;
    e.index = raft::Index(i);
    e.term = raft::Term(term);
    e.type = i % 5 == 0 ? raft::EntryType::kConfChange : raft::EntryType::kNormal;
    e.data.assign(bytes, static_cast<char>('a' + i % 26));
    v.push_back(e);
  }
  return v;
}

std::string strip(std::string s) {
  while (!s.empty() && s.back() == 0) s.pop_back();
  return s;
}

void write(const std::string& dir, const std::string& name, const std::string& bytes) {
  std::ofstream(dir + "/" + name, std::ios::binary) << bytes;
}

bool must(Status s) {
  if (!s) std::fprintf(stderr, "%s\n", s.to_string().c_str());
  return s.is_ok();
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) return 1;
  const std::string out = argv[1];
  WalOptions small;
  small.segment_bytes = 4096;
  {
    FaultFileSystem fs;
    auto w = Wal::open(&fs, "/w", small).value();
    const std::string seg = w->segment_paths()[0];
    write(out, "header-only", std::string(1, '\0') + strip(*fs.contents(seg)));
    raft::HardState hs{raft::Term(2), raft::NodeId(1), raft::Index(3)};
    if (!must(w->save(&hs, entries(1, 4, 2, 30)))) return 2;
    if (!must(w->save(&hs, entries(5, 6, 2, 10)))) return 2;
    write(out, "entries-and-hard-state", std::string(1, '\0') + strip(*fs.contents(seg)));
    SnapshotMarker m{raft::Index(2), raft::Term(2)};
    if (!must(w->save(nullptr, entries(5, 7, 3, 20), &m))) return 2;
    const std::string full = strip(*fs.contents(seg));
    write(out, "marker-and-overwrite", std::string(1, '\0') + full);
    write(out, "torn-tail", std::string(1, '\0') + full.substr(0, full.size() - 13));
  }
  {
    FaultFileSystem fs;
    auto w = Wal::open(&fs, "/w", small).value();
    for (uint64_t b = 0; w->segment_paths().size() < 2; ++b) {
      raft::HardState hs{raft::Term(1), raft::NodeId(2), raft::Index(b)};
      if (!must(w->save(&hs, entries(b * 3 + 1, b * 3 + 3, 1, 200)))) return 2;
    }
    std::string s0 = *fs.contents(w->segment_paths()[0]);
    std::string s1 = strip(*fs.contents(w->segment_paths()[1]));
    const uint64_t split = s0.size() / 8;
    std::string input(1, '\1');
    input.push_back(static_cast<char>(split & 0xff));
    input.push_back(static_cast<char>(split >> 8));
    write(out, "two-segments", input + s0 + s1);
  }
  {
    // A small valid snapshot file, for the snapshot reader half of the target.
    FaultFileSystem fs;
    SnapshotStoreOptions so;
    so.chunk_bytes = 64;
    auto store = SnapshotStore::open(&fs, "/s", so).value();
    raft::Snapshot snap;
    snap.metadata.index = raft::Index(1);
    snap.metadata.term = raft::Term(1);
    snap.metadata.conf_state.voters = {raft::NodeId(1), raft::NodeId(2), raft::NodeId(3)};
    snap.data = std::string(150, 's');
    if (!must(store->save(snap))) return 2;
    write(out, "snapshot-file", std::string(1, '\0') + *fs.contents((*store->list())[0]));
  }
  return 0;
}
