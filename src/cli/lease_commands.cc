// raftkvctl's lease, lock and elect script commands (docs/cli.md).
#include <fmt/format.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <thread>

#include "cli/command_util.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/terminal.h"

namespace raftkv::cli {
namespace {

namespace pb = etcdserverpb;
using client::Client;

constexpr int64_t kDefaultLockTtlSeconds = 60;

// ------------------------------------------------------------------ lease

Result<int64_t> lease_id_arg(const std::string& text) {
  auto id = parse_hex_id(text);
  if (!id.is_ok()) return id.status();
  return static_cast<int64_t>(*id);
}

void add_lease(CLI::App& app, Plan& plan) {
  auto* lease =
      app.add_subcommand("lease", "Lease commands: grant, revoke, timetolive, keep-alive, list");
  lease->require_subcommand(1);

  auto ttl = std::make_shared<int64_t>(0);
  auto* grant = lease->add_subcommand("grant", "Creates a lease with the TTL in seconds");
  grant->add_option("ttl", *ttl, "Seconds")->required();
  grant->callback([&plan, ttl] {
    plan = {"lease grant", [ttl](Context& ctx) {
              pb::LeaseGrantRequest req;
              req.set_ttl(*ttl);
              auto r = ctx.client.lease_grant(req);
              if (!r.is_ok()) return fail(r.status());
              if (!r->error().empty()) return fail(Status::internal(r->error()));
              out(render_lease_grant(*r, ctx.format));
              return int{kExitOk};
            }};
  });

  auto id = std::make_shared<std::string>();
  auto* revoke = lease->add_subcommand("revoke", "Revokes a lease (deletes its keys)");
  revoke->add_option("id", *id, "Lease ID (hex)")->required();
  revoke->callback([&plan, id] {
    plan = {"lease revoke", [id](Context& ctx) {
              auto lid = lease_id_arg(*id);
              if (!lid.is_ok()) return usage_error(lid.status().message());
              pb::LeaseRevokeRequest req;
              req.set_id(*lid);
              auto r = ctx.client.lease_revoke(req);
              if (!r.is_ok()) return fail(r.status());
              out(render_lease_revoke(*lid, *r, ctx.format));
              return int{kExitOk};
            }};
  });

  auto keys = std::make_shared<bool>(false);
  auto* ttl_cmd = lease->add_subcommand("timetolive", "Shows a lease's remaining TTL");
  ttl_cmd->add_option("id", *id, "Lease ID (hex)")->required();
  ttl_cmd->add_flag("--keys", *keys, "Also list the attached keys");
  ttl_cmd->callback([&plan, id, keys] {
    plan = {"lease timetolive", [id, keys](Context& ctx) {
              auto lid = lease_id_arg(*id);
              if (!lid.is_ok()) return usage_error(lid.status().message());
              pb::LeaseTimeToLiveRequest req;
              req.set_id(*lid);
              req.set_keys(*keys);
              auto r = ctx.client.lease_time_to_live(req);
              if (!r.is_ok()) return fail(r.status());
              out(render_lease_ttl(*r, ctx.format, *keys));
              return int{kExitOk};
            }};
  });

  auto* list = lease->add_subcommand("list", "Lists the leases");
  list->callback([&plan] {
    plan = {"lease list", [](Context& ctx) {
              auto r = ctx.client.lease_leases();
              if (!r.is_ok()) return fail(r.status());
              out(render_lease_list(*r, ctx.format));
              return int{kExitOk};
            }};
  });

  auto once = std::make_shared<bool>(false);
  auto* ka = lease->add_subcommand("keep-alive", "Keeps a lease alive until Ctrl-C");
  ka->add_option("id", *id, "Lease ID (hex)")->required();
  ka->add_flag("--once", *once, "Renew once and exit");
  ka->callback([&plan, id, once] {
    plan = {"lease keep-alive", [id, once](Context& ctx) {
              auto lid = lease_id_arg(*id);
              if (!lid.is_ok()) return usage_error(lid.status().message());
              auto stream = ctx.client.keep_alive(*lid);
              if (!stream.is_ok()) return fail(stream.status());
              client::CancelOnFlag canceller(&interrupt_flag(),
                                             [s = stream->get()] { s->cancel(); });
              while (!interrupted()) {
                auto r = (*stream)->refresh();
                if (interrupted()) break;
                if (!r.is_ok()) return fail(r.status());
                if (r->ttl() <= 0) {
                  return fail(
                      Status::not_found(fmt::format("lease {} expired or revoked", hex_id(*lid))));
                }
                out(render_lease_keepalive(*r, ctx.format));
                if (*once) break;
                // Renew at a third of the TTL, waking early on Ctrl-C.
                for (int64_t ms = 0; ms < r->ttl() * 1000 / 3 && !interrupted(); ms += 100) {
                  std::this_thread::sleep_for(std::chrono::milliseconds(100));
                }
              }
              return int{kExitOk};
            }};
  });
}

// ------------------------------------------------------------------ lock / elect

/// Grants a lease and keeps it alive; the common start of lock and elect.
struct KeptLease {
  int64_t id = 0;
  std::unique_ptr<client::LeaseKeeper> keeper;
};

Result<KeptLease> grant_kept_lease(Client& c, int64_t ttl_s) {
  pb::LeaseGrantRequest grant;
  grant.set_ttl(ttl_s);
  auto lease = c.lease_grant(grant);
  if (!lease.is_ok()) return lease.status();
  auto stream = c.keep_alive(lease->id());
  if (!stream.is_ok()) return stream.status();
  KeptLease k;
  k.id = lease->id();
  k.keeper = std::make_unique<client::LeaseKeeper>(std::move(*stream), lease->ttl());
  return k;
}

void revoke_quietly(Client& c, KeptLease& k) {
  k.keeper->stop();
  pb::LeaseRevokeRequest revoke;
  revoke.set_id(k.id);
  (void)c.lease_revoke(revoke);  // best effort: the lease expires by itself otherwise
}

/// Blocks until Ctrl-C or the lease is lost; returns the exit code.
int hold_until_interrupted(const KeptLease& k) {
  while (!interrupted() && !k.keeper->lost()) {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }
  if (k.keeper->lost()) return fail(Status::unavailable("lost the lease that kept ownership"));
  return kExitOk;
}

/// Runs `argv` with the lock's key and revision in the environment; its exit code.
int run_locked_command(const std::vector<std::string>& argv, const client::Ownership& own) {
  pid_t pid = fork();
  if (pid < 0) return fail(Status::io_error("fork failed"));
  if (pid == 0) {
    setenv("ETCD_LOCK_KEY", own.key.c_str(), 1);
    setenv("ETCD_LOCK_REV", std::to_string(own.fencing_token).c_str(), 1);
    std::vector<char*> args;
    for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
    args.push_back(nullptr);
    execvp(args[0], args.data());
    std::fprintf(stderr, "error: cannot run %s\n", args[0]);
    _exit(127);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) ? WEXITSTATUS(status) : kExitFailed;
}

void add_lock(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string name;
    std::vector<std::string> command;
    int64_t ttl = kDefaultLockTtlSeconds;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "lock",
      "Acquires a named lock, prints its key, and holds it until Ctrl-C (or runs a command)");
  sub->add_option("name", o->name, "Lock name")->required();
  sub->add_option("--ttl", o->ttl, "Lease TTL in seconds (the lock outlives a crash this long)");
  // Everything after the name is the command to run while holding the lock, flags included.
  sub->prefix_command();
  sub->fallthrough(false);
  sub->footer(
      "Usage with a command: raftkvctl lock NAME COMMAND [ARGS...]; the command sees "
      "ETCD_LOCK_KEY and ETCD_LOCK_REV (the fencing token).");
  sub->callback([&plan, o, sub] {
    o->command = sub->remaining();
    plan = {"lock", [o](Context& ctx) {
              auto lease = grant_kept_lease(ctx.client, o->ttl);
              if (!lease.is_ok()) return fail(lease.status());
              auto own = client::acquire(ctx.client, o->name, "", lease->id, &interrupt_flag());
              if (!own.is_ok()) {
                revoke_quietly(ctx.client, *lease);
                return interrupted() ? int{kExitOk} : fail(own.status());
              }
              int code = kExitOk;
              if (o->command.empty()) {
                out(own->key + "\n");
                code = hold_until_interrupted(*lease);
              } else {
                code = run_locked_command(o->command, *own);
              }
              revoke_quietly(ctx.client, *lease);
              return code;
            }};
  });
}

void add_elect(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string name, proposal;
    bool listen = false;
    int64_t ttl = kDefaultLockTtlSeconds;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand(
      "elect", "Campaigns in an election with a proposal, or observes it with -l");
  sub->add_option("name", o->name, "Election name")->required();
  sub->add_option("proposal", o->proposal, "Value announced when elected");
  sub->add_flag("-l,--listen", o->listen, "Print the leader each time it changes");
  sub->add_option("--ttl", o->ttl, "Lease TTL in seconds");
  sub->callback([&plan, o] {
    plan = {"elect", [o](Context& ctx) {
              if (o->listen) {
                Status s = client::observe_leader(
                    ctx.client, o->name,
                    [](const mvccpb::KeyValue& kv) { out(kv.key() + "\n" + kv.value() + "\n"); },
                    &interrupt_flag());
                return s.is_ok() ? int{kExitOk} : fail(s);
              }
              if (o->proposal.empty())
                return usage_error("elect needs a proposal (or -l to listen)");
              auto lease = grant_kept_lease(ctx.client, o->ttl);
              if (!lease.is_ok()) return fail(lease.status());
              auto own =
                  client::acquire(ctx.client, o->name, o->proposal, lease->id, &interrupt_flag());
              if (!own.is_ok()) {
                revoke_quietly(ctx.client, *lease);
                return interrupted() ? int{kExitOk} : fail(own.status());
              }
              out(own->key + "\n" + o->proposal + "\n");
              int code = hold_until_interrupted(*lease);
              revoke_quietly(ctx.client, *lease);  // resign
              return code;
            }};
  });
}

}  // namespace

void add_lease_commands(CLI::App& app, Plan& plan) {
  add_lease(app, plan);
  add_lock(app, plan);
  add_elect(app, plan);
}

}  // namespace raftkv::cli
