// Shared pieces of raftkvctl's script commands (commands.h): how a parsed command line
// becomes an action, output and error helpers, and the key-range flags that get, del,
// watch and txn share. Internal to src/cli/; main thread only.
#pragma once

#include <CLI/CLI.hpp>
#include <functional>
#include <string>
#include <string_view>

#include "base/status.h"
#include "cli/client.h"
#include "cli/recipes.h"
#include "cli/render.h"

namespace raftkv::cli {

/// What an action gets: the connected client and the -w format.
struct Context {
  client::Client& client;
  OutputFormat format;
};
/// Runs a parsed command; returns the exit code (commands.h).
using Action = std::function<int(Context&)>;

/// What a parsed command line asks for: the command's name (for -w checks) and its action.
/// Each add_* registers its subcommands on `app`; their callbacks fill `plan` when parsed.
struct Plan {
  std::string command;
  Action action;
};

void add_kv_commands(CLI::App& app, Plan& plan);       ///< put, get, del, txn, watch
void add_lease_commands(CLI::App& app, Plan& plan);    ///< lease …, lock, elect
void add_cluster_commands(CLI::App& app, Plan& plan);  ///< member, endpoint, compaction, snapshot

/// Writes to stdout as bytes (values may be binary) and flushes.
void out(std::string_view text);
/// Prints "error: …" and a pointer to --help; returns kExitUsage.
int usage_error(std::string_view message);
/// Prints a failed operation; returns 3 when the cluster is unavailable, else 1.
int fail(const Status& s);

/// --prefix / --from-key, shared by get, del and watch.
struct RangeFlags {
  bool prefix = false;
  bool from_key = false;
};
void add_range_flags(CLI::App* sub, RangeFlags* f);

/// Fills key/range_end for `key [range_end]` with --prefix / --from-key, like etcdctl.
template <typename Req>
Status set_range(Req* req, const std::string& key, const std::string& range_end,
                 const RangeFlags& f) {
  if (f.prefix && f.from_key) {
    return Status::invalid_argument("bad flags: use --prefix or --from-key, not both");
  }
  if ((f.prefix || f.from_key) && !range_end.empty()) {
    return Status::invalid_argument(
        "bad arguments: a range end cannot be combined with --prefix or --from-key");
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

/// A hex lease id from a flag; "" is no lease (0).
Result<int64_t> parse_lease_flag(const std::string& text);

}  // namespace raftkv::cli
