#include "sim/lease_check.h"

#include <map>
#include <set>

namespace raftkv::sim {

namespace {

constexpr uint64_t kUsPerSecond = 1'000'000;

std::string where(const LeaseLogEntry& e) {
  return "index " + std::to_string(e.index) + ": ";
}

std::string keys_text(const std::set<std::string>& keys) {
  std::string s = "{";
  for (const std::string& k : keys) s += (s.size() > 1 ? " " : "") + k;
  return s + "}";
}

}  // namespace

std::string check_leases(const std::vector<LeaseLogEntry>& log, const std::vector<LeaseAck>& acks) {
  // The model: granted leases, and the lease each key is attached to.
  std::map<int64_t, std::set<std::string>> granted;  // lease -> attached keys
  std::map<std::string, int64_t> attached_to;        // key -> lease
  auto detach = [&](const std::string& key) {
    auto it = attached_to.find(key);
    if (it == attached_to.end()) return;
    granted[it->second].erase(key);
    attached_to.erase(it);
  };
  // The latest promise per lease: max(send_us + ttl).
  std::map<int64_t, std::pair<uint64_t, const LeaseAck*>> promised;
  for (const LeaseAck& a : acks) {
    const uint64_t until = a.send_us + static_cast<uint64_t>(a.ttl_seconds) * kUsPerSecond;
    auto [it, fresh] = promised.emplace(a.lease, std::make_pair(until, &a));
    if (!fresh && until > it->second.first) it->second = {until, &a};
  }

  for (const LeaseLogEntry& e : log) {
    const std::string lease = "lease " + std::to_string(e.lease);
    switch (e.kind) {
      case LeaseLogEntry::Kind::kGrant: {
        const bool exists = granted.count(e.lease) != 0;
        if (e.ok == exists || e.lease == 0) {
          return where(e) + "grant of " + lease +
                 (exists ? " (already granted)" : " (not granted)") +
                 (e.ok ? " succeeded" : " was refused");
        }
        if (e.ok) granted[e.lease];
        break;
      }
      case LeaseLogEntry::Kind::kPut: {
        if (e.lease != 0) {
          const bool exists = granted.count(e.lease) != 0;
          if (e.ok != exists) {
            return where(e) + "put of " + e.key + " with " + lease +
                   (exists ? " (granted) was refused" : " (not granted) took effect");
          }
        }
        if (!e.ok) break;  // refused: changes nothing
        detach(e.key);
        if (e.lease != 0) {
          granted[e.lease].insert(e.key);
          attached_to[e.key] = e.lease;
        }
        break;
      }
      case LeaseLogEntry::Kind::kDelete:
        detach(e.key);
        break;
      case LeaseLogEntry::Kind::kRevoke: {
        auto g = granted.find(e.lease);
        if (e.ok != (g != granted.end())) {
          return where(e) + "revoke of " + lease +
                 (e.ok ? " (not granted) succeeded" : " (granted) was refused");
        }
        if (!e.ok) {
          if (!e.events.empty()) return where(e) + "a refused revoke of " + lease + " changed keys";
          break;
        }
        const std::set<std::string> expect = g->second;
        std::set<std::string> got;
        for (const WatchEvent& ev : e.events) {
          if (!ev.deleted) {
            return where(e) + "revoke of " + lease + " wrote " + ev.key + " instead of deleting it";
          }
          if (!got.insert(ev.key).second) {
            return where(e) + "revoke of " + lease + " deleted " + ev.key + " twice";
          }
        }
        if (got != expect) {
          return where(e) + "revoke of " + lease + " deleted " + keys_text(got) +
                 " in its revision, but the keys attached to it were " + keys_text(expect);
        }
        for (const std::string& k : expect) attached_to.erase(k);
        granted.erase(g);
        if (e.expiry) {
          auto p = promised.find(e.lease);
          if (p != promised.end() && p->second.first > e.applied_us) {
            const LeaseAck& a = *p->second.second;
            return where(e) + "early expiry: " + lease + " was revoked by a lessor at " +
                   std::to_string(e.applied_us) + "us (proposed at " +
                   std::to_string(e.proposed_us) + "us), but " +
                   (a.keep_alive ? "a keep-alive" : "its grant") + " sent at " +
                   std::to_string(a.send_us) + "us was acknowledged with TTL " +
                   std::to_string(a.ttl_seconds) + "s: it must live until " +
                   std::to_string(p->second.first) + "us";
          }
        }
        break;
      }
    }
  }
  return "";
}

}  // namespace raftkv::sim
