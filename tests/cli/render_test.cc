// etcdctl-compatible rendering of responses (the expected strings are what etcdctl 3.4
// prints for the same responses).
#include "cli/render.h"

#include <gtest/gtest.h>

namespace raftkv::cli {
namespace {

pb::ResponseHeader header(int64_t revision) {
  pb::ResponseHeader h;
  h.set_cluster_id(179672184061982177u);
  h.set_member_id(9717002358888785801u);
  h.set_revision(revision);
  h.set_raft_term(2);
  return h;
}

mvccpb::KeyValue kv(const std::string& k, const std::string& v, int64_t create, int64_t mod,
                    int64_t version) {
  mvccpb::KeyValue x;
  x.set_key(k);
  x.set_value(v);
  x.set_create_revision(create);
  x.set_mod_revision(mod);
  x.set_version(version);
  return x;
}

TEST(RenderGet, SimpleJsonAndTable) {
  pb::RangeResponse r;
  *r.mutable_header() = header(5);
  *r.add_kvs() = kv("foo", "baz", 2, 5, 4);
  r.set_count(1);
  EXPECT_EQ(render_get(r, OutputFormat::kSimple, {}), "foo\nbaz\n");
  EXPECT_EQ(render_get(r, OutputFormat::kSimple, {true, false}), "foo\n\n");
  EXPECT_EQ(render_get(r, OutputFormat::kSimple, {false, true}), "baz\n");
  EXPECT_EQ(render_get(r, OutputFormat::kJson, {}),
            R"({"header":{"cluster_id":179672184061982177,"member_id":9717002358888785801,)"
            R"("revision":5,"raft_term":2},"kvs":[{"key":"Zm9v","create_revision":2,)"
            R"("mod_revision":5,"version":4,"value":"YmF6"}],"count":1})"
            "\n");
  EXPECT_NE(render_get(r, OutputFormat::kTable, {}).find("| foo |   baz |"), std::string::npos);
}

TEST(RenderGet, MissingKeyJsonIsOnlyTheHeader) {
  pb::RangeResponse r;
  *r.mutable_header() = header(5);
  EXPECT_EQ(render_get(r, OutputFormat::kSimple, {}), "");
  EXPECT_EQ(render_get(r, OutputFormat::kJson, {}),
            R"({"header":{"cluster_id":179672184061982177,"member_id":9717002358888785801,)"
            R"("revision":5,"raft_term":2}})"
            "\n");
}

TEST(RenderPutAndDelete, WithPreviousValues) {
  pb::PutResponse p;
  *p.mutable_header() = header(4);
  EXPECT_EQ(render_put(p, OutputFormat::kSimple), "OK\n");
  *p.mutable_prev_kv() = kv("foo", "bar", 2, 3, 2);
  EXPECT_EQ(render_put(p, OutputFormat::kSimple), "OK\nfoo\nbar\n");
  pb::DeleteRangeResponse d;
  d.set_deleted(2);
  *d.add_prev_kvs() = kv("k2", "a", 5, 5, 1);
  *d.add_prev_kvs() = kv("k3", "b", 5, 5, 1);
  EXPECT_EQ(render_delete(d, OutputFormat::kSimple), "2\nk2\na\nk3\nb\n");
}

TEST(RenderTxn, SimpleListsEachResponseAfterABlankLine) {
  pb::TxnResponse t;
  t.set_succeeded(true);
  t.add_responses()->mutable_response_put();
  auto* range = t.add_responses()->mutable_response_range();
  *range->add_kvs() = kv("k2", "a", 5, 5, 1);
  EXPECT_EQ(render_txn(t, OutputFormat::kSimple), "SUCCESS\n\nOK\n\nk2\na\n");
  pb::TxnResponse f;
  EXPECT_EQ(render_txn(f, OutputFormat::kSimple), "FAILURE\n");
}

TEST(RenderTxn, JsonWrapsEachResponseLikeGoOneofs) {
  pb::TxnResponse t;
  *t.mutable_header() = header(8);
  t.set_succeeded(true);
  t.add_responses()->mutable_response_put()->mutable_header()->set_revision(8);
  EXPECT_EQ(render_txn(t, OutputFormat::kJson),
            R"({"header":{"cluster_id":179672184061982177,"member_id":9717002358888785801,)"
            R"("revision":8,"raft_term":2},"succeeded":true,"responses":[{"Response":)"
            R"({"ResponsePut":{"header":{"revision":8}}}}]})"
            "\n");
}

TEST(RenderWatch, PutAndDeleteEventsWithPrevKv) {
  pb::WatchResponse w;
  *w.mutable_header() = header(3);
  auto* put = w.add_events();
  *put->mutable_kv() = kv("k1", "v2", 2, 3, 2);
  *put->mutable_prev_kv() = kv("k1", "v1", 2, 2, 1);
  auto* del = w.add_events();
  del->set_type(mvccpb::Event::DELETE);
  del->mutable_kv()->set_key("k1");
  del->mutable_kv()->set_mod_revision(4);
  EXPECT_EQ(render_watch(w, OutputFormat::kSimple), "PUT\nk1\nv1\nk1\nv2\nDELETE\nk1\n\n");
  std::string json = render_watch(w, OutputFormat::kJson);
  EXPECT_NE(json.find(R"("Events":[{"kv":{"key":"azE=")"), std::string::npos) << json;
  EXPECT_NE(json.find(R"({"type":1,"kv":{"key":"azE=","mod_revision":4}})"), std::string::npos);
  EXPECT_NE(json.find(R"("CompactRevision":0,"Canceled":false,"Created":false})"),
            std::string::npos);
}

TEST(RenderLease, EtcdctlSentences) {
  pb::LeaseGrantResponse g;
  g.set_id(0x6789a2420268bb16);
  g.set_ttl(60);
  EXPECT_EQ(render_lease_grant(g, OutputFormat::kSimple),
            "lease 6789a2420268bb16 granted with TTL(60s)\n");
  EXPECT_EQ(render_lease_grant(g, OutputFormat::kJson),
            "{\"ID\":7460672662107896598,\"TTL\":60,\"Error\":\"\"}\n");
  pb::LeaseTimeToLiveResponse t;
  t.set_id(0x123);
  t.set_ttl(-1);
  EXPECT_EQ(render_lease_ttl(t, OutputFormat::kSimple, false),
            "lease 0000000000000123 already expired\n");
  t.set_ttl(99);
  t.set_grantedttl(100);
  t.add_keys("lk");
  EXPECT_EQ(render_lease_ttl(t, OutputFormat::kSimple, true),
            "lease 0000000000000123 granted with TTL(100s), remaining(99s), attached keys([lk])\n");
  pb::LeaseLeasesResponse l;
  l.add_leases()->set_id(0x16);
  EXPECT_EQ(render_lease_list(l, OutputFormat::kSimple), "found 1 leases\n0000000000000016\n");
}

TEST(RenderMembers, SimpleLineAndJsonOmitsFalseLearner) {
  pb::MemberListResponse r;
  auto* m = r.add_members();
  m->set_id(0x86d9ba299b32e789);
  m->set_name("n1");
  m->add_peerurls("http://127.0.0.1:35397");
  m->add_clienturls("http://127.0.0.1:38351");
  auto* unstarted = r.add_members();
  unstarted->set_id(0x1);
  unstarted->add_peerurls("http://127.0.0.1:1");
  EXPECT_EQ(render_member_list(r, OutputFormat::kSimple),
            "86d9ba299b32e789, started, n1, http://127.0.0.1:35397, http://127.0.0.1:38351, false\n"
            "1, unstarted, , http://127.0.0.1:1, , false\n");
  EXPECT_EQ(render_member_list(r, OutputFormat::kJson),
            R"({"header":{},"members":[{"ID":9717002358888785801,"name":"n1",)"
            R"("peerURLs":["http://127.0.0.1:35397"],"clientURLs":["http://127.0.0.1:38351"]},)"
            R"({"ID":1,"peerURLs":["http://127.0.0.1:1"]}]})"
            "\n");
}

TEST(RenderEndpointStatus, SimpleLineEndsLikeEtcdctlsAndFailuresAreLeftOut) {
  pb::StatusResponse s;
  *s.mutable_header() = header(8);
  s.set_version("3.4.23");
  s.set_dbsize(24576);
  s.set_leader(9717002358888785801u);
  s.set_raftindex(16);
  s.set_raftterm(2);
  s.set_raftappliedindex(16);
  std::vector<EndpointStatus> all = {{"127.0.0.1:38351", s, ""},
                                     {"127.0.0.1:1", std::nullopt, "refused"}};
  EXPECT_EQ(render_endpoint_status(all, OutputFormat::kSimple),
            "127.0.0.1:38351, 86d9ba299b32e789, 3.4.23, 25 kB, true, false, 2, 16, 16, \n");
  std::string table = render_endpoint_status(all, OutputFormat::kTable);
  EXPECT_NE(table.find("| RAFT APPLIED INDEX |"), std::string::npos);
  EXPECT_EQ(table.find("127.0.0.1:1 "), std::string::npos);
}

TEST(RenderEndpointHealth, HealthyAndUnhealthy) {
  std::vector<EndpointHealth> h = {{"a:1", true, 1646, ""}, {"b:2", false, 5000, "timed out"}};
  EXPECT_EQ(render_endpoint_health(h, OutputFormat::kSimple),
            "a:1 is healthy: successfully committed proposal: took = 1.646ms\n"
            "b:2 is unhealthy: failed to commit proposal: timed out\n");
  EXPECT_EQ(render_endpoint_health(h, OutputFormat::kJson),
            R"([{"endpoint":"a:1","health":true,"took":"1.646ms"},)"
            R"({"endpoint":"b:2","health":false,"took":"5.000ms","error":"timed out"}])"
            "\n");
}

TEST(OutputFormats, ParseAndTableSupport) {
  EXPECT_EQ(*parse_output_format("json"), OutputFormat::kJson);
  EXPECT_FALSE(parse_output_format("yaml").is_ok());
  EXPECT_TRUE(supports_table("member list"));
  EXPECT_FALSE(supports_table("put"));
}

}  // namespace
}  // namespace raftkv::cli
