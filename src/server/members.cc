#include "server/members.h"

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
