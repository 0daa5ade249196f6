// Transports talking over loopback gRPC: delivery between two and three
// members, batching, a peer going down and coming back, queue bounds, chunked
// snapshot streaming (and refusal of corrupted chunks), and refusal of
// messages from another cluster. Ports are always chosen by the kernel.
#include "transport/transport.h"

#include "base/crc32c.h"

#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <mutex>
#include <set>
#include <thread>

#include "loopback_member.h"
#include "raftkv/peer.grpc.pb.h"

namespace raftkv::transport {
namespace {

using namespace std::chrono_literals;
using raft::Message;
using raft::MessageType;
using raft::NodeId;

using loopback::kCluster;
using loopback::Member;
using loopback::wait_for;

Message heartbeat(NodeId from, NodeId to, uint64_t commit) {
  Message m;
  m.type = MessageType::kHeartbeat;
  m.from = from;
  m.to = to;
  m.term = raft::Term(1);
  m.commit = raft::Index(commit);
  return m;
}

Message append(NodeId from, NodeId to, uint64_t prev, size_t payload_bytes) {
  Message m;
  m.type = MessageType::kAppend;
  m.from = from;
  m.to = to;
  m.term = raft::Term(2);
  m.log_term = raft::Term(2);
  m.index = raft::Index(prev);
  m.entries.push_back(raft::Entry{raft::Term(2), raft::Index(prev + 1), raft::EntryType::kNormal,
                                  std::string(payload_bytes, 'e')});
  return m;
}

Message snapshot_message(NodeId from, NodeId to, std::string data) {
  Message m;
  m.type = MessageType::kSnapshot;
  m.from = from;
  m.to = to;
  m.term = raft::Term(3);
  raft::Snapshot s;
  s.metadata.index = raft::Index(500);
  s.metadata.term = raft::Term(3);
  s.metadata.conf_state.voters = {NodeId(1), NodeId(2)};
  s.data = std::move(data);
  m.snapshot = std::move(s);
  return m;
}

std::string pattern(size_t n) {
  std::string s(n, '\0');
  for (size_t i = 0; i < n; ++i) s[i] = static_cast<char>((i * 131 + i / 977) & 0xFF);
  return s;
}

TEST(TransportTest, TwoMembersExchangeMessagesInOrder) {
  Member a(1), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  ASSERT_TRUE(b.transport->add_peer(NodeId(1), a.url()).is_ok());
  std::vector<Message> sent;
  for (uint64_t i = 0; i < 20; ++i) sent.push_back(append(NodeId(1), NodeId(2), i, 10));
  a.transport->send(sent);
  b.transport->send({heartbeat(NodeId(2), NodeId(1), 7)});
  ASSERT_TRUE(wait_for([&] { return b.received() == 20 && a.received() == 1; }));
  EXPECT_EQ(b.messages(), sent);  // same content, same order
  EXPECT_EQ(a.messages()[0], heartbeat(NodeId(2), NodeId(1), 7));
  // The sender counts a batch once its write returns, which may be after delivery.
  EXPECT_TRUE(wait_for([&] { return a.transport->stats().messages_sent == 20; }));
  EXPECT_EQ(a.unreachable_reports(), 0u);
}

TEST(TransportTest, ThreeMembersEachReachBothOthers) {
  Member m1(1), m2(2), m3(3);
  Member* all[] = {&m1, &m2, &m3};
  for (uint64_t x = 1; x <= 3; ++x) {
    for (uint64_t y = 1; y <= 3; ++y) {
      if (x == y) continue;
      ASSERT_TRUE(all[x - 1]->transport->add_peer(NodeId(y), all[y - 1]->url()).is_ok());
    }
  }
  auto senders_of = [&](uint64_t to) {
    std::set<uint64_t> senders;
    for (const Message& m : all[to - 1]->messages()) senders.insert(m.from.value());
    return senders.size();
  };
  // A first connect can time out on a loaded machine; the message is then
  // dropped and reported, as the Raft layer would see it. Send until each
  // member heard from both others.
  ASSERT_TRUE(wait_for([&] {
    for (uint64_t from = 1; from <= 3; ++from) {
      std::vector<Message> out;
      for (uint64_t to = 1; to <= 3; ++to) {
        if (to != from) out.push_back(heartbeat(NodeId(from), NodeId(to), from * 10 + to));
      }
      all[from - 1]->transport->send(out);
    }
    return senders_of(1) == 2 && senders_of(2) == 2 && senders_of(3) == 2;
  }));
  for (uint64_t to = 1; to <= 3; ++to) {
    for (const Message& m : all[to - 1]->messages()) {
      EXPECT_EQ(m.commit.value(), m.from.value() * 10 + to);
    }
  }
}

// All messages queued for a peer when its sender wakes travel in one batch.
TEST(TransportTest, MessagesQueuedTogetherTravelInOneBatch) {
  Member a(1), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 200; ++i) msgs.push_back(heartbeat(NodeId(1), NodeId(2), i));
  a.transport->send(msgs);  // queued atomically: the sender sees all 200 at once
  ASSERT_TRUE(wait_for([&] { return b.received() == 200; }));
  ASSERT_TRUE(wait_for([&] { return a.transport->stats().messages_sent == 200; }));
  EXPECT_EQ(a.transport->stats().batches_sent, 1u);
  ASSERT_TRUE(wait_for([&] { return b.transport->stats().batches_received >= 1; }));
  EXPECT_EQ(b.transport->stats().batches_received, 1u);
}

TEST(TransportTest, BatchesAreBoundedByBytes) {
  TransportOptions o;
  o.max_batch_bytes = 10 * 1024;
  Member a(1, o), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 50; ++i) msgs.push_back(append(NodeId(1), NodeId(2), i, 1000));
  a.transport->send(msgs);
  ASSERT_TRUE(wait_for([&] { return b.received() == 50; }));
  ASSERT_TRUE(wait_for([&] { return a.transport->stats().messages_sent == 50; }));
  // ~1.1 KB each, 10 KB per batch: at least 5 batches, and never one per message.
  const TransportStats s = a.transport->stats();
  EXPECT_GE(s.batches_sent, 5u);
  EXPECT_LT(s.batches_sent, 50u);
  EXPECT_EQ(b.messages(), msgs);
}

TEST(TransportTest, FullQueueDropsAndReportsUnreachable) {
  TransportOptions o;
  o.max_queue_messages = 10;
  Member a(1, o), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 100; ++i) msgs.push_back(heartbeat(NodeId(1), NodeId(2), i));
  a.transport->send(msgs);  // one call: the queue takes 10, the other 90 are dropped
  EXPECT_EQ(a.transport->stats().dropped_queue_full, 90u);
  ASSERT_TRUE(wait_for([&] { return b.received() == 10; }));
  ASSERT_TRUE(wait_for([&] { return a.unreachable_reports() >= 1; }));
  {
    std::lock_guard lk(a.mu);
    EXPECT_EQ(a.unreachable[0], NodeId(2));
  }
  std::this_thread::sleep_for(50ms);
  EXPECT_EQ(b.received(), 10u);
  EXPECT_EQ(b.messages().front().commit.value(), 0u);  // the oldest were kept
}

TEST(TransportTest, PeerThatGoesDownAndComesBackIsReconnected) {
  Member a(1);
  auto b = std::make_unique<Member>(2);
  const int port = b->port;
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b->url()).is_ok());
  a.transport->send({heartbeat(NodeId(1), NodeId(2), 1)});
  ASSERT_TRUE(wait_for([&] { return b->received() == 1; }));

  b->shutdown();
  // Keep the leader's heartbeats flowing until the sender notices.
  ASSERT_TRUE(wait_for([&] {
    a.transport->send({heartbeat(NodeId(1), NodeId(2), 2)});
    return a.unreachable_reports() >= 1;
  }));
  EXPECT_GT(a.transport->stats().dropped_peer_down, 0u);

  b = std::make_unique<Member>(2, TransportOptions{}, port);  // same address, new process
  ASSERT_EQ(b->port, port);
  // Messages sent after the restart reach the new process (older ones still
  // queued when it came up may arrive first).
  auto got_new = [&] {
    for (const Message& m : b->messages()) {
      if (m.commit.value() == 3) return true;
    }
    return false;
  };
  ASSERT_TRUE(wait_for([&] {
    a.transport->send({heartbeat(NodeId(1), NodeId(2), 3)});
    return got_new();
  }));
}

TEST(TransportTest, UpdatePeerMovesTheStreamToTheNewAddress) {
  Member a(1), old_b(2), new_b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), old_b.url()).is_ok());
  a.transport->send({heartbeat(NodeId(1), NodeId(2), 1)});
  ASSERT_TRUE(wait_for([&] { return old_b.received() == 1; }));
  ASSERT_TRUE(a.transport->update_peer(NodeId(2), new_b.url()).is_ok());
  ASSERT_TRUE(wait_for([&] {
    a.transport->send({heartbeat(NodeId(1), NodeId(2), 2)});
    return new_b.received() >= 1;
  }));
  EXPECT_EQ(old_b.received(), 1u);
}

TEST(TransportTest, RemovedOrUnknownPeerMessagesAreCountedAndDropped) {
  Member a(1), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  EXPECT_EQ(a.transport->add_peer(NodeId(2), b.url()).code(), Code::kAlreadyExists);
  EXPECT_EQ(a.transport->add_peer(NodeId(1), b.url()).code(), Code::kInvalidArgument);
  EXPECT_EQ(a.transport->add_peer(NodeId(3), "https://127.0.0.1:1").code(), Code::kInvalidArgument);
  a.transport->remove_peer(NodeId(2));
  a.transport->send({heartbeat(NodeId(1), NodeId(2), 1), heartbeat(NodeId(1), NodeId(5), 1)});
  EXPECT_EQ(a.transport->stats().dropped_unknown_peer, 2u);
  EXPECT_EQ(a.transport->update_peer(NodeId(2), b.url()).code(), Code::kNotFound);
}

TEST(TransportTest, FullInboxDropsAndCounts) {
  Member a(1), b(2, {}, 0, nullptr, /*inbox_capacity=*/5);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  std::vector<Message> msgs;
  for (uint64_t i = 0; i < 12; ++i) msgs.push_back(heartbeat(NodeId(1), NodeId(2), i));
  a.transport->send(msgs);
  ASSERT_TRUE(wait_for([&] { return b.transport->stats().inbound_dropped == 7; }));
  EXPECT_EQ(b.received(), 5u);
  EXPECT_EQ(b.transport->stats().messages_delivered, 5u);
}

TEST(TransportTest, MessagesFromAnotherClusterAreRefused) {
  Member a(1), b(2, {}, 0, nullptr, SIZE_MAX, /*cluster=*/0x9999);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  ASSERT_TRUE(wait_for([&] {
    a.transport->send({heartbeat(NodeId(1), NodeId(2), 1)});
    return b.transport->stats().inbound_rejected >= 1 && a.unreachable_reports() >= 1;
  }));
  EXPECT_EQ(b.received(), 0u);

  // The refusal as the sender sees it: FAILED_PRECONDITION naming both clusters.
  auto stub = raftkvpb::Peer::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(b.port),
                                                          grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  raftkvpb::MessagesResponse resp;
  auto w = stub->Messages(&ctx, &resp);
  raftkvpb::MessageBatch batch;
  encode_header(kCluster, NodeId(1), NodeId(2), batch.mutable_header());
  w->Write(batch);
  w->WritesDone();
  grpc::Status st = w->Finish();
  EXPECT_EQ(st.error_code(), grpc::StatusCode::FAILED_PRECONDITION);
  EXPECT_NE(st.error_message().find("of cluster 1234"), std::string::npos) << st.error_message();
  EXPECT_NE(st.error_message().find("belongs to cluster 9999"), std::string::npos);
}

TEST(TransportTest, SnapshotOfSeveralMegabytesIsStreamedInChunks) {
  TransportOptions o;
  o.snapshot_chunk_bytes = 256 * 1024;
  Member a(1, o), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  const Message snap = snapshot_message(NodeId(1), NodeId(2), pattern(5 * 1024 * 1024 + 17));
  a.transport->send({snap, heartbeat(NodeId(1), NodeId(2), 9)});
  ASSERT_TRUE(wait_for([&] { return b.received() == 2 && a.snapshots().size() == 1; }));
  EXPECT_EQ(a.snapshots()[0], std::make_pair(NodeId(2), true));
  bool found = false;
  for (const Message& m : b.messages()) {
    if (m.type == MessageType::kSnapshot) {
      EXPECT_EQ(m, snap);
      found = true;
    }
  }
  EXPECT_TRUE(found);
  EXPECT_EQ(b.transport->stats().snapshots_received, 1u);
}

TEST(TransportTest, FileSinkStreamsTheImageToDiskAndDeliversItsPath) {
  const std::filesystem::path dir =
      std::filesystem::temp_directory_path() / ("raftkv-snap-" + std::to_string(::getpid()));
  std::filesystem::create_directories(dir);
  {
    Member a(1), b(2, {}, 0, std::make_shared<FileSnapshotSink>(dir.string(), 64 << 20));
    ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
    const std::string image = pattern(3 * 1024 * 1024);
    a.transport->send({snapshot_message(NodeId(1), NodeId(2), image)});
    ASSERT_TRUE(wait_for([&] { return b.received() == 1; }));
    const std::string path = b.messages()[0].snapshot->data;
    EXPECT_EQ(std::filesystem::path(path).parent_path(), dir);
    EXPECT_EQ(std::filesystem::path(path).extension(), ".snap");
    std::ifstream in(path, std::ios::binary);
    std::string on_disk((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    EXPECT_EQ(on_disk, image);
  }
  std::filesystem::remove_all(dir);
}

TEST(TransportTest, SnapshotLargerThanTheReceiverAcceptsIsReportedFailed) {
  Member a(1), b(2, {}, 0, std::make_shared<MemorySnapshotSink>(1 << 20));
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  a.transport->send({snapshot_message(NodeId(1), NodeId(2), pattern(2 << 20))});
  ASSERT_TRUE(wait_for([&] { return a.snapshots().size() == 1; }));
  EXPECT_EQ(a.snapshots()[0], std::make_pair(NodeId(2), false));
  EXPECT_EQ(b.received(), 0u);
  EXPECT_EQ(b.transport->stats().snapshots_rejected, 1u);
}

TEST(TransportTest, SecondSnapshotWhileOneIsInFlightIsReportedFailed) {
  Member a(1), b(2);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), b.url()).is_ok());
  // One send() call: the first transfer is running when the second arrives.
  a.transport->send({snapshot_message(NodeId(1), NodeId(2), pattern(2 << 20)),
                     snapshot_message(NodeId(1), NodeId(2), pattern(10))});
  ASSERT_TRUE(wait_for([&] { return a.snapshots().size() == 2; }));
  // The refusal is reported at once; the first transfer completes afterwards.
  EXPECT_EQ(a.snapshots()[0], std::make_pair(NodeId(2), false));
  EXPECT_EQ(a.snapshots()[1], std::make_pair(NodeId(2), true));
  ASSERT_EQ(b.received(), 1u);
  EXPECT_EQ(b.messages()[0].snapshot->data.size(), 2u << 20);
}

// Hand-built Messages streams: what a faulty or foreign sender could send.
grpc::Status send_batch(int port, const raftkvpb::MessageBatch& batch) {
  auto stub = raftkvpb::Peer::NewStub(
      grpc::CreateChannel("127.0.0.1:" + std::to_string(port), grpc::InsecureChannelCredentials()));
  grpc::ClientContext ctx;
  raftkvpb::MessagesResponse resp;
  auto w = stub->Messages(&ctx, &resp);
  w->Write(batch);
  w->WritesDone();
  return w->Finish();
}

TEST(TransportTest, MalformedMessageEndsTheStreamAndIsNotDelivered) {
  Member b(2);
  raftkvpb::MessageBatch batch;
  encode_header(kCluster, NodeId(1), NodeId(2), batch.mutable_header());
  encode_message(heartbeat(NodeId(1), NodeId(2), 1), batch.add_messages());
  encode_message(heartbeat(NodeId(1), NodeId(2), 2), batch.add_messages());
  batch.mutable_messages(1)->set_type(99);
  grpc::Status st = send_batch(b.port, batch);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(st.error_message().find("message type 99"), std::string::npos) << st.error_message();
  // Messages before the bad one were already valid and delivered; none after.
  EXPECT_EQ(b.received(), 1u);
  EXPECT_EQ(b.transport->stats().inbound_rejected, 1u);
}

TEST(TransportTest, SnapshotOnTheMessagesStreamIsRefused) {
  Member b(2);
  raftkvpb::MessageBatch batch;
  encode_header(kCluster, NodeId(1), NodeId(2), batch.mutable_header());
  encode_message(snapshot_message(NodeId(1), NodeId(2), "x"), batch.add_messages());
  grpc::Status st = send_batch(b.port, batch);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
  EXPECT_NE(st.error_message().find("SendSnapshot"), std::string::npos);
  EXPECT_EQ(b.received(), 0u);
}

TEST(TransportTest, StoppedTransportRefusesIncomingStreams) {
  Member b(2);
  b.transport->stop();
  raftkvpb::MessageBatch batch;
  encode_header(kCluster, NodeId(1), NodeId(2), batch.mutable_header());
  encode_message(heartbeat(NodeId(1), NodeId(2), 1), batch.add_messages());
  EXPECT_EQ(send_batch(b.port, batch).error_code(), grpc::StatusCode::UNAVAILABLE);
  EXPECT_EQ(b.received(), 0u);
}

// Hand-built SendSnapshot streams against a receiver: a chunk whose bytes do
// not match its checksum, and an image whose chunks are fine but whose whole
// checksum is not, are both refused and nothing is delivered.
class RawSnapshotTest : public ::testing::Test {
 protected:
  grpc::Status send_chunks(const std::vector<raftkvpb::SnapshotChunk>& chunks) {
    auto stub = raftkvpb::Peer::NewStub(grpc::CreateChannel("127.0.0.1:" + std::to_string(b.port),
                                                            grpc::InsecureChannelCredentials()));
    grpc::ClientContext ctx;
    raftkvpb::SnapshotAck ack;
    auto w = stub->SendSnapshot(&ctx, &ack);
    for (const auto& c : chunks) {
      if (!w->Write(c)) break;
    }
    w->WritesDone();
    return w->Finish();
  }

  // Two chunks of `image`, correctly checksummed.
  std::vector<raftkvpb::SnapshotChunk> good_chunks(const std::string& image) {
    const size_t half = image.size() / 2;
    std::vector<raftkvpb::SnapshotChunk> c(2);
    encode_header(kCluster, NodeId(1), NodeId(2), c[0].mutable_header());
    encode_message(snapshot_message(NodeId(1), NodeId(2), ""), c[0].mutable_message(), false);
    c[0].set_total_bytes(image.size());
    c[0].set_offset(0);
    c[0].set_data(image.substr(0, half));
    c[0].set_crc32c(crc32c(c[0].data()));
    c[1].set_offset(half);
    c[1].set_data(image.substr(half));
    c[1].set_crc32c(crc32c(c[1].data()));
    c[1].set_last(true);
    c[1].set_total_crc32c(crc32c(image));
    return c;
  }

  Member b{2};
};

TEST_F(RawSnapshotTest, WellFormedChunksAreAccepted) {
  const std::string image = pattern(100000);
  grpc::Status st = send_chunks(good_chunks(image));
  ASSERT_TRUE(st.ok()) << st.error_message();
  ASSERT_EQ(b.received(), 1u);
  EXPECT_EQ(b.messages()[0].snapshot->data, image);
}

TEST_F(RawSnapshotTest, CorruptedChunkIsRejected) {
  auto chunks = good_chunks(pattern(100000));
  (*chunks[1].mutable_data())[123] ^= 0x40;  // bit flip after the checksum was taken
  grpc::Status st = send_chunks(chunks);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(st.error_message().find("failed its checksum"), std::string::npos)
      << st.error_message();
  EXPECT_EQ(b.received(), 0u);
  EXPECT_EQ(b.transport->stats().snapshots_rejected, 1u);
}

TEST_F(RawSnapshotTest, WholeImageChecksumMismatchIsRejected) {
  auto chunks = good_chunks(pattern(100000));
  chunks[1].set_total_crc32c(chunks[1].total_crc32c() ^ 1);
  grpc::Status st = send_chunks(chunks);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(st.error_message().find("whole-image checksum"), std::string::npos);
  EXPECT_EQ(b.received(), 0u);
}

TEST_F(RawSnapshotTest, MissingOrOutOfOrderChunksAreRejected) {
  auto chunks = good_chunks(pattern(100000));
  chunks[1].set_offset(chunks[1].offset() + 1);
  EXPECT_EQ(send_chunks(chunks).error_code(), grpc::StatusCode::DATA_LOSS);
  auto truncated = good_chunks(pattern(100000));
  truncated.pop_back();  // stream ends before `last`
  grpc::Status st = send_chunks(truncated);
  EXPECT_EQ(st.error_code(), grpc::StatusCode::DATA_LOSS);
  EXPECT_NE(st.error_message().find("ended at offset"), std::string::npos) << st.error_message();
  EXPECT_EQ(b.received(), 0u);
}

// A peer that accepts TCP connections but never speaks HTTP/2: stop() must
// still return promptly and join every thread.
TEST(TransportTest, StopReturnsPromptlyWhilePeerIsHung) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 16), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  TransportOptions o;
  o.connect_timeout_ms = 30000;  // longer than the test: stop() must not wait for it
  Member a(1, o);
  ASSERT_TRUE(a.transport->add_peer(NodeId(2), url).is_ok());
  a.transport->send(
      {heartbeat(NodeId(1), NodeId(2), 1), snapshot_message(NodeId(1), NodeId(2), pattern(1000))});
  std::this_thread::sleep_for(100ms);
  const auto start = std::chrono::steady_clock::now();
  a.transport->stop();
  EXPECT_LT(std::chrono::steady_clock::now() - start, 2s);
  ::close(fd);
}

}  // namespace
}  // namespace raftkv::transport
