#include "server/backup.h"

#include <openssl/evp.h>

#include <CLI/CLI.hpp>
#include <spdlog/spdlog.h>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>

#include "base/check.h"
#include "server/node.h"

namespace raftkv::server {
namespace {

namespace fsys = std::filesystem;

constexpr std::string_view kMagic = "RKVBAK01";
constexpr uint32_t kMaxFrameBytes = 64u << 20;
constexpr size_t kBlock = 512;
constexpr size_t kDigestBytes = 32;

void put_u32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
uint32_t get_u32(std::string_view b, size_t at) {
  uint32_t v = 0;
  for (int i = 0; i < 4; ++i) v |= uint32_t(uint8_t(b[at + static_cast<size_t>(i)])) << (8 * i);
  return v;
}

using EvpCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;

EvpCtx new_sha256() {
  EvpCtx ctx(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  RAFTKV_CHECK(ctx != nullptr && EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1);
  return ctx;
}

std::string sha256(std::string_view bytes) {
  EvpCtx ctx = new_sha256();
  RAFTKV_CHECK(EVP_DigestUpdate(ctx.get(), bytes.data(), bytes.size()) == 1);
  unsigned char d[kDigestBytes];
  unsigned int n = 0;
  RAFTKV_CHECK(EVP_DigestFinal_ex(ctx.get(), d, &n) == 1 && n == kDigestBytes);
  return std::string(reinterpret_cast<char*>(d), kDigestBytes);
}

kv::StoreOptions restore_store_options() {
  kv::StoreOptions o;
  o.quota_backend_bytes = UINT64_MAX;  // a restore writes what the backup holds
  return o;
}

}  // namespace

struct BackupWriter::Digest {
  EvpCtx ctx = new_sha256();
};

BackupWriter::BackupWriter() : digest_(new Digest) {}
BackupWriter::~BackupWriter() { delete digest_; }

void BackupWriter::emit(std::string_view bytes, std::string* out) {
  RAFTKV_CHECK(EVP_DigestUpdate(digest_->ctx.get(), bytes.data(), bytes.size()) == 1);
  length_ += bytes.size();
  out->append(bytes);
}

Status BackupWriter::add_chunk(std::string_view chunk, std::string* out) {
  if (chunk.empty() || chunk.size() > kMaxFrameBytes) {
    return Status::internal("backup: kv chunk of " + std::to_string(chunk.size()) +
                            " bytes cannot be framed");
  }
  if (!started_) {
    emit(kMagic, out);
    started_ = true;
  }
  std::string len;
  put_u32(&len, static_cast<uint32_t>(chunk.size()));
  emit(len, out);
  emit(chunk, out);
  return Status::ok();
}

void BackupWriter::finish(std::string* out) {
  if (!started_) {
    emit(kMagic, out);
    started_ = true;
  }
  std::string tail;
  put_u32(&tail, 0);
  const uint64_t unpadded = length_ + tail.size();
  tail.append((kBlock - unpadded % kBlock) % kBlock, '\0');
  emit(tail, out);
  unsigned char d[kDigestBytes];
  unsigned int n = 0;
  RAFTKV_CHECK(EVP_DigestFinal_ex(digest_->ctx.get(), d, &n) == 1 && n == kDigestBytes);
  out->append(reinterpret_cast<char*>(d), kDigestBytes);
}

Status write_backup(kv::SnapshotStream& stream, std::string* out) {
  BackupWriter w;
  // Bounded by the store's size: each chunk is ~1 MiB of it.
  for (;;) {
    Result<std::optional<std::string>> c = stream.next_chunk();
    if (!c) return c.status();
    if (!c->has_value()) break;
    RAFTKV_RETURN_IF_ERROR(w.add_chunk(**c, out));
  }
  w.finish(out);
  return Status::ok();
}

Result<Backup> Backup::parse(std::string bytes) {
  const size_t size = bytes.size();
  if (size < kDigestBytes + kBlock || (size - kDigestBytes) % kBlock != 0) {
    return Status::corruption("snapshot file of " + std::to_string(size) +
                              " bytes is truncated or not a snapshot: its length must be "
                              "512*k + 32 (k >= 1)");
  }
  const std::string_view all(bytes);
  const std::string_view body = all.substr(0, size - kDigestBytes);
  if (sha256(body) != all.substr(size - kDigestBytes)) {
    return Status::corruption("snapshot file is damaged: SHA-256 mismatch");
  }
  if (body.substr(0, kMagic.size()) != kMagic) {
    return Status::corruption("not a raftkv snapshot file (bad magic; etcd's bbolt snapshots "
                              "cannot be restored into raftkv)");
  }
  size_t at = kMagic.size();
  for (;;) {
    if (body.size() - at < 4) return Status::corruption("snapshot file: missing end mark");
    const uint32_t len = get_u32(body, at);
    at += 4;
    if (len == 0) break;
    if (len > kMaxFrameBytes || body.size() - at < len) {
      return Status::corruption("snapshot file: frame length out of range");
    }
    at += len;
  }
  const std::string_view pad = body.substr(at);
  if (pad.size() >= kBlock) return Status::corruption("snapshot file: data after the end mark");
  for (char c : pad) {
    if (c != '\0') return Status::corruption("snapshot file: non-zero padding");
  }
  Backup b;
  b.bytes_ = std::move(bytes);
  b.frames_begin_ = kMagic.size();
  return b;
}

kv::ChunkSource Backup::chunks() const {
  auto at = std::make_shared<size_t>(frames_begin_);
  const std::string* bytes = &bytes_;
  // Framing was checked by parse(): every length fits.
  return [at, bytes]() -> Result<std::optional<std::string>> {
    const uint32_t len = get_u32(*bytes, *at);
    *at += 4;
    if (len == 0) return std::optional<std::string>();
    std::string chunk = bytes->substr(*at, len);
    *at += len;
    return std::optional<std::string>(std::move(chunk));
  };
}

Result<Backup> read_backup_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Status::io_error("cannot open " + path + ": " + std::strerror(errno));
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (in.bad()) return Status::io_error("cannot read " + path);
  Result<Backup> b = Backup::parse(std::move(bytes));
  if (!b) return Status(b.status().code(), path + ": " + b.status().message());
  return b;
}

Status restore_backup(const std::string& file, const Config& cfg) {
  std::error_code ec;
  if (fsys::exists(cfg.data_dir, ec) && !fsys::is_empty(cfg.data_dir, ec)) {
    return Status::failed_precondition("data-dir \"" + cfg.data_dir +
                                       "\" exists and is not empty");
  }
  Result<Backup> backup = read_backup_file(file);
  if (!backup) return backup.status();
  fsys::create_directories(cfg.data_dir, ec);
  if (ec) return Status::io_error("cannot create " + cfg.data_dir + ": " + ec.message());
  // The new log holds one bootstrap entry per member; the restored state
  // counts as applied at the last of them, so the first client write of the
  // new cluster is the first entry the store applies.
  kv::Store::Rebase rebase{raft::Index(cfg.initial_members.size())};
  Result<std::unique_ptr<kv::Store>> store = kv::Store::restore_for_new_cluster(
      cfg.data_dir + "/kv", restore_store_options(), backup->chunks(), rebase);
  if (!store) return store.status();
  RAFTKV_RETURN_IF_ERROR((*store)->close());
  store->reset();
  return Node::bootstrap_data_dir(cfg);
}

Result<BackupStatus> backup_status(const std::string& file, const std::string& scratch_dir) {
  Result<Backup> backup = read_backup_file(file);
  if (!backup) return backup.status();
  std::error_code ec;
  fsys::create_directories(scratch_dir, ec);
  char tmpl_buf[4096];
  std::snprintf(tmpl_buf, sizeof tmpl_buf, "%s/raftkv-snapshot-status-XXXXXX",
                scratch_dir.c_str());
  if (::mkdtemp(tmpl_buf) == nullptr) {
    return Status::io_error(std::string("cannot create a directory in ") + scratch_dir);
  }
  const std::string dir = std::string(tmpl_buf) + "/kv";
  BackupStatus st;
  Status result;
  {
    Result<std::unique_ptr<kv::Store>> store =
        kv::Store::restore(dir, restore_store_options(), backup->chunks());
    if (!store) {
      result = store.status();
    } else {
      Result<etcdserverpb::HashKVResponse> h = (*store)->hash_kv(0);
      if (!h) {
        result = h.status();
      } else {
        st.hash = h->hash();
        st.revision = (*store)->revision();
        st.total_keys = (*store)->index_key_count();
        st.total_size_bytes = backup->size_bytes();
      }
      (void)(*store)->close();
    }
  }
  fsys::remove_all(tmpl_buf, ec);
  if (!result.is_ok()) return result;
  return st;
}

int snapshot_command_main(int argc, const char* const* argv) {
  spdlog::set_level(spdlog::level::warn);  // the tool reports its own result
  CLI::App app{"raftkv snapshot: restore or inspect a snapshot file", "raftkv snapshot"};
  app.require_subcommand(1);
  std::string file;
  Config c;
  std::string advertise_peer = "http://127.0.0.1:2380";
  auto* restore = app.add_subcommand(
      "restore", "Restores a snapshot file into the data directory of a member of a new cluster");
  restore->add_option("file", file, "Snapshot file (from etcdctl/raftkvctl snapshot save)")
      ->required();
  restore->add_option("--data-dir", c.data_dir,
                      "Path to the data directory to create (default \"${name}.raftkv\")");
  restore->add_option("--name", c.name, "Human-readable name for this member")
      ->capture_default_str();
  restore->add_option("--initial-cluster", c.initial_cluster,
                      "Initial cluster configuration for restore bootstrap, name=url,...");
  restore->add_option("--initial-cluster-token", c.initial_cluster_token,
                      "Initial cluster token for the cluster during restore bootstrap")
      ->capture_default_str();
  restore->add_option("--initial-advertise-peer-urls", advertise_peer,
                      "This member's peer URL to advertise to the rest of the cluster")
      ->capture_default_str();
  auto* status = app.add_subcommand("status", "Prints hash, revision, total keys and size");
  status->add_option("file", file, "Snapshot file")->required();
  std::string format = "simple";
  status->add_option("-w,--write-out", format, "Output format: simple or json");
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  if (restore->parsed()) {
    c.initial_advertise_peer_urls = {advertise_peer};
    c.listen_peer_urls = {advertise_peer};
    Status v = validate_config(c);
    if (!v.is_ok()) {
      std::fprintf(stderr, "Error: %s\n", v.message().c_str());
      return 1;
    }
    Status st = restore_backup(file, c);
    if (!st.is_ok()) {
      std::fprintf(stderr, "Error: %s\n", st.message().c_str());
      return 1;
    }
    std::printf("restored snapshot %s into %s (member %s of %zu, cluster id %s); start it with "
                "--initial-cluster-state new and the same --initial-cluster\n",
                file.c_str(), c.data_dir.c_str(), c.name.c_str(), c.initial_members.size(),
                format_id(c.cluster_id).c_str());
    return 0;
  }
  std::error_code ec;
  fsys::path scratch = fsys::temp_directory_path(ec);
  Result<BackupStatus> st = backup_status(file, ec ? std::string("/tmp") : scratch.string());
  if (!st) {
    std::fprintf(stderr, "Error: %s\n", st.status().message().c_str());
    return 1;
  }
  if (format == "json") {
    std::printf("{\"hash\":%u,\"revision\":%lld,\"totalKey\":%llu,\"totalSize\":%llu}\n", st->hash,
                static_cast<long long>(st->revision),
                static_cast<unsigned long long>(st->total_keys),
                static_cast<unsigned long long>(st->total_size_bytes));
  } else {
    std::printf("%x, %lld, %llu, %llu\n", st->hash, static_cast<long long>(st->revision),
                static_cast<unsigned long long>(st->total_keys),
                static_cast<unsigned long long>(st->total_size_bytes));
  }
  return 0;
}

}  // namespace raftkv::server
