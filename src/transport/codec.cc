#include "transport/codec.h"

#include <algorithm>
#include <array>
#include <cstdio>
#include <string>
#include <vector>

namespace raftkv::transport {
namespace {

constexpr uint32_t kMaxMessageType = static_cast<uint32_t>(raft::MessageType::kTransferLeader);
constexpr uint32_t kMaxEntryType = static_cast<uint32_t>(raft::EntryType::kConfChange);

void encode_ids(const std::vector<raft::NodeId>& ids,
                google::protobuf::RepeatedField<uint64_t>* out) {
  out->Reserve(static_cast<int>(ids.size()));
  for (raft::NodeId id : ids) out->Add(id.value());
}

Result<std::vector<raft::NodeId>> decode_ids(const google::protobuf::RepeatedField<uint64_t>& in,
                                             const char* what, const DecodeLimits& limits) {
  if (static_cast<uint64_t>(in.size()) > limits.max_members) {
    return Status::corruption(std::string("conf state: too many ") + what + " (" +
                              std::to_string(in.size()) + ")");
  }
  std::vector<raft::NodeId> ids;
  ids.reserve(static_cast<size_t>(in.size()));
  for (uint64_t v : in) ids.emplace_back(v);
  return ids;
}

// Sorted, strictly increasing, no zero id.
Status check_id_list(const std::vector<raft::NodeId>& ids, const char* what) {
  for (size_t i = 0; i < ids.size(); ++i) {
    if (ids[i] == raft::kNoNode) {
      return Status::corruption(std::string("conf state: ") + what + " contains member id 0");
    }
    if (i > 0 && !(ids[i - 1] < ids[i])) {
      return Status::corruption(std::string("conf state: ") + what +
                                " not sorted or has duplicates");
    }
  }
  return Status::ok();
}

bool intersects(const std::vector<raft::NodeId>& a, const std::vector<raft::NodeId>& b) {
  for (raft::NodeId x : a) {
    if (std::binary_search(b.begin(), b.end(), x)) return true;
  }
  return false;
}

// Slicing-by-8 tables for CRC-32C (reflected polynomial 0x82F63B78):
// table[0] is the classic byte table; table[k][b] is the CRC of byte b
// followed by k zero bytes, so eight input bytes are folded per step.
using Crc32cTables = std::array<std::array<uint32_t, 256>, 8>;

Crc32cTables make_crc32c_tables() {
  Crc32cTables t{};
  for (uint32_t i = 0; i < 256; ++i) {
    uint32_t c = i;
    for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : (c >> 1);
    t[0][i] = c;
  }
  for (uint32_t i = 0; i < 256; ++i) {
    for (size_t k = 1; k < 8; ++k) t[k][i] = (t[k - 1][i] >> 8) ^ t[0][t[k - 1][i] & 0xFF];
  }
  return t;
}

}  // namespace

std::string hex_id(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%llx", static_cast<unsigned long long>(id));
  return buf;
}

uint32_t crc32c(uint32_t crc, std::string_view data) {
  static const Crc32cTables t = make_crc32c_tables();
  const auto* p = reinterpret_cast<const unsigned char*>(data.data());
  size_t n = data.size();
  uint32_t c = ~crc;
  while (n >= 8) {
    const uint32_t lo =
        c ^ (uint32_t{p[0]} | uint32_t{p[1]} << 8 | uint32_t{p[2]} << 16 | uint32_t{p[3]} << 24);
    c = t[7][lo & 0xFF] ^ t[6][(lo >> 8) & 0xFF] ^ t[5][(lo >> 16) & 0xFF] ^ t[4][lo >> 24] ^
        t[3][p[4]] ^ t[2][p[5]] ^ t[1][p[6]] ^ t[0][p[7]];
    p += 8;
    n -= 8;
  }
  while (n-- > 0) c = t[0][(c ^ *p++) & 0xFF] ^ (c >> 8);
  return ~c;
}

void encode_header(uint64_t cluster_id, raft::NodeId from, raft::NodeId to, raftkvpb::Header* out) {
  out->set_protocol_version(kProtocolVersion);
  out->set_cluster_id(cluster_id);
  out->set_from(from.value());
  out->set_to(to.value());
}

Status check_header(const raftkvpb::Header& h, uint64_t local_cluster_id, raft::NodeId local_id) {
  if (h.protocol_version() != kProtocolVersion) {
    return Status::failed_precondition(
        "peer protocol version " + std::to_string(h.protocol_version()) + " from member " +
        hex_id(h.from()) + " is not supported (this member speaks version " +
        std::to_string(kProtocolVersion) + ")");
  }
  if (h.cluster_id() != local_cluster_id) {
    return Status::failed_precondition(
        "refusing messages from member " + hex_id(h.from()) + " of cluster " +
        hex_id(h.cluster_id()) + ": this member belongs to cluster " + hex_id(local_cluster_id) +
        " (check --initial-cluster and --initial-cluster-token on both members)");
  }
  if (h.from() == 0 || h.from() == local_id.value()) {
    return Status::invalid_argument("peer header names an invalid sender member id " +
                                    hex_id(h.from()));
  }
  if (h.to() != local_id.value()) {
    return Status::invalid_argument("peer header from member " + hex_id(h.from()) +
                                    " is addressed to member " + hex_id(h.to()) +
                                    ", but this member is " + hex_id(local_id.value()));
  }
  return Status::ok();
}

Status check_snapshot_metadata(const raft::SnapshotMetadata& md) {
  if (md.index == raft::Index{} || md.term == raft::Term{}) {
    return Status::corruption("snapshot metadata has zero index or term");
  }
  const raft::ConfState& cs = md.conf_state;
  RAFTKV_RETURN_IF_ERROR(check_id_list(cs.voters, "voters"));
  RAFTKV_RETURN_IF_ERROR(check_id_list(cs.learners, "learners"));
  RAFTKV_RETURN_IF_ERROR(check_id_list(cs.voters_outgoing, "voters_outgoing"));
  RAFTKV_RETURN_IF_ERROR(check_id_list(cs.learners_next, "learners_next"));
  if (cs.voters.empty()) return Status::corruption("snapshot conf state has no voters");
  if (intersects(cs.voters, cs.learners)) {
    return Status::corruption("snapshot conf state: a member is both voter and learner");
  }
  if (intersects(cs.voters_outgoing, cs.learners)) {
    return Status::corruption("snapshot conf state: a member is both outgoing voter and learner");
  }
  const bool joint = !cs.voters_outgoing.empty();
  if (!joint && (!cs.learners_next.empty() || cs.auto_leave)) {
    return Status::corruption(
        "snapshot conf state: learners_next or auto_leave outside a joint configuration");
  }
  for (raft::NodeId id : cs.learners_next) {
    if (!std::binary_search(cs.voters_outgoing.begin(), cs.voters_outgoing.end(), id)) {
      return Status::corruption("snapshot conf state: learners_next member " + hex_id(id.value()) +
                                " is not an outgoing voter");
    }
  }
  if (intersects(cs.learners_next, cs.voters)) {
    return Status::corruption("snapshot conf state: learners_next member is an incoming voter");
  }
  return Status::ok();
}

void encode_message(const raft::Message& m, raftkvpb::Message* out, bool with_snapshot_data) {
  out->Clear();
  out->set_type(static_cast<uint32_t>(m.type));
  out->set_from(m.from.value());
  out->set_to(m.to.value());
  out->set_term(m.term.value());
  out->set_log_term(m.log_term.value());
  out->set_index(m.index.value());
  out->mutable_entries()->Reserve(static_cast<int>(m.entries.size()));
  for (const raft::Entry& e : m.entries) {
    raftkvpb::Entry* pe = out->add_entries();
    pe->set_term(e.term.value());
    pe->set_index(e.index.value());
    pe->set_type(static_cast<uint32_t>(e.type));
    pe->set_data(e.data);
  }
  out->set_commit(m.commit.value());
  out->set_reject(m.reject);
  out->set_reject_hint(m.reject_hint.value());
  if (m.snapshot.has_value()) {
    const raft::Snapshot& s = *m.snapshot;
    raftkvpb::SnapshotMetadata* md = out->mutable_snapshot()->mutable_metadata();
    md->set_index(s.metadata.index.value());
    md->set_term(s.metadata.term.value());
    raftkvpb::ConfState* cs = md->mutable_conf_state();
    encode_ids(s.metadata.conf_state.voters, cs->mutable_voters());
    encode_ids(s.metadata.conf_state.learners, cs->mutable_learners());
    encode_ids(s.metadata.conf_state.voters_outgoing, cs->mutable_voters_outgoing());
    encode_ids(s.metadata.conf_state.learners_next, cs->mutable_learners_next());
    cs->set_auto_leave(s.metadata.conf_state.auto_leave);
    if (with_snapshot_data) out->mutable_snapshot()->set_data(s.data);
  }
  out->set_context(m.context);
}

Result<raft::Message> decode_message(const raftkvpb::Message& pb, raft::NodeId expected_from,
                                     raft::NodeId local_id, const DecodeLimits& limits) {
  if (pb.type() > kMaxMessageType) {
    return Status::corruption("message type " + std::to_string(pb.type()) + " is out of range");
  }
  if (pb.from() != expected_from.value()) {
    return Status::invalid_argument("message claims sender " + hex_id(pb.from()) +
                                    " but arrived from member " + hex_id(expected_from.value()));
  }
  if (pb.to() != local_id.value()) {
    return Status::invalid_argument("message addressed to member " + hex_id(pb.to()) +
                                    " arrived at member " + hex_id(local_id.value()));
  }
  if (static_cast<uint64_t>(pb.entries_size()) > limits.max_entries_per_message) {
    return Status::corruption("message carries too many entries (" +
                              std::to_string(pb.entries_size()) + ")");
  }
  if (pb.context().size() > limits.max_context_bytes) {
    return Status::corruption("message context of " + std::to_string(pb.context().size()) +
                              " bytes exceeds the limit");
  }
  raft::Message m;
  m.type = static_cast<raft::MessageType>(pb.type());
  m.from = raft::NodeId(pb.from());
  m.to = raft::NodeId(pb.to());
  m.term = raft::Term(pb.term());
  m.log_term = raft::Term(pb.log_term());
  m.index = raft::Index(pb.index());
  m.commit = raft::Index(pb.commit());
  m.reject = pb.reject();
  m.reject_hint = raft::Index(pb.reject_hint());
  m.context = pb.context();

  m.entries.reserve(static_cast<size_t>(pb.entries_size()));
  for (const raftkvpb::Entry& pe : pb.entries()) {
    if (pe.type() > kMaxEntryType) {
      return Status::corruption("entry type " + std::to_string(pe.type()) + " is out of range");
    }
    raft::Entry e;
    e.term = raft::Term(pe.term());
    e.index = raft::Index(pe.index());
    e.type = static_cast<raft::EntryType>(pe.type());
    e.data = pe.data();
    m.entries.push_back(std::move(e));
  }
  if (m.type == raft::MessageType::kAppend) {
    // AppendEntries carries entries prevLogIndex+1, prevLogIndex+2, ... whose
    // terms never decrease and never exceed the leader's term (§3.5).
    raft::Term prev_term = m.log_term;
    for (size_t i = 0; i < m.entries.size(); ++i) {
      const raft::Entry& e = m.entries[i];
      if (e.index != m.index + (i + 1)) {
        return Status::corruption("append entries are not consecutive after index " +
                                  std::to_string(m.index.value()));
      }
      if (e.term < prev_term || m.term < e.term) {
        return Status::corruption("append entry " + std::to_string(e.index.value()) +
                                  " has an impossible term " + std::to_string(e.term.value()));
      }
      prev_term = e.term;
    }
  }

  const bool is_snapshot = m.type == raft::MessageType::kSnapshot;
  if (pb.has_snapshot() != is_snapshot) {
    return Status::corruption(is_snapshot ? "snapshot message without a snapshot"
                                          : "non-snapshot message carries a snapshot");
  }
  if (is_snapshot) {
    const raftkvpb::SnapshotMetadata& pmd = pb.snapshot().metadata();
    raft::Snapshot s;
    s.metadata.index = raft::Index(pmd.index());
    s.metadata.term = raft::Term(pmd.term());
    const raftkvpb::ConfState& pcs = pmd.conf_state();
    auto voters = decode_ids(pcs.voters(), "voters", limits);
    if (!voters) return voters.status();
    auto learners = decode_ids(pcs.learners(), "learners", limits);
    if (!learners) return learners.status();
    auto outgoing = decode_ids(pcs.voters_outgoing(), "voters_outgoing", limits);
    if (!outgoing) return outgoing.status();
    auto next = decode_ids(pcs.learners_next(), "learners_next", limits);
    if (!next) return next.status();
    s.metadata.conf_state.voters = std::move(*voters);
    s.metadata.conf_state.learners = std::move(*learners);
    s.metadata.conf_state.voters_outgoing = std::move(*outgoing);
    s.metadata.conf_state.learners_next = std::move(*next);
    s.metadata.conf_state.auto_leave = pcs.auto_leave();
    RAFTKV_RETURN_IF_ERROR(check_snapshot_metadata(s.metadata));
    if (s.metadata.term > m.term) {
      return Status::corruption("snapshot term is newer than the sender's term");
    }
    s.data = pb.snapshot().data();
    m.snapshot = std::move(s);
  }
  return m;
}

}  // namespace raftkv::transport
