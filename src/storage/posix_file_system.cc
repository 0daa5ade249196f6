// The real file system: POSIX calls, every error turned into a Status naming
// the call, the path and the errno.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include "storage/file_system.h"

namespace raftkv::storage {
namespace {

const char* errno_name(int err) {
  switch (err) {
    case ENOSPC:
      return "ENOSPC";
    case EIO:
      return "EIO";
    case EDQUOT:
      return "EDQUOT";
    case EROFS:
      return "EROFS";
    case EACCES:
      return "EACCES";
    case ENOENT:
      return "ENOENT";
    case EEXIST:
      return "EEXIST";
    case EINVAL:
      return "EINVAL";
    case EBADF:
      return "EBADF";
    case EOPNOTSUPP:
      return "EOPNOTSUPP";
    default:
      return "errno";
  }
}

Status os_error(std::string_view what, const std::string& path, int err) {
  std::string m(what);
  m += ' ';
  m += path;
  m += ": ";
  m += std::strerror(err);
  m += " (";
  m += errno_name(err);
  if (std::strcmp(errno_name(err), "errno") == 0) m += ' ' + std::to_string(err);
  m += ')';
  if (err == ENOENT) return Status::not_found(std::move(m));
  if (err == EEXIST) return Status::already_exists(std::move(m));
  return Status::io_error(std::move(m));
}

class PosixFile final : public File {
 public:
  PosixFile(int fd, std::string path) : fd_(fd), path_(std::move(path)) {}
  ~PosixFile() override { ::close(fd_); }

  Status pwrite(uint64_t offset, std::string_view data) override {
    const char* p = data.data();
    size_t left = data.size();
    // Bounded: each iteration writes at least one byte or returns.
    while (left > 0) {
      ssize_t n = ::pwrite(fd_, p, left, static_cast<off_t>(offset));
      if (n < 0) {
        if (errno == EINTR) continue;
        return os_error("write", path_, errno);
      }
      if (n == 0) return os_error("write", path_, EIO);
      p += n;
      left -= static_cast<size_t>(n);
      offset += static_cast<uint64_t>(n);
    }
    return Status::ok();
  }

  Status append(std::string_view data) override {
    Result<uint64_t> end = size();
    if (!end) return end.status();
    return pwrite(*end, data);
  }

  Status read(uint64_t offset, uint64_t n, std::string* out) override {
    out->resize(n);
    uint64_t got = 0;
    while (got < n) {
      ssize_t r = ::pread(fd_, out->data() + got, n - got, static_cast<off_t>(offset + got));
      if (r < 0) {
        if (errno == EINTR) continue;
        out->clear();
        return os_error("read", path_, errno);
      }
      if (r == 0) break;
      got += static_cast<uint64_t>(r);
    }
    out->resize(got);
    return Status::ok();
  }

  Status sync() override {
    if (::fdatasync(fd_) != 0) return os_error("fdatasync", path_, errno);
    return Status::ok();
  }

  Status truncate(uint64_t size_bytes) override {
    if (::ftruncate(fd_, static_cast<off_t>(size_bytes)) != 0) {
      return os_error("ftruncate", path_, errno);
    }
    return Status::ok();
  }

  Status preallocate(uint64_t size_bytes) override {
    int rc = ::posix_fallocate(fd_, 0, static_cast<off_t>(size_bytes));
    if (rc == 0) return Status::ok();
    if (rc != EOPNOTSUPP && rc != EINVAL) return os_error("fallocate", path_, rc);
    // A file system without fallocate: extend with a sparse tail instead.
    Result<uint64_t> cur = size();
    if (!cur) return cur.status();
    if (*cur >= size_bytes) return Status::ok();
    return truncate(size_bytes);
  }

  Result<uint64_t> size() override {
    struct stat st;
    if (::fstat(fd_, &st) != 0) return os_error("fstat", path_, errno);
    return static_cast<uint64_t>(st.st_size);
  }

 private:
  int fd_;
  std::string path_;
};

class PosixFileSystem final : public FileSystem {
 public:
  Result<std::unique_ptr<File>> open(const std::string& path, OpenMode mode) override {
    int flags = O_CLOEXEC;
    switch (mode) {
      case OpenMode::kRead:
        flags |= O_RDONLY;
        break;
      case OpenMode::kReadWrite:
        flags |= O_RDWR;
        break;
      case OpenMode::kCreateExclusive:
        flags |= O_RDWR | O_CREAT | O_EXCL;
        break;
      case OpenMode::kCreateTruncate:
        flags |= O_RDWR | O_CREAT | O_TRUNC;
        break;
    }
    int fd = ::open(path.c_str(), flags, 0644);
    if (fd < 0) return os_error("open", path, errno);
    return std::unique_ptr<File>(new PosixFile(fd, path));
  }

  Status create_dir(const std::string& path) override {
    // Create each missing component, bounded by the path's length.
    for (size_t pos = 1; pos <= path.size(); ++pos) {
      if (pos != path.size() && path[pos] != '/') continue;
      std::string part = path.substr(0, pos);
      if (::mkdir(part.c_str(), 0755) != 0 && errno != EEXIST) {
        return os_error("mkdir", part, errno);
      }
    }
    return Status::ok();
  }

  Status sync_dir(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) return os_error("open dir", path, errno);
    int rc = ::fsync(fd);
    int err = errno;
    ::close(fd);
    if (rc != 0) return os_error("fsync dir", path, err);
    return Status::ok();
  }

  Status rename(const std::string& from, const std::string& to) override {
    if (::rename(from.c_str(), to.c_str()) != 0)
      return os_error("rename", from + " -> " + to, errno);
    return Status::ok();
  }

  Status remove(const std::string& path) override {
    if (::unlink(path.c_str()) != 0) return os_error("unlink", path, errno);
    return Status::ok();
  }

  Result<std::vector<std::string>> list(const std::string& path) override {
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return os_error("opendir", path, errno);
    std::vector<std::string> names;
    while (struct dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (name == "." || name == "..") continue;
      struct stat st;
      std::string full = join_path(path, name);
      if (::stat(full.c_str(), &st) == 0 && S_ISREG(st.st_mode)) names.push_back(std::move(name));
    }
    ::closedir(d);
    std::sort(names.begin(), names.end());
    return names;
  }

  bool exists(const std::string& path) override {
    struct stat st;
    return ::stat(path.c_str(), &st) == 0;
  }
};

}  // namespace

std::unique_ptr<FileSystem> make_posix_file_system() {
  return std::make_unique<PosixFileSystem>();
}

std::string join_path(std::string_view dir, std::string_view name) {
  std::string p(dir);
  if (!p.empty() && p.back() != '/') p += '/';
  p += name;
  return p;
}

}  // namespace raftkv::storage
