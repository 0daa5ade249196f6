// raftkvctl's key-value script commands: put, get, del, txn, watch (docs/cli.md).
#include <fmt/format.h>

#include <iostream>
#include <iterator>
#include <map>
#include <memory>
#include <optional>
#include <regex>

#include "cli/command_util.h"
#include "cli/commands.h"
#include "cli/format.h"
#include "cli/terminal.h"
#include "cli/tokenizer.h"

namespace raftkv::cli {
namespace {

namespace pb = etcdserverpb;
using client::Client;

constexpr size_t kMaxTxnLines = 10000;

// ------------------------------------------------------------------ put / get / del

void add_put(CLI::App& app, Plan& plan) {
  struct Opts {
    std::string key, value, lease;
    bool value_given = false, prev_kv = false, ignore_value = false, ignore_lease = false;
  };
  auto o = std::make_shared<Opts>();
  auto* sub =
      app.add_subcommand("put", "Puts the given key into the store (value from stdin if omitted)");
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
  sub->add_flag("--strict", o->strict,
                "Exit with code 1 when no key matches (raftkvctl extension)");
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
                if (o->order != "ASCEND" && o->order != "DESCEND")
                  return usage_error("--order must be ASCEND or DESCEND");
                req.set_sort_order(o->order == "ASCEND" ? pb::RangeRequest::ASCEND
                                                        : pb::RangeRequest::DESCEND);
              }
              if (!o->sort_by.empty()) {
                static const std::map<std::string, pb::RangeRequest::SortTarget> kTargets = {
                    {"KEY", pb::RangeRequest::KEY},
                    {"CREATE", pb::RangeRequest::CREATE},
                    {"MODIFY", pb::RangeRequest::MOD},
                    {"VALUE", pb::RangeRequest::VALUE},
                    {"VERSION", pb::RangeRequest::VERSION}};
                auto it = kTargets.find(o->sort_by);
                if (it == kTargets.end())
                  return usage_error("--sort-by must be KEY, CREATE, MODIFY, VALUE or VERSION");
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
  sub->add_flag("--strict", o->strict,
                "Exit with code 1 when nothing was deleted (raftkvctl extension)");
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
  c.set_result(op == "="    ? pb::Compare::EQUAL
               : op == "!=" ? pb::Compare::NOT_EQUAL
               : op == "<"  ? pb::Compare::LESS
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
  if (!n)
    return Status::invalid_argument(
        fmt::format("bad compare \"{}\": \"{}\" is not a number", line, v));
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

/// One operation line: put key value [--lease=id] | get key [end] [--prefix] | del key [end]
/// [--prefix]
Result<pb::RequestOp> parse_op(const std::string& line) {
  auto words = tokenize(line);
  if (!words.is_ok())
    return Status::invalid_argument(
        fmt::format("bad request \"{}\": {}", line, words.status().message()));
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
  if ((verb == "get" || verb == "del" || verb == "delete") &&
      (args.size() == 1 || args.size() == 2)) {
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

}  // namespace

void add_kv_commands(CLI::App& app, Plan& plan) {
  add_put(app, plan);
  add_get(app, plan);
  add_del(app, plan);
  add_txn(app, plan);
  add_watch(app, plan);
}

}  // namespace raftkv::cli
