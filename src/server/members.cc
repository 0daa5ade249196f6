#include "server/members.h"

#include <algorithm>

#include "server/config.h"
#include "transport/transport.h"

namespace raftkv::server {
namespace {

// Bounds that no valid table comes near; they keep a corrupt length from
// making the decoder allocate or loop without end.
constexpr uint32_t kMaxUrls = 1024;
constexpr uint32_t kMaxMembers = 1024;

void put_u32(std::string* out, uint32_t v) {
  for (int i = 0; i < 4; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_u64(std::string* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}
void put_str(std::string* out, std::string_view s) {
  put_u32(out, static_cast<uint32_t>(s.size()));
  out->append(s);
}

class Reader {
 public:
  explicit Reader(std::string_view b) : b_(b) {}
  bool u32(uint32_t* v) {
    if (b_.size() < 4) return false;
    *v = 0;
    for (int i = 0; i < 4; ++i) *v |= uint32_t(uint8_t(b_[i])) << (8 * i);
    b_.remove_prefix(4);
    return true;
  }
  bool u64(uint64_t* v) {
    if (b_.size() < 8) return false;
    *v = 0;
    for (int i = 0; i < 8; ++i) *v |= uint64_t(uint8_t(b_[i])) << (8 * i);
    b_.remove_prefix(8);
    return true;
  }
  bool str(std::string* s) {
    uint32_t n = 0;
    if (!u32(&n) || b_.size() < n) return false;
    s->assign(b_.substr(0, n));
    b_.remove_prefix(n);
    return true;
  }
  bool strs(std::vector<std::string>* v) {
    uint32_t n = 0;
    if (!u32(&n) || n > kMaxUrls) return false;
    v->resize(n);
    for (auto& s : *v) {
      if (!str(&s)) return false;
    }
    return true;
  }
  bool member(MemberRecord* m) {
    return u64(&m->id) && str(&m->name) && strs(&m->peer_urls) && strs(&m->client_urls);
  }
  bool done() const { return b_.empty(); }

 private:
  std::string_view b_;
};

void append_member(std::string* out, const MemberRecord& m) {
  put_u64(out, m.id);
  put_str(out, m.name);
  put_u32(out, static_cast<uint32_t>(m.peer_urls.size()));
  for (const auto& u : m.peer_urls) put_str(out, u);
  put_u32(out, static_cast<uint32_t>(m.client_urls.size()));
  for (const auto& u : m.client_urls) put_str(out, u);
}

}  // namespace

std::string encode_member(const MemberRecord& m) {
  std::string out;
  append_member(&out, m);
  return out;
}

Result<MemberRecord> decode_member(std::string_view bytes) {
  Reader r(bytes);
  MemberRecord m;
  if (!r.member(&m) || !r.done() || m.id == 0) {
    return Status::corruption("member record: malformed or trailing bytes");
  }
  return m;
}

std::string encode_member_table(const MemberTable& t) {
  std::string out;
  put_u32(&out, static_cast<uint32_t>(t.size()));
  for (const auto& [id, m] : t) append_member(&out, m);
  return out;
}

Result<MemberTable> decode_member_table(std::string_view bytes) {
  Reader r(bytes);
  uint32_t n = 0;
  if (!r.u32(&n) || n > kMaxMembers) return Status::corruption("member table: bad count");
  MemberTable t;
  for (uint32_t i = 0; i < n; ++i) {
    MemberRecord m;
    if (!r.member(&m) || m.id == 0) return Status::corruption("member table: malformed record");
    t[m.id] = std::move(m);
  }
  if (!r.done()) return Status::corruption("member table: trailing bytes");
  return t;
}

}  // namespace raftkv::server

// ---------------------------------------------------------------------------
// Membership-change rules

namespace raftkv::server {
namespace {

Status bad_urls() { return Status::invalid_argument("etcdserver: given member URLs are invalid"); }
Status not_enough_started() {
  return Status::failed_precondition(
      "etcdserver: re-configuration failed due to not enough started members");
}

// Voters after the change and how many of them have started. When growing,
// etcd lets a lone voter get a second one (joining a restored one-member
// cluster); when shrinking it has no such exception.
bool quorum_started(size_t voters, size_t started, bool growing) {
  if (growing && voters == 2 && started == 1) return true;
  return started >= voters / 2 + 1;
}

}  // namespace

Status check_member_change(const MembershipView& view, const MemberChange& c) {
  const MemberTable& members = view.members;
  size_t voters = 0, started_voters = 0;
  for (const auto& [id, m] : members) {
    if (view.learners.count(id) != 0) continue;
    ++voters;
    if (member_started(m)) ++started_voters;
  }
  auto url_in_use = [&](uint64_t except) {
    for (const auto& [id, m] : members) {
      if (id == except) continue;
      for (const std::string& u : m.peer_urls) {
        if (std::find(c.peer_urls.begin(), c.peer_urls.end(), u) != c.peer_urls.end()) return true;
      }
    }
    return false;
  };
  auto check_urls = [&]() -> Status {
    if (c.peer_urls.empty()) return bad_urls();
    for (const std::string& u : c.peer_urls) {
      if (!transport::grpc_target_from_url(u).is_ok()) return bad_urls();
    }
    return Status::ok();
  };
  const auto it = members.find(c.id);
  const bool is_learner = view.learners.count(c.id) != 0;
  switch (c.kind) {
    case MemberChangeKind::kAddVoter:
    case MemberChangeKind::kAddLearner: {
      RAFTKV_RETURN_IF_ERROR(check_urls());
      if (c.id == 0 || it != members.end()) {
        return Status::failed_precondition("etcdserver: member ID already exist");
      }
      if (url_in_use(0)) return Status::failed_precondition("etcdserver: Peer URLs already exists");
      if (c.kind == MemberChangeKind::kAddLearner) {
        if (view.learners.size() >= view.max_learners) {
          return Status::failed_precondition("etcdserver: too many learner members in cluster");
        }
        return Status::ok();  // a learner never counts towards a quorum
      }
      if (view.strict_reconfig_check && !quorum_started(voters + 1, started_voters, true)) {
        return not_enough_started();
      }
      return Status::ok();
    }
    case MemberChangeKind::kRemove:
      if (it == members.end()) return Status::not_found("etcdserver: member not found");
      if (is_learner || !view.strict_reconfig_check) return Status::ok();
      if (voters <= 1) return not_enough_started();  // the last voter cannot leave
      if (!quorum_started(voters - 1, started_voters - (member_started(it->second) ? 1 : 0),
                          false)) {
        return not_enough_started();
      }
      return Status::ok();
    case MemberChangeKind::kUpdate:
      RAFTKV_RETURN_IF_ERROR(check_urls());
      if (it == members.end()) return Status::not_found("etcdserver: member not found");
      if (url_in_use(c.id)) return Status::failed_precondition("etcdserver: Peer URLs already exists");
      return Status::ok();
    case MemberChangeKind::kPromote:
      if (it == members.end()) return Status::not_found("etcdserver: member not found");
      if (!is_learner) {
        return Status::failed_precondition("etcdserver: can only promote a learner member");
      }
      if (view.strict_reconfig_check &&
          !quorum_started(voters + 1, started_voters + (member_started(it->second) ? 1 : 0),
                          true)) {
        return not_enough_started();
      }
      return Status::ok();
  }
  return Status::invalid_argument("unknown membership change");
}

bool learner_in_sync(uint64_t learner_match, uint64_t leader_match) {
  // etcd's readyPercent: 0.9, in integers.
  return learner_match * 10 >= leader_match * 9;
}

uint64_t new_member_id(std::vector<std::string> peer_urls, std::string_view cluster_token,
                       uint64_t unix_nanos) {
  std::string salt(cluster_token);
  salt += std::to_string(unix_nanos);
  uint64_t id = derive_member_id(std::move(peer_urls), salt);
  return id == 0 ? 1 : id;
}

}  // namespace raftkv::server
