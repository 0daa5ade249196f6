#include "storage/snapshot_store.h"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <cstring>

#include "base/check.h"
#include "base/crc32c.h"
#include "storage/wal_format.h"

namespace raftkv::storage {

using raft::Index;
using raft::NodeId;
using raft::SnapshotMetadata;
using raft::Term;

namespace {

constexpr char kMagic[8] = {'R', 'K', 'V', 'S', 'N', 'A', 'P', '1'};
constexpr uint32_t kVersion = 1;
constexpr uint32_t kMaxMetadataBytes = 16u << 20;
constexpr uint32_t kMaxChunkBytes = 64u << 20;
constexpr uint32_t kMaxIdsPerList = 1u << 16;
const char* kSnapshotAdvice =
    " No older snapshot can stand in for it (the WAL no longer holds the entries after any "
    "older one). To recover: stop this member, remove its data directory, and re-add it to "
    "the cluster as a new member.";

uint32_t chunk_crc(uint32_t n, std::string_view data) {
  std::string len;
  put_u32(&len, n);
  return crc32c_extend(crc32c(len), data.data(), data.size());
}

uint32_t end_crc(uint64_t total) {
  std::string b;
  put_u32(&b, 0);
  put_u64(&b, total);
  return crc32c(b);
}

void put_ids(std::string* out, const std::vector<NodeId>& ids) {
  put_u32(out, static_cast<uint32_t>(ids.size()));
  for (NodeId id : ids) put_u64(out, id.value());
}

}  // namespace

std::string snapshot_file_name(Index index, Term term) {
  char b[64];
  std::snprintf(b, sizeof b, "%016" PRIx64 "-%016" PRIx64 ".snap", index.value(), term.value());
  return b;
}

bool parse_snapshot_file_name(std::string_view name, Index* index, Term* term) {
  if (name.size() != 38 || name[16] != '-' || name.substr(33) != ".snap") return false;
  uint64_t i = 0, t = 0;
  if (!parse_hex_u64(name.substr(0, 16), &i) || !parse_hex_u64(name.substr(17, 16), &t)) {
    return false;
  }
  *index = Index(i);
  *term = Term(t);
  return true;
}

std::string encode_snapshot_metadata(const SnapshotMetadata& m) {
  std::string out;
  put_u64(&out, m.index.value());
  put_u64(&out, m.term.value());
  put_ids(&out, m.conf_state.voters);
  put_ids(&out, m.conf_state.learners);
  put_ids(&out, m.conf_state.voters_outgoing);
  put_ids(&out, m.conf_state.learners_next);
  out.push_back(m.conf_state.auto_leave ? 1 : 0);
  return out;
}

Result<SnapshotMetadata> decode_snapshot_metadata(std::string_view b) {
  SnapshotMetadata m;
  size_t pos = 0;
  auto need = [&](size_t n) { return b.size() - pos >= n; };
  if (!need(16)) return Status::corruption("snapshot metadata shorter than 16 bytes");
  m.index = Index(get_u64(b.data()));
  m.term = Term(get_u64(b.data() + 8));
  pos = 16;
  std::vector<NodeId>* lists[4] = {&m.conf_state.voters, &m.conf_state.learners,
                                   &m.conf_state.voters_outgoing, &m.conf_state.learners_next};
  for (std::vector<NodeId>* list : lists) {
    if (!need(4)) return Status::corruption("snapshot metadata: member list cut short");
    uint32_t n = get_u32(b.data() + pos);
    pos += 4;
    if (n > kMaxIdsPerList || !need(uint64_t{n} * 8)) {
      return Status::corruption("snapshot metadata: member list of " + std::to_string(n) +
                                " ids does not fit");
    }
    for (uint32_t k = 0; k < n; ++k, pos += 8) list->push_back(NodeId(get_u64(b.data() + pos)));
  }
  if (!need(1) || static_cast<uint8_t>(b[pos]) > 1) {
    return Status::corruption("snapshot metadata: auto_leave flag missing or not 0/1");
  }
  m.conf_state.auto_leave = b[pos] == 1;
  if (pos + 1 != b.size()) return Status::corruption("snapshot metadata: trailing bytes");
  return m;
}

// ---------------------------------------------------------------------------
// Writer.

SnapshotWriter::~SnapshotWriter() {
  if (!finished_ && store_ != nullptr) {
    file_.reset();
    (void)store_->fs_->remove(tmp_path_);  // Best effort: open() also removes *.tmp.
  }
}

Status SnapshotWriter::flush_chunk() {
  if (pending_.empty()) return Status::ok();
  std::string frame;
  const auto n = static_cast<uint32_t>(pending_.size());
  put_u32(&frame, n);
  put_u32(&frame, chunk_crc(n, pending_));
  frame += pending_;
  if (Status s = file_->pwrite(offset_, frame); !s) {
    failed_ = s;
    return s;
  }
  offset_ += frame.size();
  pending_.clear();
  if (offset_ - synced_offset_ >= kSyncEveryBytes) {
    if (Status s = file_->sync(); !s) {
      failed_ = s;
      return s;
    }
    synced_offset_ = offset_;
  }
  return Status::ok();
}

Status SnapshotWriter::append(std::string_view data) {
  RAFTKV_CHECK_MSG(!sealed_ && !finished_, "append after seal or finish");
  if (!failed_.is_ok()) return failed_;
  const uint64_t chunk = store_->options_.chunk_bytes;
  total_bytes_ += data.size();
  // Bounded by data.size() / chunk iterations.
  while (!data.empty()) {
    const size_t take = std::min<size_t>(data.size(), chunk - pending_.size());
    pending_.append(data.substr(0, take));
    data.remove_prefix(take);
    if (pending_.size() == chunk) RAFTKV_RETURN_IF_ERROR(flush_chunk());
  }
  return Status::ok();
}

Status SnapshotWriter::seal() {
  RAFTKV_CHECK_MSG(!sealed_ && !finished_, "seal after seal or finish");
  if (!failed_.is_ok()) return failed_;
  RAFTKV_RETURN_IF_ERROR(flush_chunk());
  std::string end;
  put_u32(&end, 0);
  put_u32(&end, end_crc(total_bytes_));
  put_u64(&end, total_bytes_);
  auto fail = [&](Status s) {
    failed_ = s;
    return s;
  };
  if (Status s = file_->pwrite(offset_, end); !s) return fail(s);
  if (Status s = file_->sync(); !s) return fail(s);
  file_.reset();
  sealed_ = true;
  return Status::ok();
}

Status SnapshotWriter::finish() {
  RAFTKV_CHECK_MSG(!finished_, "finish called twice");
  if (!failed_.is_ok()) return failed_;
  if (!sealed_) RAFTKV_RETURN_IF_ERROR(seal());
  FileSystem* fs = store_->fs_;
  if (Status s = fs->rename(tmp_path_, final_path_); !s) {
    failed_ = s;
    return s;
  }
  finished_ = true;  // The temp name is gone; nothing to clean up any more.
  if (Status s = fs->sync_dir(store_->dir_); !s) {
    failed_ = s;
    return s;
  }
  return store_->apply_retention();
}

// ---------------------------------------------------------------------------
// Reader.

Status SnapshotReader::corrupt(uint64_t offset, const std::string& what) const {
  char b[64];
  std::snprintf(b, sizeof b, " at offset %" PRIu64 ": ", offset);
  return Status::corruption("snapshot file " + path_ + b + what);
}

Result<bool> SnapshotReader::next_chunk(std::string* out) {
  out->clear();
  if (done_) return false;
  std::string head;
  RAFTKV_RETURN_IF_ERROR(file_->read(offset_, 8, &head));
  if (head.size() < 8) return corrupt(offset_, "expected a chunk or end record, found end of file");
  const uint32_t n = get_u32(head.data());
  const uint32_t crc = get_u32(head.data() + 4);
  if (n == 0) {
    std::string total;
    RAFTKV_RETURN_IF_ERROR(file_->read(offset_ + 8, 8, &total));
    if (total.size() < 8) return corrupt(offset_, "end record cut short");
    const uint64_t t = get_u64(total.data());
    if (end_crc(t) != crc) {
      return corrupt(offset_, "end record checksum mismatch");
    }
    if (t != total_bytes_) {
      return corrupt(offset_, "expected " + std::to_string(t) + " data bytes (end record), found " +
                                  std::to_string(total_bytes_));
    }
    if (offset_ + 16 != file_bytes_) {
      return corrupt(offset_ + 16, "expected end of file after the end record, found " +
                                       std::to_string(file_bytes_ - offset_ - 16) + " more bytes");
    }
    done_ = true;
    return false;
  }
  if (n > kMaxChunkBytes || offset_ + 8 + n > file_bytes_) {
    return corrupt(offset_, "chunk length " + std::to_string(n) + " runs past the end of the file");
  }
  RAFTKV_RETURN_IF_ERROR(file_->read(offset_ + 8, n, out));
  if (out->size() != n) return corrupt(offset_, "chunk cut short");
  const uint32_t actual = chunk_crc(n, *out);
  if (actual != crc) {
    char b[96];
    std::snprintf(b, sizeof b, "chunk checksum mismatch: expected crc32c 0x%08x, found 0x%08x", crc,
                  actual);
    out->clear();
    return corrupt(offset_, b);
  }
  offset_ += 8 + n;
  total_bytes_ += n;
  return true;
}

Result<std::string> SnapshotReader::read_all() {
  std::string all, chunk;
  // Bounded by the file size: each chunk consumes at least 9 bytes.
  for (;;) {
    Result<bool> more = next_chunk(&chunk);
    if (!more) return more.status();
    if (!*more) return all;
    all += chunk;
  }
}

// ---------------------------------------------------------------------------
// Store.

Result<std::unique_ptr<SnapshotStore>> SnapshotStore::open(FileSystem* fs, std::string dir,
                                                           SnapshotStoreOptions options) {
  RAFTKV_CHECK(options.retain >= 1 && options.chunk_bytes >= 1 &&
               options.chunk_bytes <= kMaxChunkBytes);
  RAFTKV_RETURN_IF_ERROR(fs->create_dir(dir));
  Result<std::vector<std::string>> names = fs->list(dir);
  if (!names) return names.status();
  bool removed = false;
  for (const std::string& n : *names) {
    if (n.size() > 4 && n.substr(n.size() - 4) == ".tmp") {
      RAFTKV_RETURN_IF_ERROR(fs->remove(join_path(dir, n)));
      removed = true;
    }
  }
  if (removed) RAFTKV_RETURN_IF_ERROR(fs->sync_dir(dir));
  return std::unique_ptr<SnapshotStore>(new SnapshotStore(fs, std::move(dir), options));
}

Result<std::vector<std::string>> SnapshotStore::list() {
  Result<std::vector<std::string>> names = fs_->list(dir_);
  if (!names) return names.status();
  std::vector<std::pair<std::pair<Index, Term>, std::string>> found;
  for (const std::string& n : *names) {
    Index i;
    Term t;
    if (parse_snapshot_file_name(n, &i, &t)) found.push_back({{i, t}, join_path(dir_, n)});
  }
  std::sort(found.begin(), found.end(),
            [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<std::string> out;
  for (auto& f : found) out.push_back(std::move(f.second));
  return out;
}

Result<std::unique_ptr<SnapshotWriter>> SnapshotStore::begin(const SnapshotMetadata& metadata) {
  std::unique_ptr<SnapshotWriter> w(new SnapshotWriter());
  w->store_ = this;
  w->metadata_ = metadata;
  w->final_path_ = join_path(dir_, snapshot_file_name(metadata.index, metadata.term));
  w->tmp_path_ = w->final_path_ + ".tmp";
  Result<std::unique_ptr<File>> f = fs_->open(w->tmp_path_, OpenMode::kCreateTruncate);
  if (!f) return f.status();
  w->file_ = std::move(*f);
  std::string head(kMagic, sizeof kMagic);
  put_u32(&head, kVersion);
  std::string meta = encode_snapshot_metadata(metadata);
  put_u32(&head, static_cast<uint32_t>(meta.size()));
  head += meta;
  put_u32(&head, crc32c(head));
  RAFTKV_RETURN_IF_ERROR(w->file_->pwrite(0, head));
  w->offset_ = head.size();
  return w;
}

Status SnapshotStore::save(const raft::Snapshot& snapshot) {
  Result<std::unique_ptr<SnapshotWriter>> w = begin(snapshot.metadata);
  if (!w) return w.status();
  RAFTKV_RETURN_IF_ERROR((*w)->append(snapshot.data));
  return (*w)->finish();
}

Result<std::unique_ptr<SnapshotReader>> SnapshotStore::open_reader(const std::string& path) {
  Result<std::unique_ptr<File>> f = fs_->open(path, OpenMode::kRead);
  if (!f) return f.status();
  std::unique_ptr<SnapshotReader> r(new SnapshotReader());
  r->file_ = std::move(*f);
  r->path_ = path;
  Result<uint64_t> size = r->file_->size();
  if (!size) return size.status();
  r->file_bytes_ = *size;
  std::string head;
  RAFTKV_RETURN_IF_ERROR(r->file_->read(0, 16, &head));
  if (head.size() < 16 || std::memcmp(head.data(), kMagic, 8) != 0) {
    return r->corrupt(0, "expected the magic \"RKVSNAP1\", found something else");
  }
  const uint32_t version = get_u32(head.data() + 8);
  if (version != kVersion) {
    return r->corrupt(8, "format version " + std::to_string(version) +
                             " is not supported; this build reads version 1");
  }
  const uint32_t meta_len = get_u32(head.data() + 12);
  if (meta_len > kMaxMetadataBytes || 16 + uint64_t{meta_len} + 4 > *size) {
    return r->corrupt(12, "metadata length " + std::to_string(meta_len) + " does not fit the file");
  }
  std::string rest;
  RAFTKV_RETURN_IF_ERROR(r->file_->read(16, meta_len + 4, &rest));
  if (rest.size() != meta_len + 4) return r->corrupt(16, "metadata cut short");
  const uint32_t stored = get_u32(rest.data() + meta_len);
  const uint32_t actual = crc32c_extend(crc32c(head), rest.data(), meta_len);
  if (stored != actual) {
    char b[96];
    std::snprintf(b, sizeof b, "header checksum mismatch: expected crc32c 0x%08x, found 0x%08x",
                  stored, actual);
    return r->corrupt(16 + meta_len, b);
  }
  Result<SnapshotMetadata> m = decode_snapshot_metadata(std::string_view(rest).substr(0, meta_len));
  if (!m) return r->corrupt(16, m.status().message());
  r->metadata_ = *m;
  r->offset_ = 16 + uint64_t{meta_len} + 4;
  return r;
}

Result<raft::Snapshot> SnapshotStore::load(const std::string& path) {
  Result<std::unique_ptr<SnapshotReader>> r = open_reader(path);
  if (!r) return r.status();
  Result<std::string> data = (*r)->read_all();
  if (!data) return data.status();
  raft::Snapshot s;
  s.metadata = (*r)->metadata();
  s.data = std::move(*data);
  return s;
}

Result<SnapshotMetadata> SnapshotStore::verify(const std::string& path) {
  Result<std::unique_ptr<SnapshotReader>> r = open_reader(path);
  if (!r) return r.status();
  std::string chunk;
  // Bounded by the file size.
  for (;;) {
    Result<bool> more = (*r)->next_chunk(&chunk);
    if (!more) return more.status();
    if (!*more) break;
  }
  Index i;
  Term t;
  std::string name = path.substr(path.rfind('/') + 1);
  if (parse_snapshot_file_name(name, &i, &t) &&
      (i != (*r)->metadata().index || t != (*r)->metadata().term)) {
    return Status::corruption("snapshot file " + path + ": its name says index " +
                              std::to_string(i.value()) + " term " + std::to_string(t.value()) +
                              " but its metadata says index " +
                              std::to_string((*r)->metadata().index.value()) + " term " +
                              std::to_string((*r)->metadata().term.value()));
  }
  return (*r)->metadata();
}

Result<SnapshotChoice> SnapshotStore::choose(
    const std::function<bool(const SnapshotMetadata&)>& usable) {
  Result<std::vector<std::string>> paths = list();
  if (!paths) return paths.status();
  SnapshotChoice choice;
  for (const std::string& p : *paths) {
    Result<SnapshotMetadata> m = verify(p);
    if (!m) {
      if (m.status().code() != Code::kCorruption) return m.status();
      choice.problems.push_back(m.status().message());
      continue;
    }
    if (!choice.problems.empty() && !usable(*m)) break;
    choice.metadata = *m;
    choice.path = p;
    return choice;
  }
  if (choice.problems.empty()) return choice;  // No snapshot at all.
  std::string msg = choice.problems.front();
  for (size_t k = 1; k < choice.problems.size(); ++k) msg += "; " + choice.problems[k];
  return Status::corruption(msg + "." + kSnapshotAdvice);
}

Status SnapshotStore::apply_retention() {
  Result<std::vector<std::string>> paths = list();
  if (!paths) return paths.status();
  if (paths->size() <= options_.retain) return Status::ok();
  for (size_t k = options_.retain; k < paths->size(); ++k) {
    RAFTKV_RETURN_IF_ERROR(fs_->remove((*paths)[k]));
  }
  return fs_->sync_dir(dir_);
}

}  // namespace raftkv::storage
