// Wire conversion of raft messages: round trips of every type and field, and
// refusal of every kind of malformed or misaddressed input (DESIGN invariant 6).
#include "transport/codec.h"

#include <gtest/gtest.h>

#include <random>
#include <string>

namespace raftkv::transport {
namespace {

using raft::Entry;
using raft::EntryType;
using raft::Index;
using raft::Message;
using raft::MessageType;
using raft::NodeId;
using raft::Term;

constexpr NodeId kFrom{7};
constexpr NodeId kLocal{9};

Message base(MessageType type) {
  Message m;
  m.type = type;
  m.from = kFrom;
  m.to = kLocal;
  m.term = Term(5);
  return m;
}

raft::Snapshot joint_snapshot() {
  raft::Snapshot s;
  s.metadata.index = Index(100);
  s.metadata.term = Term(4);
  s.metadata.conf_state.voters = {NodeId(1), NodeId(2), NodeId(3)};
  s.metadata.conf_state.learners = {NodeId(8)};
  s.metadata.conf_state.voters_outgoing = {NodeId(1), NodeId(2), NodeId(4)};
  s.metadata.conf_state.learners_next = {NodeId(4)};
  s.metadata.conf_state.auto_leave = true;
  s.data = std::string("state\0machine", 13);
  return s;
}

// Encodes, goes through bytes (as on the wire) and decodes.
Result<Message> round_trip(const Message& m, const DecodeLimits& limits = {}) {
  raftkvpb::Message pb;
  encode_message(m, &pb);
  std::string bytes;
  EXPECT_TRUE(pb.SerializeToString(&bytes));
  raftkvpb::Message parsed;
  EXPECT_TRUE(parsed.ParseFromString(bytes));
  return decode_message(parsed, kFrom, kLocal, limits);
}

raftkvpb::Message encoded(const Message& m) {
  raftkvpb::Message pb;
  encode_message(m, &pb);
  return pb;
}

TEST(CodecTest, EveryMessageTypeRoundTripsWithAllScalarFields) {
  for (uint32_t t = 0; t <= static_cast<uint32_t>(MessageType::kTransferLeader); ++t) {
    Message m = base(static_cast<MessageType>(t));
    if (m.type == MessageType::kSnapshot) m.snapshot = joint_snapshot();
    m.log_term = Term(3);
    m.index = Index(41);
    m.commit = Index(40);
    m.reject = true;
    m.reject_hint = Index(12);
    m.context = "ctx-" + std::to_string(t);
    Result<Message> back = round_trip(m);
    ASSERT_TRUE(back.is_ok()) << "type " << t << ": " << back.status().to_string();
    EXPECT_EQ(*back, m) << "type " << t;
  }
}

TEST(CodecTest, AppendWithEntriesRoundTrips) {
  Message m = base(MessageType::kAppend);
  m.index = Index(10);
  m.log_term = Term(4);
  m.commit = Index(9);
  m.entries = {Entry{Term(4), Index(11), EntryType::kNormal, "a"},
               Entry{Term(5), Index(12), EntryType::kConfChange, std::string("\0\1\2", 3)},
               Entry{Term(5), Index(13), EntryType::kNormal, ""}};
  Result<Message> back = round_trip(m);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(*back, m);
}

TEST(CodecTest, SnapshotMetadataCanTravelWithoutData) {
  Message m = base(MessageType::kSnapshot);
  m.snapshot = joint_snapshot();
  raftkvpb::Message pb;
  encode_message(m, &pb, /*with_snapshot_data=*/false);
  Result<Message> back = decode_message(pb, kFrom, kLocal);
  ASSERT_TRUE(back.is_ok()) << back.status().to_string();
  EXPECT_EQ(back->snapshot->metadata, m.snapshot->metadata);
  EXPECT_TRUE(back->snapshot->data.empty());
}

void expect_refused(const raftkvpb::Message& pb, Code code, const std::string& needle,
                    const DecodeLimits& limits = {}) {
  Result<Message> r = decode_message(pb, kFrom, kLocal, limits);
  ASSERT_FALSE(r.is_ok()) << "accepted input that should be refused (" << needle << ")";
  EXPECT_EQ(r.status().code(), code) << r.status().to_string();
  EXPECT_NE(r.status().message().find(needle), std::string::npos) << r.status().to_string();
}

TEST(CodecTest, RefusesOutOfRangeMessageType) {
  raftkvpb::Message pb = encoded(base(MessageType::kHeartbeat));
  pb.set_type(14);
  expect_refused(pb, Code::kCorruption, "message type 14");
}

TEST(CodecTest, RefusesOutOfRangeEntryType) {
  Message m = base(MessageType::kPropose);
  m.entries = {Entry{Term(0), Index(0), EntryType::kNormal, "x"}};
  raftkvpb::Message pb = encoded(m);
  pb.mutable_entries(0)->set_type(2);
  expect_refused(pb, Code::kCorruption, "entry type 2");
}

TEST(CodecTest, RefusesMessageAddressedToAnotherMember) {
  Message m = base(MessageType::kVote);
  m.to = NodeId(10);
  expect_refused(encoded(m), Code::kInvalidArgument, "addressed to member a");
}

TEST(CodecTest, RefusesMessageWhoseSenderDiffersFromTheStreamSender) {
  Message m = base(MessageType::kVote);
  m.from = NodeId(3);
  expect_refused(encoded(m), Code::kInvalidArgument, "claims sender 3");
}

TEST(CodecTest, RefusesAppendWithGapInEntryIndexes) {
  Message m = base(MessageType::kAppend);
  m.index = Index(10);
  m.entries = {Entry{Term(5), Index(11), EntryType::kNormal, ""},
               Entry{Term(5), Index(13), EntryType::kNormal, ""}};
  expect_refused(encoded(m), Code::kCorruption, "not consecutive");
}

TEST(CodecTest, RefusesAppendEntryNewerThanLeaderTerm) {
  Message m = base(MessageType::kAppend);
  m.index = Index(10);
  m.entries = {Entry{Term(6), Index(11), EntryType::kNormal, ""}};
  expect_refused(encoded(m), Code::kCorruption, "impossible term");
}

TEST(CodecTest, RefusesAppendEntryOlderThanPrevLogTerm) {
  Message m = base(MessageType::kAppend);
  m.index = Index(10);
  m.log_term = Term(4);
  m.entries = {Entry{Term(3), Index(11), EntryType::kNormal, ""}};
  expect_refused(encoded(m), Code::kCorruption, "impossible term");
}

TEST(CodecTest, RefusesSnapshotMessageWithoutSnapshot) {
  expect_refused(encoded(base(MessageType::kSnapshot)), Code::kCorruption,
                 "snapshot message without a snapshot");
}

TEST(CodecTest, RefusesSnapshotOnOtherMessageTypes) {
  Message m = base(MessageType::kAppend);
  m.snapshot = joint_snapshot();
  expect_refused(encoded(m), Code::kCorruption, "non-snapshot message carries a snapshot");
}

TEST(CodecTest, RefusesTooManyEntriesAndTooLongContext) {
  Message m = base(MessageType::kPropose);
  m.entries.resize(5);
  DecodeLimits limits;
  limits.max_entries_per_message = 4;
  expect_refused(encoded(m), Code::kCorruption, "too many entries", limits);
  Message c = base(MessageType::kReadIndex);
  c.context = std::string(65, 'x');
  limits.max_context_bytes = 64;
  expect_refused(encoded(c), Code::kCorruption, "context of 65 bytes", limits);
}

// Each bad ConfState / metadata rule, checked through the wire path.
TEST(CodecTest, RefusesInsaneSnapshotMetadata) {
  struct Case {
    const char* needle;
    void (*mutate)(raft::Snapshot&);
  };
  const Case cases[] = {
      {"zero index or term", [](raft::Snapshot& s) { s.metadata.index = Index(0); }},
      {"zero index or term", [](raft::Snapshot& s) { s.metadata.term = Term(0); }},
      {"no voters",
       [](raft::Snapshot& s) {
         s.metadata.conf_state = {};
         s.metadata.conf_state.learners = {NodeId(2)};
       }},
      {"voters not sorted",
       [](raft::Snapshot& s) {
         s.metadata.conf_state.voters = {NodeId(2), NodeId(1)};
       }},
      {"voters not sorted or has duplicates",
       [](raft::Snapshot& s) {
         s.metadata.conf_state.voters = {NodeId(2), NodeId(2)};
       }},
      {"voters contains member id 0",
       [](raft::Snapshot& s) {
         s.metadata.conf_state.voters = {NodeId(0), NodeId(2)};
       }},
      {"both voter and learner",
       [](raft::Snapshot& s) { s.metadata.conf_state.learners = {NodeId(2)}; }},
      {"both outgoing voter and learner",
       [](raft::Snapshot& s) { s.metadata.conf_state.learners = {NodeId(4)}; }},
      {"is not an outgoing voter",
       [](raft::Snapshot& s) { s.metadata.conf_state.learners_next = {NodeId(5)}; }},
      {"learners_next member is an incoming voter",
       [](raft::Snapshot& s) { s.metadata.conf_state.learners_next = {NodeId(2)}; }},
      {"outside a joint configuration",
       [](raft::Snapshot& s) {
         s.metadata.conf_state.voters_outgoing.clear();
         s.metadata.conf_state.learners_next.clear();
       }},
      {"newer than the sender's term", [](raft::Snapshot& s) { s.metadata.term = Term(6); }},
  };
  for (const Case& c : cases) {
    Message m = base(MessageType::kSnapshot);
    m.snapshot = joint_snapshot();
    c.mutate(*m.snapshot);
    expect_refused(encoded(m), Code::kCorruption, c.needle);
  }
}

TEST(CodecTest, HeaderChecksVersionClusterAndAddressing) {
  raftkvpb::Header h;
  encode_header(0xabc, kFrom, kLocal, &h);
  EXPECT_TRUE(check_header(h, 0xabc, kLocal).is_ok());

  Status other_cluster = check_header(h, 0xdef, kLocal);
  EXPECT_EQ(other_cluster.code(), Code::kFailedPrecondition);
  EXPECT_NE(other_cluster.message().find("of cluster abc"), std::string::npos);
  EXPECT_NE(other_cluster.message().find("belongs to cluster def"), std::string::npos);
  EXPECT_NE(other_cluster.message().find("--initial-cluster-token"), std::string::npos);

  raftkvpb::Header v = h;
  v.set_protocol_version(kProtocolVersion + 1);
  EXPECT_EQ(check_header(v, 0xabc, kLocal).code(), Code::kFailedPrecondition);

  raftkvpb::Header to = h;
  to.set_to(10);
  EXPECT_EQ(check_header(to, 0xabc, kLocal).code(), Code::kInvalidArgument);

  raftkvpb::Header self = h;
  self.set_from(kLocal.value());
  EXPECT_EQ(check_header(self, 0xabc, kLocal).code(), Code::kInvalidArgument);
  raftkvpb::Header zero = h;
  zero.set_from(0);
  EXPECT_EQ(check_header(zero, 0xabc, kLocal).code(), Code::kInvalidArgument);
}

// Random bytes and random bit flips of a valid message: parsing plus
// validation must either succeed or refuse, never crash (run under ASan too).
TEST(CodecTest, MalformedBytesNeverCrashTheDecoder) {
  Message m = base(MessageType::kSnapshot);
  m.snapshot = joint_snapshot();
  std::string valid;
  ASSERT_TRUE(encoded(m).SerializeToString(&valid));
  std::mt19937_64 rng(20240601);
  int parsed = 0, accepted = 0;
  for (int i = 0; i < 3000; ++i) {
    std::string bytes;
    if (i % 2 == 0) {
      bytes.resize(rng() % 200);
      for (char& c : bytes) c = static_cast<char>(rng());
    } else {
      bytes = valid;
      for (int k = 0; k < 3; ++k)
        bytes[rng() % bytes.size()] ^= static_cast<char>(1 << (rng() % 8));
    }
    raftkvpb::Message pb;
    if (!pb.ParseFromString(bytes)) continue;
    ++parsed;
    if (decode_message(pb, kFrom, kLocal).is_ok()) ++accepted;
  }
  EXPECT_GT(parsed, 0);
  EXPECT_LT(accepted, parsed);  // most mutations are caught by validation
}

TEST(CodecTest, Crc32cMatchesTheCastagnoliCheckValue) {
  EXPECT_EQ(crc32c(0, "123456789"), 0xE3069283u);
  // Continuing a checksum over pieces equals the checksum of the whole.
  EXPECT_EQ(crc32c(crc32c(0, "12345"), "6789"), 0xE3069283u);
  EXPECT_EQ(crc32c(0, ""), 0u);
  // Long inputs (the 8-byte path) agree with a bit-at-a-time reference at
  // every length and split point.
  auto reference = [](std::string_view d) {
    uint32_t c = ~0u;
    for (unsigned char b : d) {
      c ^= b;
      for (int k = 0; k < 8; ++k) c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : (c >> 1);
    }
    return ~c;
  };
  std::string data;
  for (int i = 0; i < 100; ++i) data.push_back(static_cast<char>(i * 37 + 11));
  for (size_t len = 0; len <= data.size(); ++len) {
    const std::string_view d(data.data(), len);
    EXPECT_EQ(crc32c(0, d), reference(d)) << "length " << len;
    EXPECT_EQ(crc32c(crc32c(0, d.substr(0, len / 3)), d.substr(len / 3)), reference(d));
  }
}

}  // namespace
}  // namespace raftkv::transport
