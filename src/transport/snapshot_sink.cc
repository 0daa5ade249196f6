#include "transport/snapshot_sink.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace raftkv::transport {
namespace {

Status too_large(uint64_t total_bytes, uint64_t max_bytes) {
  return Status::resource_exhausted("snapshot of " + std::to_string(total_bytes) +
                                    " bytes exceeds the receiver's limit of " +
                                    std::to_string(max_bytes) + " bytes");
}

class MemoryWriter final : public SnapshotWriter {
 public:
  explicit MemoryWriter(uint64_t total_bytes) : total_bytes_(total_bytes) {
    buf_.reserve(total_bytes);
  }
  Status append(std::string_view chunk) override {
    if (buf_.size() + chunk.size() > total_bytes_) {
      return Status::corruption("snapshot data exceeds its announced size");
    }
    buf_.append(chunk);
    return Status::ok();
  }
  Result<std::string> finish() override { return std::move(buf_); }

 private:
  const uint64_t total_bytes_;
  std::string buf_;
};

std::string errno_text(const std::string& what, const std::string& path) {
  return what + " " + path + ": " + std::strerror(errno);
}

class FileWriter final : public SnapshotWriter {
 public:
  FileWriter(int fd, std::string part_path, std::string final_path)
      : fd_(fd), part_path_(std::move(part_path)), final_path_(std::move(final_path)) {}
  ~FileWriter() override {
    if (fd_ >= 0) ::close(fd_);
    if (!finished_) ::unlink(part_path_.c_str());
  }
  Status append(std::string_view chunk) override {
    while (!chunk.empty()) {
      ssize_t n = ::write(fd_, chunk.data(), chunk.size());
      if (n < 0) {
        if (errno == EINTR) continue;
        return Status::io_error(errno_text("write", part_path_));
      }
      chunk.remove_prefix(static_cast<size_t>(n));
    }
    return Status::ok();
  }
  Result<std::string> finish() override {
    if (::fsync(fd_) != 0) return Status::io_error(errno_text("fsync", part_path_));
    if (::close(fd_) != 0) {
      fd_ = -1;
      return Status::io_error(errno_text("close", part_path_));
    }
    fd_ = -1;
    if (::rename(part_path_.c_str(), final_path_.c_str()) != 0) {
      return Status::io_error(errno_text("rename", part_path_));
    }
    finished_ = true;
    return final_path_;
  }

 private:
  int fd_;
  const std::string part_path_;
  const std::string final_path_;
  bool finished_ = false;
};

}  // namespace

Result<std::unique_ptr<SnapshotWriter>> MemorySnapshotSink::open(raft::NodeId,
                                                                 const raft::SnapshotMetadata&,
                                                                 uint64_t total_bytes) {
  if (total_bytes > max_bytes_) return too_large(total_bytes, max_bytes_);
  return std::unique_ptr<SnapshotWriter>(std::make_unique<MemoryWriter>(total_bytes));
}

Result<std::unique_ptr<SnapshotWriter>> FileSnapshotSink::open(raft::NodeId from,
                                                               const raft::SnapshotMetadata& md,
                                                               uint64_t total_bytes) {
  if (total_bytes > max_bytes_) return too_large(total_bytes, max_bytes_);
  char name[96];
  std::snprintf(name, sizeof name, "snap-%llx-%llx-%llx",
                static_cast<unsigned long long>(from.value()),
                static_cast<unsigned long long>(md.term.value()),
                static_cast<unsigned long long>(md.index.value()));
  std::string base = dir_ + "/" + name;
  std::string part = base + ".part";
  int fd = ::open(part.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return Status::io_error(errno_text("open", part));
  return std::unique_ptr<SnapshotWriter>(
      std::make_unique<FileWriter>(fd, std::move(part), base + ".snap"));
}

}  // namespace raftkv::transport
