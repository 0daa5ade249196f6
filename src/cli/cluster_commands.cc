// raftkvctl's cluster and maintenance script commands: member, endpoint, compaction, snapshot
// (docs/cli.md).
#include <fmt/format.h>
#include <openssl/evp.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <memory>
#include <vector>

#include "base/check.h"
#include "cli/command_util.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/terminal.h"

namespace raftkv::cli {
namespace {

namespace pb = etcdserverpb;
using client::Client;

// ------------------------------------------------------------------ cluster and maintenance

void add_member(CLI::App& app, Plan& plan) {
  auto* member = app.add_subcommand("member", "Membership commands: list");
  member->require_subcommand(1);
  auto* list = member->add_subcommand("list", "Lists the cluster's members");
  list->callback([&plan] {
    plan = {"member list", [](Context& ctx) {
              auto r = ctx.client.member_list();
              if (!r.is_ok()) return fail(r.status());
              out(render_member_list(*r, ctx.format));
              return int{kExitOk};
            }};
  });
}

/// The endpoints an `endpoint` command addresses: --endpoints, or every member's client URL.
Result<std::vector<std::string>> endpoint_targets(Client& c, bool cluster) {
  if (!cluster) return c.options().endpoints;
  auto r = c.member_list();
  if (!r.is_ok()) return r.status();
  std::vector<std::string> eps;
  for (const auto& m : r->members()) {
    for (const auto& u : m.clienturls()) eps.push_back(client::endpoint_from_url(u));
  }
  return eps;
}

/// 0 when every endpoint passed, 3 when none did, 1 otherwise.
int partial_exit_code(size_t passed, size_t total) {
  if (passed == total) return kExitOk;
  return passed == 0 ? kExitUnavailable : kExitFailed;
}

void add_endpoint(CLI::App& app, Plan& plan) {
  auto* ep = app.add_subcommand("endpoint", "Endpoint commands: status, health");
  ep->require_subcommand(1);
  auto cluster = std::make_shared<bool>(false);
  auto* status = ep->add_subcommand("status", "Prints each endpoint's status");
  status->add_flag("--cluster", *cluster, "Ask every member of the cluster");
  status->callback([&plan, cluster] {
    plan = {"endpoint status", [cluster](Context& ctx) {
              auto targets = endpoint_targets(ctx.client, *cluster);
              if (!targets.is_ok()) return fail(targets.status());
              std::vector<EndpointStatus> all;
              size_t ok = 0;
              for (const auto& e : *targets) {
                auto r = ctx.client.status(e);
                EndpointStatus s{e, std::nullopt, ""};
                if (r.is_ok()) {
                  s.status = *r;
                  ++ok;
                } else {
                  std::fprintf(stderr, "error: %s\n", r.status().message().c_str());
                }
                all.push_back(std::move(s));
              }
              out(render_endpoint_status(all, ctx.format));
              return partial_exit_code(ok, all.size());
            }};
  });
  auto* health =
      ep->add_subcommand("health", "Checks that each endpoint serves a linearizable read");
  health->add_flag("--cluster", *cluster, "Check every member of the cluster");
  health->callback([&plan, cluster] {
    plan = {"endpoint health", [cluster](Context& ctx) {
              auto targets = endpoint_targets(ctx.client, *cluster);
              if (!targets.is_ok()) return fail(targets.status());
              std::vector<EndpointHealth> all;
              size_t ok = 0;
              for (const auto& e : *targets) {
                client::ClientOptions one = ctx.client.options();
                one.endpoints = {e};
                auto c = Client::create(one);
                if (!c.is_ok()) return fail(c.status());
                pb::RangeRequest req;
                req.set_key("health");
                auto start = std::chrono::steady_clock::now();
                auto r = (*c)->range(req);
                auto took = std::chrono::duration_cast<std::chrono::microseconds>(
                    std::chrono::steady_clock::now() - start);
                // Permission denied still proves the member committed a read through raft.
                bool healthy = r.is_ok() || r.status().code() == Code::kPermissionDenied;
                ok += healthy ? 1 : 0;
                all.push_back({e, healthy, took.count(), healthy ? "" : r.status().message()});
              }
              out(render_endpoint_health(all, ctx.format));
              return partial_exit_code(ok, all.size());
            }};
  });
}

void add_compaction(CLI::App& app, Plan& plan) {
  struct Opts {
    int64_t rev = 0;
    bool physical = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("compaction", "Discards history before the given revision");
  sub->add_option("revision", o->rev, "Revision")->required();
  sub->add_flag("--physical", o->physical, "Wait until the old revisions are removed from disk");
  sub->callback([&plan, o] {
    plan = {"compaction", [o](Context& ctx) {
              pb::CompactionRequest req;
              req.set_revision(o->rev);
              req.set_physical(o->physical);
              auto r = ctx.client.compact(req);
              if (!r.is_ok()) return fail(r.status());
              out(render_compaction(o->rev));
              return int{kExitOk};
            }};
  });
}

/// Checks etcd's snapshot trailer: the length is 32 more than a multiple of 512 and the
/// last 32 bytes are the SHA-256 of everything before them.
Status verify_snapshot(const std::string& path, uint64_t size) {
  if (size < 32 || (size - 32) % 512 != 0) {
    return Status::corruption(
        fmt::format("snapshot of {} bytes has no SHA-256 trailer (size must be 512*k + 32)", size));
  }
  std::ifstream in(path, std::ios::binary);
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> sha(EVP_MD_CTX_new(), EVP_MD_CTX_free);
  RAFTKV_CHECK(sha != nullptr && EVP_DigestInit_ex(sha.get(), EVP_sha256(), nullptr) == 1);
  std::vector<char> buf(1 << 16);
  uint64_t left = size - 32;
  while (left > 0 && in) {
    auto n = static_cast<std::streamsize>(std::min<uint64_t>(left, buf.size()));
    in.read(buf.data(), n);
    RAFTKV_CHECK(EVP_DigestUpdate(sha.get(), buf.data(), static_cast<size_t>(in.gcount())) == 1);
    left -= static_cast<uint64_t>(in.gcount());
  }
  unsigned char want[32], got[32];
  in.read(reinterpret_cast<char*>(want), 32);
  if (left != 0 || in.gcount() != 32) return Status::io_error("cannot read back " + path);
  unsigned int got_len = 0;
  RAFTKV_CHECK(EVP_DigestFinal_ex(sha.get(), got, &got_len) == 1 && got_len == 32);
  if (std::memcmp(want, got, 32) != 0) {
    return Status::corruption("snapshot SHA-256 mismatch: the download is damaged; try again");
  }
  return Status::ok();
}

/// Runs `raftkv snapshot <args>`: restore and status work on the store's
/// files, which only the server's code reads (this tool is a client of the
/// public API). Looks for `raftkv` beside this executable, then in the build
/// tree's layout (../server/raftkv), then on PATH. Returns only on failure.
int exec_server_snapshot(const std::vector<std::string>& args) {
  std::vector<std::string> argv{"raftkv", "snapshot"};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  std::error_code ec;
  const std::filesystem::path self = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (!ec) {
    for (const auto& cand : {self.parent_path() / "raftkv",
                             self.parent_path().parent_path() / "server" / "raftkv"}) {
      if (::access(cand.c_str(), X_OK) == 0) ::execv(cand.c_str(), cargv.data());
    }
  }
  ::execvp("raftkv", cargv.data());
  return fail(Status::not_found(
      "cannot run the raftkv server binary (needed for snapshot restore/status): put it beside "
      "raftkvctl or on PATH"));
}

void add_snapshot(CLI::App& app, Plan& plan) {
  auto* snap = app.add_subcommand("snapshot", "Snapshot commands: save, restore, status");
  snap->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto* save = snap->add_subcommand("save", "Stores a snapshot of the member's database in a file");
  save->add_option("file", *path, "Destination file")->required();
  save->callback([&plan, path] {
    plan = {"snapshot save", [path](Context& ctx) {
              const std::string part = *path + ".part";
              std::FILE* f = std::fopen(part.c_str(), "wb");
              if (f == nullptr)
                return fail(Status::io_error(fmt::format("cannot create {}", part)));
              uint64_t written = 0;
              Progress progress("snapshot", 0, true);
              Status s = ctx.client.snapshot(
                  [&](const pb::SnapshotResponse& chunk) {
                    if (std::fwrite(chunk.blob().data(), 1, chunk.blob().size(), f) !=
                        chunk.blob().size()) {
                      return Status::io_error(fmt::format("cannot write {}", part));
                    }
                    written += chunk.blob().size();
                    progress.update(written, written + chunk.remaining_bytes());
                    return Status::ok();
                  },
                  &interrupt_flag());
              progress.finish();
              bool closed = std::fflush(f) == 0 && fsync(fileno(f)) == 0;
              closed = std::fclose(f) == 0 && closed;
              if (s.is_ok() && !closed) s = Status::io_error(fmt::format("cannot sync {}", part));
              if (s.is_ok()) s = verify_snapshot(part, written);
              if (s.is_ok() && std::rename(part.c_str(), path->c_str()) != 0) {
                s = Status::io_error(fmt::format("cannot rename {} to {}", part, *path));
              }
              if (!s.is_ok()) {
                std::remove(part.c_str());
                return fail(s);
              }
              out(fmt::format("Snapshot saved at {}\n", *path));
              return int{kExitOk};
            }};
  });

  struct RestoreFlags {
    std::string file, data_dir, name = "default", initial_cluster, token = "etcd-cluster",
        peer_urls = "http://127.0.0.1:2380";
  };
  auto r = std::make_shared<RestoreFlags>();
  auto* restore = snap->add_subcommand(
      "restore", "Restores a snapshot file into the data directory of a member of a new cluster");
  restore->add_option("file", r->file, "Snapshot file")->required();
  restore->add_option("--data-dir", r->data_dir, "Path to the data directory (default <name>.raftkv)");
  restore->add_option("--name", r->name, "Human-readable name for this member")->capture_default_str();
  restore->add_option("--initial-cluster", r->initial_cluster,
                      "Initial cluster configuration for restore bootstrap (name=url,...)");
  restore->add_option("--initial-cluster-token", r->token,
                      "Initial cluster token for the cluster during restore bootstrap")
      ->capture_default_str();
  restore->add_option("--initial-advertise-peer-urls", r->peer_urls,
                      "This member's peer URL to advertise to the rest of the cluster")
      ->capture_default_str();
  restore->callback([&plan, r] {
    plan = {"snapshot restore", [r](Context&) {
              std::vector<std::string> args{"restore", r->file, "--name", r->name,
                                            "--initial-cluster-token", r->token,
                                            "--initial-advertise-peer-urls", r->peer_urls};
              if (!r->data_dir.empty()) args.insert(args.end(), {"--data-dir", r->data_dir});
              if (!r->initial_cluster.empty())
                args.insert(args.end(), {"--initial-cluster", r->initial_cluster});
              return exec_server_snapshot(args);
            }};
  });
  auto status_file = std::make_shared<std::string>();
  auto* status = snap->add_subcommand("status", "Prints a snapshot file's hash, revision, keys, size");
  status->add_option("file", *status_file, "Snapshot file")->required();
  status->callback([&plan, status_file] {
    plan = {"snapshot status", [status_file](Context& ctx) {
              return exec_server_snapshot({"status", *status_file, "-w",
                                           ctx.format == OutputFormat::kJson ? "json" : "simple"});
            }};
  });
}

}  // namespace

void add_cluster_commands(CLI::App& app, Plan& plan) {
  add_member(app, plan);
  add_endpoint(app, plan);
  add_compaction(app, plan);
  add_snapshot(app, plan);
}

}  // namespace raftkv::cli
