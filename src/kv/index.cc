#include "kv/index.h"

#include "base/check.h"

namespace raftkv::kv {

void Index::append(std::string_view key, const KeyRev& r) {
  Slot s = find(key);
  append(s, key, r);
}

void Index::append(Slot& s, std::string_view key, const KeyRev& r) {
  if (!s.found_) {
    s.it_ = keys_.emplace_hint(s.it_, std::string(key), std::vector<KeyRev>{});
    s.found_ = true;
  }
  auto& revs = s.it_->second;
  RAFTKV_CHECK_MSG(revs.empty() || revs.back().main < r.main ||
                       (revs.back().main == r.main && revs.back().sub < r.sub),
                   "index changes must be appended in revision order");
  revs.push_back(r);
  logical_bytes_ += entry_bytes(key.size(), r);
}

namespace {
struct RevLess {
  bool operator()(const KeyRev& k, const std::pair<int64_t, uint32_t>& v) const {
    return k.main < v.first || (k.main == v.first && k.sub < v.second);
  }
};
}  // namespace

const KeyRev* Index::before(std::string_view key, int64_t main, uint32_t sub) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return nullptr;
  const auto& revs = it->second;
  auto pos = std::lower_bound(revs.begin(), revs.end(), std::pair<int64_t, uint32_t>(main, sub),
                              RevLess());
  return pos == revs.begin() ? nullptr : &*(pos - 1);
}

bool Index::contains(std::string_view key, int64_t main, uint32_t sub) const {
  auto it = keys_.find(key);
  if (it == keys_.end()) return false;
  const auto& revs = it->second;
  auto pos = std::lower_bound(revs.begin(), revs.end(), std::pair<int64_t, uint32_t>(main, sub),
                              RevLess());
  return pos != revs.end() && pos->main == main && pos->sub == sub;
}

void Index::compact(int64_t rev) {
  for (auto it = keys_.begin(); it != keys_.end();) {
    auto& revs = it->second;
    // First change newer than rev; the one before it is the newest <= rev.
    auto newer = std::upper_bound(revs.begin(), revs.end(), rev,
                                  [](int64_t r, const KeyRev& k) { return r < k.main; });
    if (newer != revs.begin()) {
      auto keep_from = newer - 1;
      // A tombstone below rev goes; one at rev itself stays until a later
      // compaction, or a watcher from rev would never see that delete (etcd
      // keeps it too since etcd-io/etcd#18089).
      if (keep_from->tombstone && keep_from->main < rev) keep_from = newer;
      for (auto d = revs.begin(); d != keep_from; ++d) {
        logical_bytes_ -= entry_bytes(it->first.size(), *d);
      }
      revs.erase(revs.begin(), keep_from);
    }
    if (revs.empty()) {
      it = keys_.erase(it);
    } else {
      ++it;
    }
  }
}

}  // namespace raftkv::kv
