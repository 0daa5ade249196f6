#include "cli/shell_commands.h"

#include <fmt/format.h>

#include <algorithm>
#include <set>

#include "cli/format.h"
#include "cli/terminal.h"

namespace raftkv::cli {
namespace {

namespace pb = etcdserverpb;

constexpr int64_t kKeysShown = 100;      // KEYS prints at most this many keys
constexpr int64_t kScanPage = 1000;      // SCAN reads this many keys per request
constexpr int64_t kHistoryDefault = 20;  // HISTORY shows this many versions by default
constexpr int64_t kHistoryMax = 10000;
constexpr int64_t kLockTtlSeconds = 30;  // LOCK's lease; renewed every 10 s while held
constexpr size_t kMaxDelKeys = 128;      // etcd's default limit of operations per txn

struct CommandInfo {
  const char* name;
  const char* usage;
  const char* summary;
  const char* example;
  size_t min_args;
  size_t max_args;  // SIZE_MAX: any number
};

const std::vector<CommandInfo>& commands() {
  static const std::vector<CommandInfo> kCommands = {
      {"SET", "SET key value [EX seconds]",
       "Stores value at key. EX attaches a new lease with that TTL: the key disappears after it.",
       "SET greeting \"hello world\" EX 60", 2, 4},
      {"GET", "GET key", "Prints the value of key, or (nil).", "GET greeting", 1, 1},
      {"DEL", "DEL key [key ...]", "Deletes the keys in one transaction; prints how many existed.",
       "DEL a b c", 1, SIZE_MAX},
      {"EXISTS", "EXISTS key [key ...]", "Prints how many of the keys exist.", "EXISTS greeting", 1,
       SIZE_MAX},
      {"KEYS", "KEYS [prefix]",
       "Lists keys starting with prefix (all keys without one), at most 100, then the total.",
       "KEYS user/", 0, 1},
      {"SCAN", "SCAN prefix [LIMIT n]",
       "Prints key = value for every key starting with prefix (\"\" for all), page by page.",
       "SCAN user/ LIMIT 10", 1, 3},
      {"INCR", "INCR key",
       "Adds 1 to the integer at key (missing = 0) atomically, by compare-and-swap on its "
       "mod revision, retried on conflict.",
       "INCR visits", 1, 1},
      {"CAS", "CAS key expected new",
       "Sets key to new only if its value is expected (one transaction).", "CAS config v1 v2", 3,
       3},
      {"TTL", "TTL key",
       "Seconds left on the key's lease; -1 if it has no lease, -2 if it does not exist.",
       "TTL session", 1, 1},
      {"HISTORY", "HISTORY key [LIMIT n]",
       "Past values of key, newest first, read at past revisions until the creation of the "
       "key or the compaction point.",
       "HISTORY config", 1, 3},
      {"WATCH", "WATCH prefix", "Prints every change to keys starting with prefix until Ctrl-C.",
       "WATCH user/", 1, 1},
      {"LOCK", "LOCK name",
       "Acquires a distributed lock (waits while someone else holds it; Ctrl-C gives up) and "
       "prints its fencing token: the lock key's create revision, larger for every later "
       "holder.",
       "LOCK deploy", 1, 1},
      {"UNLOCK", "UNLOCK", "Releases the lock taken with LOCK.", "UNLOCK", 0, 0},
      {"STATUS", "STATUS",
       "One row per member: endpoint, leader?, raft term, revision, raft index.", "STATUS", 0, 0},
      {"MEMBERS", "MEMBERS", "Lists the cluster's members.", "MEMBERS", 0, 0},
      {"HELP", "HELP [command]", "Lists the commands, or explains one.", "HELP SET", 0, 1},
      {"QUIT", "QUIT", "Leaves the shell (also EXIT or Ctrl-D).", "QUIT", 0, 0},
      {"EXIT", "EXIT", "Leaves the shell (also QUIT or Ctrl-D).", "EXIT", 0, 0},
  };
  return kCommands;
}

std::string upper(std::string_view s) {
  std::string out(s);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return out;
}

const CommandInfo* find_command(std::string_view name) {
  std::string u = upper(name);
  for (const auto& c : commands()) {
    if (u == c.name) return &c;
  }
  return nullptr;
}

/// Parses "LIMIT n" at a[i], a[i+1]. Returns false (and leaves *n) if absent.
Result<int64_t> parse_limit(const std::vector<std::string>& a, size_t i, int64_t fallback,
                            int64_t max) {
  if (a.size() <= i) return fallback;
  if (a.size() != i + 2 || upper(a[i]) != "LIMIT") {
    return Status::invalid_argument(fmt::format("unexpected \"{}\": expected LIMIT n", a[i]));
  }
  auto n = client::parse_int64(a[i + 1]);
  if (!n || *n <= 0 || *n > max) {
    return Status::invalid_argument(fmt::format("LIMIT must be a number from 1 to {}", max));
  }
  return *n;
}

std::string key_count(int64_t n) {
  return fmt::format("({} {})", n, n == 1 ? "key" : "keys");
}

std::string kv_line(const mvccpb::KeyValue& kv) {
  return escape_value(kv.key()) + " = " + escape_value(kv.value());
}

}  // namespace

const std::vector<std::string>& shell_command_names() {
  static const std::vector<std::string> kNames = [] {
    std::vector<std::string> v;
    for (const auto& c : commands()) v.emplace_back(c.name);
    return v;
  }();
  return kNames;
}

std::string shell_help(std::string_view command) {
  if (command.empty()) {
    std::string out = "Commands (case-insensitive; quote values with spaces: SET k \"a b\"):\n";
    for (const auto& c : commands()) out += fmt::format("  {:<28} {}\n", c.usage, c.summary);
    return out;
  }
  const CommandInfo* c = find_command(command);
  if (c == nullptr) {
    return fmt::format("unknown command \"{}\": type HELP for the list\n", command);
  }
  return fmt::format("usage: {}\n{}\nexample: {}\n", c->usage, c->summary, c->example);
}

ShellSession::ShellSession(client::Client& client, Sink out)
    : client_(client), out_(std::move(out)) {}

ShellSession::~ShellSession() {
  if (lock_) (void)release_lock();
}

void ShellSession::error(std::string_view message) {
  print(fmt::format("error: {}\n", message));
}

bool ShellSession::failed(const Status& s) {
  if (s.is_ok()) return false;
  error(s.message());
  return true;
}

ShellSession::Next ShellSession::execute(const std::vector<std::string>& words) {
  if (words.empty()) return Next::kContinue;
  const CommandInfo* c = find_command(words[0]);
  if (c == nullptr) {
    error(fmt::format("unknown command \"{}\": type HELP for the list", escape_value(words[0])));
    return Next::kContinue;
  }
  std::vector<std::string> a(words.begin() + 1, words.end());
  if (a.size() < c->min_args || a.size() > c->max_args) {
    error(fmt::format("wrong number of arguments for {}: usage: {}", c->name, c->usage));
    return Next::kContinue;
  }
  std::string name = c->name;
  if (name == "QUIT" || name == "EXIT") return Next::kQuit;
  if (name == "HELP") {
    print(shell_help(a.empty() ? "" : a[0]));
  } else if (name == "SET") {
    cmd_set(a);
  } else if (name == "GET") {
    cmd_get(a);
  } else if (name == "DEL") {
    cmd_del(a);
  } else if (name == "EXISTS") {
    cmd_exists(a);
  } else if (name == "KEYS") {
    cmd_keys(a);
  } else if (name == "SCAN") {
    cmd_scan(a);
  } else if (name == "INCR") {
    cmd_incr(a);
  } else if (name == "CAS") {
    cmd_cas(a);
  } else if (name == "TTL") {
    cmd_ttl(a);
  } else if (name == "HISTORY") {
    cmd_history(a);
  } else if (name == "WATCH") {
    cmd_watch(a);
  } else if (name == "LOCK") {
    cmd_lock(a);
  } else if (name == "UNLOCK") {
    cmd_unlock(a);
  } else if (name == "STATUS") {
    cmd_status(a);
  } else if (name == "MEMBERS") {
    cmd_members(a);
  }
  return Next::kContinue;
}

void ShellSession::cmd_set(const std::vector<std::string>& a) {
  pb::PutRequest put;
  put.set_key(a[0]);
  put.set_value(a[1]);
  if (a.size() > 2) {
    auto ttl = a.size() == 4 && upper(a[2]) == "EX" ? client::parse_int64(a[3]) : std::nullopt;
    if (!ttl || *ttl <= 0) {
      error("usage: SET key value [EX seconds] (seconds: a positive whole number)");
      return;
    }
    pb::LeaseGrantRequest grant;
    grant.set_ttl(*ttl);
    auto lease = client_.lease_grant(grant);
    if (failed(lease.status())) return;
    put.set_lease(lease->id());
  }
  if (failed(client_.put(put).status())) return;
  print("OK\n");
}

void ShellSession::cmd_get(const std::vector<std::string>& a) {
  pb::RangeRequest req;
  req.set_key(a[0]);
  auto r = client_.range(req);
  if (failed(r.status())) return;
  print(r->kvs_size() == 0 ? "(nil)\n" : escape_value(r->kvs(0).value()) + "\n");
}

void ShellSession::cmd_del(const std::vector<std::string>& a) {
  std::set<std::string> keys(a.begin(), a.end());  // a txn may not name a key twice
  if (keys.size() > kMaxDelKeys) {
    error(fmt::format("too many keys: DEL takes at most {} at a time", kMaxDelKeys));
    return;
  }
  pb::TxnRequest txn;
  for (const auto& k : keys) txn.add_success()->mutable_request_delete_range()->set_key(k);
  auto r = client_.txn(txn);
  if (failed(r.status())) return;
  int64_t deleted = 0;
  for (const auto& op : r->responses()) deleted += op.response_delete_range().deleted();
  print(fmt::format("(integer) {}\n", deleted));
}

void ShellSession::cmd_exists(const std::vector<std::string>& a) {
  int64_t found = 0;
  for (const auto& k : a) {
    pb::RangeRequest req;
    req.set_key(k);
    req.set_count_only(true);
    auto r = client_.range(req);
    if (failed(r.status())) return;
    found += r->count() > 0 ? 1 : 0;
  }
  print(fmt::format("(integer) {}\n", found));
}

void ShellSession::cmd_keys(const std::vector<std::string>& a) {
  pb::RangeRequest req;
  client::set_prefix_range(&req, a.empty() ? "" : a[0]);
  req.set_keys_only(true);
  req.set_limit(kKeysShown);
  auto r = client_.range(req);
  if (failed(r.status())) return;
  if (r->kvs_size() == 0) {
    print("(empty)\n");
    return;
  }
  std::string out;
  for (const auto& kv : r->kvs()) out += escape_value(kv.key()) + "\n";
  if (r->more()) {
    out += fmt::format("... {} keys in total, {} shown: use SCAN prefix LIMIT n for more\n",
                       r->count(), r->kvs_size());
  } else {
    out += key_count(r->kvs_size()) + "\n";
  }
  print(out);
}

void ShellSession::cmd_scan(const std::vector<std::string>& a) {
  auto limit = parse_limit(a, 1, INT64_MAX, INT64_MAX);
  if (failed(limit.status())) return;
  const std::string& prefix = a[0];
  pb::RangeRequest req;
  client::set_prefix_range(&req, prefix);
  const std::string range_end = req.range_end();
  int64_t shown = 0;
  int64_t total = 0;
  Progress progress("scanning", 0, false);
  clear_interrupt();
  // Page by page (key > last key seen), so a huge prefix never arrives as one response.
  for (int64_t page = 0; shown < *limit; ++page) {
    req.set_limit(std::min(kScanPage, *limit - shown));
    auto r = client_.range(req);
    if (failed(r.status())) return;
    if (page == 0) total = r->count();
    std::string out;
    for (const auto& kv : r->kvs()) out += kv_line(kv) + "\n";
    progress.finish();
    print(out);
    shown += r->kvs_size();
    if (!r->more() || r->kvs_size() == 0 || shown >= *limit) break;
    // Only scans of more than one page show progress (on a terminal, on stderr).
    progress.update(static_cast<uint64_t>(shown), static_cast<uint64_t>(std::min(total, *limit)));
    if (interrupted()) {
      print("(interrupted)\n");
      break;
    }
    req.set_key(r->kvs(r->kvs_size() - 1).key() + std::string(1, '\0'));
    req.set_range_end(range_end);
  }
  progress.finish();
  print(total > shown ? fmt::format("({} of {} keys)\n", shown, total) : key_count(shown) + "\n");
}

void ShellSession::cmd_incr(const std::vector<std::string>& a) {
  auto r = client::incr(client_, a[0], 1);
  if (failed(r.status())) return;
  print(fmt::format("(integer) {}\n", *r));
}

void ShellSession::cmd_cas(const std::vector<std::string>& a) {
  auto r = client::compare_and_swap(client_, a[0], a[1], a[2]);
  if (failed(r.status())) return;
  if (r->swapped) {
    print("OK\n");
  } else if (r->current) {
    print(fmt::format("(not swapped) current value: {}\n", escape_value(r->current->value())));
  } else {
    print("(not swapped) the key does not exist\n");
  }
}

void ShellSession::cmd_ttl(const std::vector<std::string>& a) {
  pb::RangeRequest req;
  req.set_key(a[0]);
  auto r = client_.range(req);
  if (failed(r.status())) return;
  if (r->kvs_size() == 0) {
    print("(integer) -2 (the key does not exist)\n");
    return;
  }
  if (r->kvs(0).lease() == 0) {
    print("(integer) -1 (the key has no lease)\n");
    return;
  }
  pb::LeaseTimeToLiveRequest ttl;
  ttl.set_id(r->kvs(0).lease());
  auto t = client_.lease_time_to_live(ttl);
  if (failed(t.status())) return;
  print(fmt::format("(integer) {}\n", t->ttl()));
}

void ShellSession::cmd_history(const std::vector<std::string>& a) {
  auto limit = parse_limit(a, 1, kHistoryDefault, kHistoryMax);
  if (failed(limit.status())) return;
  auto h = client::history(client_, a[0], static_cast<size_t>(*limit));
  if (failed(h.status())) return;
  if (!h->exists) {
    print("(nil) the key does not exist now\n");
    return;
  }
  std::string out;
  for (const auto& kv : h->versions) {
    out += fmt::format("revision {:<6} version {:<4} {}\n", kv.mod_revision(), kv.version(),
                       escape_value(kv.value()));
  }
  if (h->reached_creation) {
    out += fmt::format("(created at revision {})\n", h->versions.back().create_revision());
  } else if (h->compacted_below != 0) {
    out += fmt::format("(older versions are compacted: revisions before {} are gone)\n",
                       h->compacted_below);
  } else {
    out += fmt::format("(newest {} versions shown: HISTORY key LIMIT n for more)\n",
                       h->versions.size());
  }
  print(out);
}

void ShellSession::cmd_watch(const std::vector<std::string>& a) {
  pb::WatchCreateRequest req;
  pb::RangeRequest range;
  client::set_prefix_range(&range, a[0]);
  req.set_key(range.key());
  req.set_range_end(range.range_end());
  clear_interrupt();
  auto w = client_.watch(req, &interrupt_flag());
  if (failed(w.status())) return;
  print(fmt::format("watching keys starting with {} from revision {}: press Ctrl-C to stop\n",
                    escape_value(a[0]), (*w)->created().header().revision() + 1));
  pb::WatchResponse resp;
  while ((*w)->next(&resp)) {
    std::string out;
    for (const auto& ev : resp.events()) {
      if (ev.type() == mvccpb::Event::DELETE) {
        out += fmt::format("DELETE {} (revision {})\n", escape_value(ev.kv().key()),
                           ev.kv().mod_revision());
      } else {
        out += fmt::format("PUT {} (revision {})\n", kv_line(ev.kv()), ev.kv().mod_revision());
      }
    }
    print(out);
    if (resp.canceled()) break;
  }
  Status s = (*w)->finish();
  if (interrupted()) {
    clear_interrupt();
    print("(watch stopped)\n");
    return;
  }
  if (!failed(s)) error("the watch was cancelled by the server: run WATCH again");
}

void ShellSession::cmd_lock(const std::vector<std::string>& a) {
  if (lock_) {
    error(fmt::format("already holding lock \"{}\": UNLOCK it first", lock_->name));
    return;
  }
  pb::LeaseGrantRequest grant;
  grant.set_ttl(kLockTtlSeconds);
  auto lease = client_.lease_grant(grant);
  if (failed(lease.status())) return;
  auto stream = client_.keep_alive(lease->id());
  if (failed(stream.status())) return;
  auto held = std::make_unique<HeldLock>();
  held->name = a[0];
  held->keeper = std::make_unique<client::LeaseKeeper>(std::move(*stream), lease->ttl());
  clear_interrupt();
  auto own = client::acquire(
      client_, a[0], "", lease->id(), &interrupt_flag(), [this](const std::string& holder) {
        print(fmt::format("waiting for {} to be released (Ctrl-C to give up)\n",
                          escape_value(holder)));
      });
  if (!own.is_ok()) {
    held->keeper->stop();
    pb::LeaseRevokeRequest revoke;
    revoke.set_id(lease->id());
    (void)client_.lease_revoke(revoke);
    if (interrupted()) {
      clear_interrupt();
      print("(gave up waiting for the lock)\n");
      return;
    }
    (void)failed(own.status());
    return;
  }
  held->owner = *own;
  print(fmt::format("locked {} (key {}, fencing token {}): UNLOCK releases it\n",
                    escape_value(a[0]), escape_value(own->key), own->fencing_token));
  lock_ = std::move(held);
}

Status ShellSession::release_lock() {
  std::unique_ptr<HeldLock> held = std::move(lock_);
  held->keeper->stop();
  // Revoking the lease deletes the lock key: the next waiter gets the lock.
  pb::LeaseRevokeRequest revoke;
  revoke.set_id(held->owner.lease_id);
  return client_.lease_revoke(revoke).status();
}

void ShellSession::cmd_unlock(const std::vector<std::string>&) {
  if (!lock_) {
    error("no lock is held: LOCK name takes one");
    return;
  }
  std::string name = lock_->name;
  bool lost = lock_->keeper->lost();
  if (failed(release_lock())) return;
  print(lost ? fmt::format("unlocked {} (its lease had already expired: the lock was lost)\n",
                           escape_value(name))
             : fmt::format("unlocked {}\n", escape_value(name)));
}

void ShellSession::cmd_status(const std::vector<std::string>&) {
  auto members = client_.member_list();
  if (failed(members.status())) return;
  Table t({"MEMBER", "ENDPOINT", "LEADER", "TERM", "REVISION", "RAFT INDEX"});
  size_t reachable = 0;
  for (const auto& m : members->members()) {
    std::string endpoint =
        m.clienturls_size() > 0 ? client::endpoint_from_url(m.clienturls(0)) : "";
    auto s = endpoint.empty() ? Result<pb::StatusResponse>(Status::unavailable("no client URL"))
                              : client_.status(endpoint);
    std::string name = m.name().empty() ? fmt::format("{:x} (unstarted)", m.id()) : m.name();
    if (!s.is_ok()) {
      t.add_row({name, endpoint, "unreachable", "-", "-", "-"});
      continue;
    }
    ++reachable;
    t.add_row({name, endpoint, s->leader() == m.id() ? "yes" : "no", std::to_string(s->raftterm()),
               std::to_string(s->header().revision()), std::to_string(s->raftindex())});
  }
  print(t.render());
  print(fmt::format("{} of {} members reachable\n", reachable, members->members_size()));
}

void ShellSession::cmd_members(const std::vector<std::string>&) {
  auto members = client_.member_list();
  if (failed(members.status())) return;
  Table t({"ID", "NAME", "PEER URLS", "CLIENT URLS", "LEARNER"});
  for (const auto& m : members->members()) {
    std::string peers, clients;
    for (const auto& u : m.peerurls()) peers += (peers.empty() ? "" : ",") + u;
    for (const auto& u : m.clienturls()) clients += (clients.empty() ? "" : ",") + u;
    t.add_row(
        {fmt::format("{:x}", m.id()), m.name(), peers, clients, m.islearner() ? "yes" : "no"});
  }
  print(t.render());
}

}  // namespace raftkv::cli
