#include "storage/fault_file_system.h"

#include <algorithm>

#include "base/check.h"

namespace raftkv::storage {

// One file's bytes. `pending` lists the un-synced changes in order so that
// sync() costs what was written (not the file's size) and the last write can
// be torn.
struct FaultFileSystem::Inode {
  struct Op {
    uint64_t offset = 0;
    std::string bytes;      ///< Written bytes (a write) — empty for a resize.
    uint64_t new_size = 0;  ///< File size after the op.
    uint64_t old_size = 0;  ///< File size before the op.
    std::string old_bytes;  ///< Bytes the write overwrote (within old_size).
    bool is_write = false;
  };
  std::string data;     ///< What reads see.
  std::string durable;  ///< What survives a crash.
  std::vector<Op> pending;

  void apply(const Op& op, std::string* target) const {
    if (op.is_write) {
      if (target->size() < op.offset + op.bytes.size()) target->resize(op.offset + op.bytes.size());
      std::copy(op.bytes.begin(), op.bytes.end(),
                target->begin() + static_cast<ptrdiff_t>(op.offset));
    } else {
      target->resize(op.new_size);
    }
  }
  void record(Op op) {
    op.old_size = data.size();
    if (op.is_write && op.offset < data.size()) {
      op.old_bytes =
          data.substr(op.offset, std::min<uint64_t>(op.bytes.size(), data.size() - op.offset));
    }
    apply(op, &data);
    op.new_size = data.size();
    pending.push_back(std::move(op));
  }
  void make_durable() {
    for (const Op& op : pending) apply(op, &durable);
    pending.clear();
  }
};

struct FaultFileSystem::Dir {
  std::map<std::string, std::shared_ptr<Inode>> entries;
  std::map<std::string, std::shared_ptr<Inode>> durable_entries;
};

namespace {

std::pair<std::string, std::string> split(const std::string& path) {
  size_t slash = path.rfind('/');
  if (slash == std::string::npos) return {".", path};
  if (slash == 0) return {"/", path.substr(1)};
  return {path.substr(0, slash), path.substr(slash + 1)};
}

std::string trim_slash(std::string p) {
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return p;
}

Status failure_status(FaultFileSystem::Failure f, std::string_view what, const std::string& path) {
  std::string m(what);
  m += ' ';
  m += path;
  m += f == FaultFileSystem::Failure::kNoSpace ? ": No space left on device (ENOSPC)"
                                               : ": Input/output error (EIO)";
  return Status::io_error(std::move(m));
}

}  // namespace

class FaultFileSystem::Handle final : public File {
 public:
  Handle(FaultFileSystem* fs, std::shared_ptr<Inode> inode, std::string path, bool writable)
      : fs_(fs),
        inode_(std::move(inode)),
        path_(std::move(path)),
        writable_(writable),
        epoch_(fs->epoch_) {}

  Status pwrite(uint64_t offset, std::string_view data) override {
    RAFTKV_RETURN_IF_ERROR(usable(true));
    ++fs_->write_calls_;
    RAFTKV_RETURN_IF_ERROR(fs_->check_write(path_));
    fs_->bytes_written_ += data.size();
    Inode::Op op;
    op.is_write = true;
    op.offset = offset;
    op.bytes.assign(data);
    inode_->record(std::move(op));
    return Status::ok();
  }

  Status append(std::string_view data) override {
    RAFTKV_RETURN_IF_ERROR(usable(true));
    return pwrite(inode_->data.size(), data);
  }

  Status read(uint64_t offset, uint64_t n, std::string* out) override {
    RAFTKV_RETURN_IF_ERROR(usable(false));
    ++fs_->read_calls_;
    out->clear();
    if (offset >= inode_->data.size()) return Status::ok();
    out->assign(inode_->data, offset, std::min<uint64_t>(n, inode_->data.size() - offset));
    return Status::ok();
  }

  Status sync() override {
    RAFTKV_RETURN_IF_ERROR(usable(false));
    ++fs_->sync_calls_;
    RAFTKV_RETURN_IF_ERROR(fs_->check_sync(path_));
    inode_->make_durable();
    return Status::ok();
  }

  Status truncate(uint64_t size_bytes) override {
    RAFTKV_RETURN_IF_ERROR(usable(true));
    RAFTKV_RETURN_IF_ERROR(fs_->check_write(path_));
    Inode::Op op;
    op.new_size = size_bytes;
    inode_->record(std::move(op));
    return Status::ok();
  }

  Status preallocate(uint64_t size_bytes) override {
    RAFTKV_RETURN_IF_ERROR(usable(true));
    if (inode_->data.size() >= size_bytes) return Status::ok();
    RAFTKV_RETURN_IF_ERROR(fs_->check_write(path_));
    Inode::Op op;
    op.new_size = size_bytes;
    inode_->record(std::move(op));
    return Status::ok();
  }

  Result<uint64_t> size() override {
    RAFTKV_RETURN_IF_ERROR(usable(false));
    return static_cast<uint64_t>(inode_->data.size());
  }

 private:
  Status usable(bool write) const {
    if (epoch_ != fs_->epoch_) return Status::io_error(path_ + ": stale handle after crash");
    if (write && !writable_) return Status::io_error(path_ + ": opened read-only (EBADF)");
    return Status::ok();
  }

  FaultFileSystem* fs_;
  std::shared_ptr<Inode> inode_;
  std::string path_;
  bool writable_;
  uint64_t epoch_;
};

FaultFileSystem::FaultFileSystem() {
  dirs_["/"] = std::make_unique<Dir>();
  dirs_["."] = std::make_unique<Dir>();
}
FaultFileSystem::~FaultFileSystem() = default;

FaultFileSystem::Dir* FaultFileSystem::find_dir(const std::string& dir) {
  auto it = dirs_.find(trim_slash(dir));
  return it == dirs_.end() ? nullptr : it->second.get();
}
const FaultFileSystem::Dir* FaultFileSystem::find_dir(const std::string& dir) const {
  auto it = dirs_.find(trim_slash(dir));
  return it == dirs_.end() ? nullptr : it->second.get();
}

std::shared_ptr<FaultFileSystem::Inode> FaultFileSystem::lookup(const std::string& path) const {
  auto [dir, name] = split(path);
  const Dir* d = find_dir(dir);
  if (d == nullptr) return nullptr;
  auto it = d->entries.find(name);
  return it == d->entries.end() ? nullptr : it->second;
}

namespace {
// One injected failure: `f` after `*before` more successes (sticky).
Status consume(FaultFileSystem::Failure f, uint64_t* before, std::string_view what,
               const std::string& path) {
  if (f == FaultFileSystem::Failure::kNone) return Status::ok();
  if (*before > 0) {
    --*before;
    return Status::ok();
  }
  return failure_status(f, what, path);
}
}  // namespace

Status FaultFileSystem::check_write(const std::string& path) {
  return consume(write_failure_, &writes_before_failure_, "write", path);
}

Status FaultFileSystem::check_sync(const std::string& path) {
  return consume(sync_failure_, &syncs_before_failure_, "fdatasync", path);
}

Result<std::unique_ptr<File>> FaultFileSystem::open(const std::string& path, OpenMode mode) {
  auto [dir, name] = split(path);
  Dir* d = find_dir(dir);
  if (d == nullptr)
    return Status::not_found("open " + path + ": No such file or directory (ENOENT)");
  auto it = d->entries.find(name);
  std::shared_ptr<Inode> inode = it == d->entries.end() ? nullptr : it->second;
  switch (mode) {
    case OpenMode::kRead:
    case OpenMode::kReadWrite:
      if (!inode) return Status::not_found("open " + path + ": No such file or directory (ENOENT)");
      break;
    case OpenMode::kCreateExclusive:
      if (inode) return Status::already_exists("open " + path + ": File exists (EEXIST)");
      inode = std::make_shared<Inode>();
      d->entries[name] = inode;
      break;
    case OpenMode::kCreateTruncate:
      if (!inode) {
        inode = std::make_shared<Inode>();
        d->entries[name] = inode;
      } else {
        Inode::Op op;
        op.new_size = 0;
        inode->record(std::move(op));
      }
      break;
  }
  return std::unique_ptr<File>(new Handle(this, inode, path, mode != OpenMode::kRead));
}

Status FaultFileSystem::create_dir(const std::string& path) {
  std::string p = trim_slash(path);
  // Create each missing component, bounded by the path's length.
  for (size_t pos = 1; pos <= p.size(); ++pos) {
    if (pos != p.size() && p[pos] != '/') continue;
    std::string part = p.substr(0, pos);
    if (!dirs_.count(part)) dirs_[part] = std::make_unique<Dir>();
  }
  return Status::ok();
}

Status FaultFileSystem::sync_dir(const std::string& path) {
  Dir* d = find_dir(path);
  if (d == nullptr)
    return Status::not_found("open dir " + path + ": No such file or directory (ENOENT)");
  ++dir_sync_calls_;
  RAFTKV_RETURN_IF_ERROR(check_sync(path));
  d->durable_entries = d->entries;
  return Status::ok();
}

Status FaultFileSystem::rename(const std::string& from, const std::string& to) {
  auto [fdir, fname] = split(from);
  auto [tdir, tname] = split(to);
  Dir* fd = find_dir(fdir);
  Dir* td = find_dir(tdir);
  if (fd == nullptr || td == nullptr || !fd->entries.count(fname)) {
    return Status::not_found("rename " + from + " -> " + to +
                             ": No such file or directory (ENOENT)");
  }
  std::shared_ptr<Inode> inode = fd->entries[fname];
  fd->entries.erase(fname);
  td->entries[tname] = std::move(inode);
  return Status::ok();
}

Status FaultFileSystem::remove(const std::string& path) {
  auto [dir, name] = split(path);
  Dir* d = find_dir(dir);
  if (d == nullptr || d->entries.erase(name) == 0) {
    return Status::not_found("unlink " + path + ": No such file or directory (ENOENT)");
  }
  return Status::ok();
}

Result<std::vector<std::string>> FaultFileSystem::list(const std::string& path) {
  const Dir* d = find_dir(path);
  if (d == nullptr)
    return Status::not_found("opendir " + path + ": No such file or directory (ENOENT)");
  std::vector<std::string> names;
  names.reserve(d->entries.size());
  for (const auto& [name, inode] : d->entries) names.push_back(name);
  return names;  // std::map keeps them sorted.
}

bool FaultFileSystem::exists(const std::string& path) {
  return find_dir(path) != nullptr || lookup(path) != nullptr;
}

void FaultFileSystem::crash(CrashMode mode) {
  ++epoch_;
  for (auto& [path, dir] : dirs_) {
    if (mode == CrashMode::kKeepUnsynced) dir->durable_entries = dir->entries;
    // Un-synced bytes of every file, linked or not, are settled first.
    for (const auto* entries : {&dir->entries, &dir->durable_entries}) {
      for (const auto& [name, inode] : *entries) {
        if (mode == CrashMode::kDropUnsynced) {
          inode->pending.clear();
          inode->data = inode->durable;
        } else {
          inode->make_durable();
        }
      }
    }
    dir->entries = dir->durable_entries;
  }
}

void FaultFileSystem::crash_partial(const std::function<uint64_t(uint64_t n)>& choose) {
  ++epoch_;
  for (auto& [path, dir] : dirs_) {
    for (const auto* entries : {&dir->entries, &dir->durable_entries}) {
      for (const auto& [name, inode] : *entries) {
        if (inode->pending.empty()) continue;  // Also makes a second visit a no-op.
        const uint64_t keep =
            std::min<uint64_t>(choose(inode->pending.size()), inode->pending.size());
        inode->pending.resize(keep);
        if (keep > 0 && inode->pending.back().is_write) {
          Inode::Op& last = inode->pending.back();
          last.bytes.resize(std::min<uint64_t>(choose(last.bytes.size()), last.bytes.size()));
        }
        inode->make_durable();
        inode->data = inode->durable;
      }
    }
    if (dir->entries != dir->durable_entries && choose(1) == 1) {
      dir->durable_entries = dir->entries;
    }
    dir->entries = dir->durable_entries;
  }
}

Status FaultFileSystem::tear_last_write(const std::string& path, uint64_t keep_bytes) {
  std::shared_ptr<Inode> inode = lookup(path);
  if (!inode) return Status::not_found(path);
  auto last = std::find_if(inode->pending.rbegin(), inode->pending.rend(),
                           [](const Inode::Op& op) { return op.is_write; });
  if (last == inode->pending.rend()) {
    return Status::failed_precondition(path + " has no un-synced write to tear");
  }
  RAFTKV_CHECK_MSG(last == inode->pending.rbegin(), "tear_last_write: a resize followed the write");
  Inode::Op& op = *last;
  if (keep_bytes >= op.bytes.size()) return Status::ok();
  // Undo the write, then redo only its prefix.
  std::copy(op.old_bytes.begin(), op.old_bytes.end(),
            inode->data.begin() + static_cast<ptrdiff_t>(op.offset));
  inode->data.resize(op.old_size);
  op.bytes.resize(keep_bytes);
  op.old_bytes.resize(std::min<uint64_t>(op.old_bytes.size(), keep_bytes));
  inode->apply(op, &inode->data);
  op.new_size = inode->data.size();
  return Status::ok();
}

Status FaultFileSystem::flip_bit(const std::string& path, uint64_t offset, int bit) {
  RAFTKV_CHECK(bit >= 0 && bit < 8);
  std::shared_ptr<Inode> inode = lookup(path);
  if (!inode) return Status::not_found(path);
  if (offset >= inode->data.size()) return Status::out_of_range(path + ": offset past end");
  const char mask = static_cast<char>(1 << bit);
  inode->data[offset] = static_cast<char>(inode->data[offset] ^ mask);
  if (offset < inode->durable.size()) {
    inode->durable[offset] = static_cast<char>(inode->durable[offset] ^ mask);
  }
  for (Inode::Op& op : inode->pending) {
    if (op.is_write && offset >= op.offset && offset < op.offset + op.bytes.size()) {
      op.bytes[offset - op.offset] = static_cast<char>(op.bytes[offset - op.offset] ^ mask);
    }
  }
  return Status::ok();
}

void FaultFileSystem::fail_writes(Failure f, uint64_t after_ok) {
  write_failure_ = f;
  writes_before_failure_ = after_ok;
}

void FaultFileSystem::fail_syncs(Failure f, uint64_t after_ok) {
  sync_failure_ = f;
  syncs_before_failure_ = after_ok;
}

Result<std::string> FaultFileSystem::contents(const std::string& path) const {
  std::shared_ptr<Inode> inode = lookup(path);
  if (!inode) return Status::not_found(path);
  return inode->data;
}

Result<std::string> FaultFileSystem::durable_contents(const std::string& path) const {
  auto [dir, name] = split(path);
  const Dir* d = find_dir(dir);
  if (d == nullptr) return Status::not_found(path);
  auto it = d->durable_entries.find(name);
  if (it == d->durable_entries.end()) return Status::not_found(path);
  return it->second->durable;
}

Status FaultFileSystem::put_file(const std::string& path, const std::string& bytes) {
  auto [dir, name] = split(path);
  RAFTKV_RETURN_IF_ERROR(create_dir(dir));
  Dir* d = find_dir(dir);
  auto inode = std::make_shared<Inode>();
  inode->data = bytes;
  inode->durable = bytes;
  d->entries[name] = inode;
  d->durable_entries[name] = inode;
  return Status::ok();
}

}  // namespace raftkv::storage
