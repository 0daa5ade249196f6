#include "kv/auth_perms.h"

#include <algorithm>

namespace raftkv::kv {

KeyInterval KeyInterval::of(std::string_view key, std::string_view range_end) {
  KeyInterval iv;
  iv.begin.assign(key);
  if (range_end.size() == 1 && range_end[0] == '\0') {
    iv.unbounded = true;
    return iv;
  }
  if (range_end.empty() || range_end <= key) {
    iv.end.assign(key);
    iv.end.push_back('\0');  // the smallest key after `key`
    return iv;
  }
  iv.end.assign(range_end);
  return iv;
}

void PermissionSet::add(KeyInterval added) {
  std::vector<KeyInterval> all = std::move(merged_);
  all.push_back(std::move(added));
  std::sort(all.begin(), all.end(),
            [](const KeyInterval& a, const KeyInterval& b) { return a.begin < b.begin; });
  merged_.clear();
  for (auto& iv : all) {
    if (!iv.unbounded && iv.end <= iv.begin) continue;  // empty
    if (!merged_.empty()) {
      KeyInterval& last = merged_.back();
      // Overlapping or touching: extend the last interval.
      if (last.unbounded || iv.begin <= last.end) {
        if (!last.unbounded && (iv.unbounded || iv.end > last.end)) {
          last.unbounded = iv.unbounded;
          last.end = iv.unbounded ? std::string() : iv.end;
        }
        continue;
      }
    }
    merged_.push_back(std::move(iv));
  }
}

bool PermissionSet::covers(const KeyInterval& want) const {
  // The last merged interval starting at or before want.begin is the only
  // candidate: merged intervals are disjoint and non-adjacent.
  auto it = std::upper_bound(merged_.begin(), merged_.end(), want.begin,
                             [](const std::string& k, const KeyInterval& iv) { return k < iv.begin; });
  if (it == merged_.begin()) return false;
  const KeyInterval& iv = *std::prev(it);
  if (iv.unbounded) return true;
  if (want.unbounded) return false;
  return want.end <= iv.end && want.begin < iv.end;
}

void add_permission(const authpb::Permission& perm, UserPermissions* out) {
  KeyInterval iv = KeyInterval::of(perm.key(), perm.range_end());
  switch (perm.permtype()) {
    case authpb::Permission::READ:
      out->read.add(std::move(iv));
      break;
    case authpb::Permission::WRITE:
      out->write.add(std::move(iv));
      break;
    default:  // READWRITE
      out->read.add(iv);
      out->write.add(std::move(iv));
      break;
  }
}

}  // namespace raftkv::kv
