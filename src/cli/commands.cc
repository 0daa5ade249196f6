#include "cli/commands.h"

#include <CLI/CLI.hpp>
#include <fmt/format.h>
#include <openssl/evp.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <fstream>
#include <iostream>
#include <iterator>
#include <regex>
#include <thread>

#include "base/check.h"
#include "cli/client.h"
#include "cli/format.h"
#include "cli/recipes.h"
#include "cli/render.h"
#include "cli/shell.h"
#include "cli/terminal.h"
#include "cli/tokenizer.h"

namespace raftkv::cli {
namespace {

namespace pb = etcdserverpb;
using client::Client;

constexpr int64_t kDefaultLockTtlSeconds = 60;
constexpr size_t kMaxTxnLines = 10000;

struct Context {
  Client& client;
  OutputFormat format;
};
using Action = std::function<int(Context&)>;

/// What a parsed command line asks for: the command's name (for -w checks) and its action.
struct Plan {
  std::string command;
  Action action;
};

void out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int usage_error(std::string_view message) {
  std::fprintf(stderr, "error: %.*s\nRun 'raftkvctl --help' for usage.\n",
               static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

/// Prints a failed operation and returns its exit code (3 when the cluster is unavailable).
int fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  if (client::is_unavailable(s)) return kExitUnavailable;
  if (s.code() == Code::kInvalidArgument && s.message().rfind("bad ", 0) == 0) return kExitUsage;
  return kExitFailed;
}

// ------------------------------------------------------------------ key ranges

struct RangeFlags {
  bool prefix = false;
  bool from_key = false;
};

void add_range_flags(CLI::App* sub, RangeFlags* f) {
  sub->add_flag("--prefix", f->prefix, "Treat the key as a prefix");
  sub->add_flag("--from-key", f->from_key, "Every key >= the key (byte order)");
}

/// Fills key/range_end for `key [range_end]` with --prefix / --from-key, like etcdctl.
template <typename Req>
Status set_range(Req* req, const std::string& key, const std::string& range_end,
                 const RangeFlags& f) {
  if (f.prefix && f.from_key) return Status::invalid_argument("bad flags: use --prefix or --from-key, not both");
  if ((f.prefix || f.from_key) && !range_end.empty()) {
    return Status::invalid_argument("bad arguments: a range end cannot be combined with --prefix or --from-key");
  }
  if (f.prefix) {
    req->set_key(key.empty() ? std::string(1, '\0') : key);
    req->set_range_end(client::prefix_range_end(key));
  } else if (f.from_key) {
    req->set_key(key.empty() ? std::string(1, '\0') : key);
    req->set_range_end(std::string(1, '\0'));
  } else {
    req->set_key(key);
    req->set_range_end(range_end);
  }
  return Status::ok();
}

Result<int64_t> parse_lease_flag(const std::string& text) {
  if (text.empty()) return int64_t{0};
  auto id = parse_hex_id(text);
  if (!id.is_ok()) return id.status();
  return static_cast<int64_t>(*id);
}

// ------------------------------------------------------------------ put / get / del

void add_put(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string key, value, lease;
    bool value_given = false, prev_kv = false, ignore_value = false, ignore_lease = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("put", "Puts the given key into the store (value from stdin if omitted)");
  sub->add_option("key", o->key, "Key")->required();
  sub->add_option("value", o->value, "Value");
  sub->add_option("--lease", o->lease, "Lease ID (hex) to attach to the key");
  sub->add_flag("--prev-kv", o->prev_kv, "Print the previous key-value pair");
  sub->add_flag("--ignore-value", o->ignore_value, "Keep the current value");
  sub->add_flag("--ignore-lease", o->ignore_lease, "Keep the current lease");
  sub->callback([&plan, o, sub] {
    o->value_given = sub->count("value") > 0;
    plan = {"put", [o](Context& ctx) {
              pb::PutRequest req;
              req.set_key(o->key);
              if (!o->value_given && !o->ignore_value) {
                o->value.assign(std::istreambuf_iterator<char>(std::cin), {});
              }
              req.set_value(o->value);
              auto lease = parse_lease_flag(o->lease);
              if (!lease.is_ok()) return usage_error(lease.status().message());
              req.set_lease(*lease);
              req.set_prev_kv(o->prev_kv);
              req.set_ignore_value(o->ignore_value);
              req.set_ignore_lease(o->ignore_lease);
              auto r = ctx.client.put(req);
              if (!r.is_ok()) return fail(r.status());
              out(render_put(*r, ctx.format));
              return int{kExitOk};
            }};
  });
}


void add_get(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string key, range_end, order, sort_by, consistency = "l";
    RangeFlags range;
    int64_t limit = 0, rev = 0;
    bool keys_only = false, print_value_only = false, count_only = false, strict = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("get", "Gets the key or a range of keys");
  sub->add_option("key", o->key, "Key")->required();
  sub->add_option("range_end", o->range_end, "End of the range [key, range_end)");
  add_range_flags(sub, &o->range);
  sub->add_option("--limit", o->limit, "Maximum number of results");
  sub->add_option("--rev", o->rev, "Read at this revision");
  sub->add_option("--order", o->order, "ASCEND or DESCEND");
  sub->add_option("--sort-by", o->sort_by, "KEY, CREATE, MODIFY, VALUE or VERSION");
  sub->add_option("--consistency", o->consistency, "l (linearizable) or s (serializable)");
  sub->add_flag("--keys-only", o->keys_only, "Print only keys");
  sub->add_flag("--print-value-only", o->print_value_only, "Print only values");
  sub->add_flag("--count-only", o->count_only, "Print only the number of keys");
  sub->add_flag("--strict", o->strict, "Exit with code 1 when no key matches (raftkvctl extension)");
  sub->callback([&plan, o] {
    plan = {"get", [o](Context& ctx) {
              pb::RangeRequest req;
              Status s = set_range(&req, o->key, o->range_end, o->range);
              if (!s.is_ok()) return usage_error(s.message());
              req.set_limit(o->limit);
              req.set_revision(o->rev);
              req.set_keys_only(o->keys_only);
              req.set_count_only(o->count_only);
              if (o->consistency != "l" && o->consistency != "s") {
                return usage_error("--consistency must be l or s");
              }
              req.set_serializable(o->consistency == "s");
              if (!o->order.empty()) {
                if (o->order != "ASCEND" && o->order != "DESCEND") return usage_error("--order must be ASCEND or DESCEND");
                req.set_sort_order(o->order == "ASCEND" ? pb::RangeRequest::ASCEND : pb::RangeRequest::DESCEND);
              }
              if (!o->sort_by.empty()) {
                static const std::map<std::string, pb::RangeRequest::SortTarget> kTargets = {
                    {"KEY", pb::RangeRequest::KEY}, {"CREATE", pb::RangeRequest::CREATE},
                    {"MODIFY", pb::RangeRequest::MOD}, {"VALUE", pb::RangeRequest::VALUE},
                    {"VERSION", pb::RangeRequest::VERSION}};
                auto it = kTargets.find(o->sort_by);
                if (it == kTargets.end()) return usage_error("--sort-by must be KEY, CREATE, MODIFY, VALUE or VERSION");
                req.set_sort_target(it->second);
                if (o->order.empty()) req.set_sort_order(pb::RangeRequest::ASCEND);
              }
              auto r = ctx.client.range(req);
              if (!r.is_ok()) return fail(r.status());
              if (o->count_only && ctx.format == OutputFormat::kSimple) {
                out(fmt::format("{}\n", r->count()));
              } else {
                out(render_get(*r, ctx.format, {o->keys_only, o->print_value_only}));
              }
              if (o->strict && r->count() == 0) {
                return fail(Status::not_found(fmt::format("key \"{}\" not found", o->key)));
              }
              return int{kExitOk};
            }};
  });
}

void add_del(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string key, range_end;
    RangeFlags range;
    bool prev_kv = false, strict = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("del", "Removes the key or a range of keys");
  sub->alias("delete");
  sub->add_option("key", o->key, "Key")->required();
  sub->add_option("range_end", o->range_end, "End of the range [key, range_end)");
  add_range_flags(sub, &o->range);
  sub->add_flag("--prev-kv", o->prev_kv, "Print the deleted key-value pairs");
  sub->add_flag("--strict", o->strict, "Exit with code 1 when nothing was deleted (raftkvctl extension)");
  sub->callback([&plan, o] {
    plan = {"del", [o](Context& ctx) {
              pb::DeleteRangeRequest req;
              Status s = set_range(&req, o->key, o->range_end, o->range);
              if (!s.is_ok()) return usage_error(s.message());
              req.set_prev_kv(o->prev_kv);
              auto r = ctx.client.delete_range(req);
              if (!r.is_ok()) return fail(r.status());
              out(render_delete(*r, ctx.format));
              if (o->strict && r->deleted() == 0) {
                return fail(Status::not_found(fmt::format("key \"{}\" not found", o->key)));
              }
              return int{kExitOk};
            }};
  });
}

// ------------------------------------------------------------------ txn

/// One compare line: value("key") = "v" | mod("key") > "3" | create(..) | version(..) | lease(..)
Result<pb::Compare> parse_compare(const std::string& line) {
  static const std::regex kCompare(
      R"(^\s*(\w+)\s*\(\s*("(?:[^"\\]|\\.)*")\s*\)\s*(=|!=|<|>)\s*("(?:[^"\\]|\\.)*")\s*$)");
  std::smatch m;
  if (!std::regex_match(line, m, kCompare)) {
    return Status::invalid_argument(fmt::format(
        "bad compare \"{}\": expected e.g. value(\"key\") = \"v\" or mod(\"key\") > \"3\"", line));
  }
  auto key = tokenize(m[2].str());
  auto value = tokenize(m[4].str());
  if (!key.is_ok() || !value.is_ok() || key->size() != 1 || value->size() != 1) {
    return Status::invalid_argument(fmt::format("bad compare \"{}\": bad quoting", line));
  }
  pb::Compare c;
  c.set_key((*key)[0]);
  const std::string op = m[3].str();
  c.set_result(op == "=" ? pb::Compare::EQUAL
               : op == "!=" ? pb::Compare::NOT_EQUAL
               : op == "<" ? pb::Compare::LESS
                           : pb::Compare::GREATER);
  const std::string target = m[1].str();
  const std::string& v = (*value)[0];
  if (target == "value" || target == "val") {
    c.set_target(pb::Compare::VALUE);
    c.set_value(v);
    return c;
  }
  std::optional<int64_t> n;
  if (target == "lease") {
    auto id = parse_hex_id(v);
    if (id.is_ok()) n = static_cast<int64_t>(*id);
  } else {
    n = client::parse_int64(v);
  }
  if (!n) return Status::invalid_argument(fmt::format("bad compare \"{}\": \"{}\" is not a number", line, v));
  if (target == "mod" || target == "m") {
    c.set_target(pb::Compare::MOD);
    c.set_mod_revision(*n);
  } else if (target == "create" || target == "c") {
    c.set_target(pb::Compare::CREATE);
    c.set_create_revision(*n);
  } else if (target == "version" || target == "ver") {
    c.set_target(pb::Compare::VERSION);
    c.set_version(*n);
  } else if (target == "lease") {
    c.set_target(pb::Compare::LEASE);
    c.set_lease(*n);
  } else {
    return Status::invalid_argument(fmt::format(
        "bad compare \"{}\": target must be value, mod, create, version or lease", line));
  }
  return c;
}

/// One operation line: put key value [--lease=id] | get key [end] [--prefix] | del key [end] [--prefix]
Result<pb::RequestOp> parse_op(const std::string& line) {
  auto words = tokenize(line);
  if (!words.is_ok()) return Status::invalid_argument(fmt::format("bad request \"{}\": {}", line, words.status().message()));
  std::vector<std::string> args;
  RangeFlags flags;
  std::string lease;
  for (size_t i = 1; i < words->size(); ++i) {
    const std::string& w = (*words)[i];
    if (w == "--prefix") {
      flags.prefix = true;
    } else if (w == "--from-key") {
      flags.from_key = true;
    } else if (w.rfind("--lease=", 0) == 0) {
      lease = w.substr(8);
    } else if (w.rfind("--", 0) == 0) {
      return Status::invalid_argument(fmt::format("bad request \"{}\": unknown flag {}", line, w));
    } else {
      args.push_back(w);
    }
  }
  const std::string verb = words->empty() ? "" : (*words)[0];
  pb::RequestOp op;
  if (verb == "put" && args.size() == 2) {
    auto id = parse_lease_flag(lease);
    if (!id.is_ok()) return id.status();
    auto* put = op.mutable_request_put();
    put->set_key(args[0]);
    put->set_value(args[1]);
    put->set_lease(*id);
    return op;
  }
  if ((verb == "get" || verb == "del" || verb == "delete") && (args.size() == 1 || args.size() == 2)) {
    std::string end = args.size() == 2 ? args[1] : "";
    Status s = verb == "get" ? set_range(op.mutable_request_range(), args[0], end, flags)
                             : set_range(op.mutable_request_delete_range(), args[0], end, flags);
    if (!s.is_ok()) return s;
    return op;
  }
  return Status::invalid_argument(fmt::format(
      "bad request \"{}\": expected put key value, get key [end] or del key [end]", line));
}

void add_txn(CLI::App& app, Plan& plan) {
  auto* sub = app.add_subcommand(
      "txn",
      "Runs a transaction read from stdin: compares, a blank line, success requests, a blank "
      "line, failure requests");
  sub->callback([&plan] {
    plan = {"txn", [](Context& ctx) {
              const bool interactive = stdin_is_tty();
              static const char* kPrompts[] = {"compares:\n", "success requests (get, put, del):\n",
                                               "failure requests (get, put, del):\n"};
              pb::TxnRequest req;
              int section = 0;
              if (interactive) std::fputs(kPrompts[0], stderr);
              std::string line;
              size_t lines = 0;
              while (section < 3 && lines++ < kMaxTxnLines && std::getline(std::cin, line)) {
                if (line.find_first_not_of(" \t\r") == std::string::npos) {
                  ++section;
                  if (interactive && section < 3) std::fputs(kPrompts[section], stderr);
                  continue;
                }
                if (section == 0) {
                  auto c = parse_compare(line);
                  if (!c.is_ok()) return usage_error(c.status().message());
                  *req.add_compare() = *c;
                } else {
                  auto op = parse_op(line);
                  if (!op.is_ok()) return usage_error(op.status().message());
                  *(section == 1 ? req.add_success() : req.add_failure()) = *op;
                }
              }
              auto r = ctx.client.txn(req);
              if (!r.is_ok()) return fail(r.status());
              out(render_txn(*r, ctx.format));
              return int{kExitOk};
            }};
  });
}

// ------------------------------------------------------------------ watch

void add_watch(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string key, range_end;
    RangeFlags range;
    int64_t rev = 0;
    bool prev_kv = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub = app.add_subcommand("watch", "Prints changes to the key or range until Ctrl-C");
  sub->add_option("key", o->key, "Key")->required();
  sub->add_option("range_end", o->range_end, "End of the range [key, range_end)");
  add_range_flags(sub, &o->range);
  sub->add_option("--rev", o->rev, "Start from this revision (replays history)");
  sub->add_flag("--prev-kv", o->prev_kv, "Print the previous key-value pair of each event");
  sub->callback([&plan, o] {
    plan = {"watch", [o](Context& ctx) {
              pb::WatchCreateRequest req;
              Status s = set_range(&req, o->key, o->range_end, o->range);
              if (!s.is_ok()) return usage_error(s.message());
              req.set_start_revision(o->rev);
              req.set_prev_kv(o->prev_kv);
              auto w = ctx.client.watch(req, &interrupt_flag());
              if (!w.is_ok()) return interrupted() ? int{kExitOk} : fail(w.status());
              pb::WatchResponse resp;
              while ((*w)->next(&resp)) {
                if (resp.events_size() > 0) out(render_watch(resp, ctx.format));
                if (resp.canceled()) break;
              }
              Status end = (*w)->finish();
              if (interrupted()) return int{kExitOk};
              if (!end.is_ok()) return fail(end);
              return fail(Status::unavailable(
                  fmt::format("the watch was cancelled by the server{}{}: watch again",
                              resp.cancel_reason().empty() ? "" : ": ", resp.cancel_reason())));
            }};
  });
}

// ------------------------------------------------------------------ lease

Result<int64_t> lease_id_arg(const std::string& text) {
  auto id = parse_hex_id(text);
  if (!id.is_ok()) return id.status();
  return static_cast<int64_t>(*id);
}

void add_lease(CLI::App& app, Plan& plan) {
  auto* lease = app.add_subcommand("lease", "Lease commands: grant, revoke, timetolive, keep-alive, list");
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
              client::CancelOnFlag canceller(&interrupt_flag(), [s = stream->get()] { s->cancel(); });
              while (!interrupted()) {
                auto r = (*stream)->refresh();
                if (interrupted()) break;
                if (!r.is_ok()) return fail(r.status());
                if (r->ttl() <= 0) {
                  return fail(Status::not_found(fmt::format("lease {} expired or revoked", hex_id(*lid))));
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
      "lock", "Acquires a named lock, prints its key, and holds it until Ctrl-C (or runs a command)");
  sub->add_option("name", o->name, "Lock name")->required();
  sub->add_option("--ttl", o->ttl, "Lease TTL in seconds (the lock outlives a crash this long)");
  // Everything after the name is the command to run while holding the lock, flags included.
  sub->prefix_command();
  sub->fallthrough(false);
  sub->footer("Usage with a command: raftkvctl lock NAME COMMAND [ARGS...]; the command sees "
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
  auto* sub = app.add_subcommand("elect", "Campaigns in an election with a proposal, or observes it with -l");
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
              if (o->proposal.empty()) return usage_error("elect needs a proposal (or -l to listen)");
              auto lease = grant_kept_lease(ctx.client, o->ttl);
              if (!lease.is_ok()) return fail(lease.status());
              auto own = client::acquire(ctx.client, o->name, o->proposal, lease->id, &interrupt_flag());
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
  auto* health = ep->add_subcommand("health", "Checks that each endpoint serves a linearizable read");
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
    return Status::corruption(fmt::format(
        "snapshot of {} bytes has no SHA-256 trailer (size must be 512*k + 32)", size));
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

void add_snapshot(CLI::App& app, Plan& plan) {
  auto* snap = app.add_subcommand("snapshot", "Snapshot commands: save");
  snap->require_subcommand(1);
  auto path = std::make_shared<std::string>();
  auto* save = snap->add_subcommand("save", "Stores a snapshot of the member's database in a file");
  save->add_option("file", *path, "Destination file")->required();
  save->callback([&plan, path] {
    plan = {"snapshot save", [path](Context& ctx) {
              const std::string part = *path + ".part";
              std::FILE* f = std::fopen(part.c_str(), "wb");
              if (f == nullptr) return fail(Status::io_error(fmt::format("cannot create {}", part)));
              uint64_t written = 0;
              Progress progress("snapshot", 0, true);
              Status s = ctx.client.snapshot(
                  [&](const pb::SnapshotResponse& chunk) {
                    if (std::fwrite(chunk.blob().data(), 1, chunk.blob().size(), f) != chunk.blob().size()) {
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
}

}  // namespace

int run_main(int argc, char** argv, std::string_view version) {
  CLI::App app{
      "raftkvctl: command-line client of raftkv (and etcd v3).\n"
      "Without a command it opens an interactive shell (type HELP there).",
      "raftkvctl"};
  app.fallthrough();  // global flags may follow the command: raftkvctl get k -w json
  app.set_version_flag("--version", fmt::format("raftkvctl {}", version));
  std::string endpoints = "127.0.0.1:2379", dial = "2s", command = "5s", write_out = "simple";
  app.add_option("--endpoints", endpoints, "Comma-separated host:port list")->capture_default_str();
  app.add_option("--dial-timeout", dial, "Time to wait for a connection")->capture_default_str();
  app.add_option("--command-timeout", command, "Time to wait for each request")->capture_default_str();
  app.add_option("-w,--write-out", write_out, "Output format: simple, json or table")->capture_default_str();

  Plan plan;
  add_put(app, plan);
  add_get(app, plan);
  add_del(app, plan);
  add_txn(app, plan);
  add_watch(app, plan);
  add_lease(app, plan);
  add_lock(app, plan);
  add_elect(app, plan);
  add_member(app, plan);
  add_endpoint(app, plan);
  add_compaction(app, plan);
  add_snapshot(app, plan);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return usage_error(e.what());
  }

  auto format = parse_output_format(write_out);
  if (!format.is_ok()) return usage_error(format.status().message());
  if (*format == OutputFormat::kTable && !plan.command.empty() && !supports_table(plan.command)) {
    return usage_error(fmt::format("{} has no table output: use -w simple or -w json", plan.command));
  }
  client::ClientOptions options;
  auto dial_ms = parse_duration_ms(dial);
  auto command_ms = parse_duration_ms(command);
  if (!dial_ms.is_ok()) return usage_error("--dial-timeout: " + dial_ms.status().message());
  if (!command_ms.is_ok()) return usage_error("--command-timeout: " + command_ms.status().message());
  options.dial_timeout_ms = *dial_ms;
  options.command_timeout_ms = *command_ms;
  for (size_t start = 0; start <= endpoints.size();) {
    size_t comma = endpoints.find(',', start);
    if (comma == std::string::npos) comma = endpoints.size();
    if (comma > start) options.endpoints.push_back(endpoints.substr(start, comma - start));
    start = comma + 1;
  }
  auto c = Client::create(std::move(options));
  if (!c.is_ok()) return usage_error(c.status().message());

  install_interrupt_handler();
  if (!plan.action) return run_shell(**c);
  Context ctx{**c, *format};
  return plan.action(ctx);
}

}  // namespace raftkv::cli
