// The auth store (kv/auth_store.h) and the permission range logic
// (kv/auth_perms.h): etcd's rules for users, roles and permissions, the
// apply-time check, persistence across restarts and snapshots.
#include <gtest/gtest.h>

#include "kv/auth_perms.h"
#include "kv/auth_store.h"
#include "kv_test_util.h"

namespace raftkv::kv {
namespace {

using testing::Harness;
using testing::TempDir;
using testing::del_req;
using testing::put_req;

const std::string kEnd0(1, '\0');  // range_end "\0": every key from key on

KeyInterval iv(std::string_view k, std::string_view e = {}) { return KeyInterval::of(k, e); }

// ---------------------------------------------------------------- ranges

TEST(PermissionRanges, SingleKeyCoversOnlyThatKey) {
  PermissionSet s;
  s.add(iv("a"));
  EXPECT_TRUE(s.covers(iv("a")));
  EXPECT_FALSE(s.covers(iv("b")));
  EXPECT_FALSE(s.covers(iv(std::string_view("a\0", 2))));  // the next key after "a"
  EXPECT_FALSE(s.covers(iv("a", "b")));  // a range wider than the key
}

TEST(PermissionRanges, PrefixRangeCoversKeysAndSubrangesInside) {
  PermissionSet s;
  s.add(iv("foo/", "foo0"));  // etcdctl --prefix foo/
  EXPECT_TRUE(s.covers(iv("foo/x")));
  EXPECT_TRUE(s.covers(iv("foo/", "foo0")));
  EXPECT_TRUE(s.covers(iv("foo/a", "foo/b")));
  EXPECT_FALSE(s.covers(iv("foo")));
  EXPECT_FALSE(s.covers(iv("foo/", "foo1")));
  EXPECT_FALSE(s.covers(iv("foo/", kEnd0)));  // from-key is unbounded
  EXPECT_FALSE(s.covers(iv("fo", "foo0")));
}

TEST(PermissionRanges, FromKeyIsUnbounded) {
  PermissionSet s;
  s.add(iv("m", kEnd0));
  EXPECT_TRUE(s.covers(iv("m")));
  EXPECT_TRUE(s.covers(iv("zzz", kEnd0)));
  EXPECT_TRUE(s.covers(iv("m", "z")));
  EXPECT_FALSE(s.covers(iv("a", "n")));
}

TEST(PermissionRanges, AdjacentAndOverlappingGrantsMerge) {
  PermissionSet s;
  s.add(iv("a", "c"));
  s.add(iv("c", "e"));   // touching
  s.add(iv("d", "g"));   // overlapping
  EXPECT_TRUE(s.covers(iv("a", "g")));
  EXPECT_TRUE(s.covers(iv("b", "f")));
  EXPECT_FALSE(s.covers(iv("a", "h")));
  PermissionSet gap;
  gap.add(iv("a", "c"));
  gap.add(iv("d", "e"));
  EXPECT_FALSE(gap.covers(iv("a", "e")));  // "c".."d" is not granted
  EXPECT_TRUE(gap.covers(iv("d")));
}

TEST(PermissionRanges, EmptyKeyWithNulEndGrantsEverything) {
  // etcdctl role grant-permission --prefix r readwrite '' sends key "\0", end "\0".
  PermissionSet s;
  s.add(iv(kEnd0, kEnd0));
  EXPECT_TRUE(s.covers(iv("anything")));
  EXPECT_TRUE(s.covers(iv(kEnd0, kEnd0)));
}

TEST(PermissionRanges, ReadWriteKindsAreSeparate) {
  UserPermissions p;
  authpb::Permission r;
  r.set_permtype(authpb::Permission::READ);
  r.set_key("k");
  add_permission(r, &p);
  EXPECT_TRUE(p.allows(PermKind::kRead, iv("k")));
  EXPECT_FALSE(p.allows(PermKind::kWrite, iv("k")));
  authpb::Permission rw = r;
  rw.set_permtype(authpb::Permission::READWRITE);
  rw.set_key("w");
  add_permission(rw, &p);
  EXPECT_TRUE(p.allows(PermKind::kWrite, iv("w")));
  EXPECT_TRUE(p.allows(PermKind::kRead, iv("w")));
}

// ---------------------------------------------------------------- requests

raftkvpb::InternalRequest as_user(raftkvpb::InternalRequest r, const std::string& user,
                                  uint64_t rev) {
  r.mutable_header()->set_username(user);
  r.mutable_header()->set_auth_revision(rev);
  return r;
}

raftkvpb::InternalRequest user_add(const std::string& name) {
  raftkvpb::InternalRequest r;
  r.mutable_auth_user_add()->set_name(name);
  r.mutable_auth_user_add()->set_password_hash("$2b$04$notarealhashbutopaque");
  return r;
}
raftkvpb::InternalRequest role_add(const std::string& name) {
  raftkvpb::InternalRequest r;
  r.mutable_auth_role_add()->set_name(name);
  return r;
}
raftkvpb::InternalRequest grant_role(const std::string& user, const std::string& role) {
  raftkvpb::InternalRequest r;
  r.mutable_auth_user_grant_role()->set_user(user);
  r.mutable_auth_user_grant_role()->set_role(role);
  return r;
}
raftkvpb::InternalRequest grant_perm(const std::string& role, authpb::Permission::Type t,
                                     const std::string& key, const std::string& end) {
  raftkvpb::InternalRequest r;
  r.mutable_auth_role_grant_permission()->set_name(role);
  r.mutable_auth_role_grant_permission()->mutable_perm()->set_permtype(t);
  r.mutable_auth_role_grant_permission()->mutable_perm()->set_key(key);
  r.mutable_auth_role_grant_permission()->mutable_perm()->set_range_end(end);
  return r;
}
raftkvpb::InternalRequest revoke_perm(const std::string& role, const std::string& key,
                                      const std::string& end) {
  raftkvpb::InternalRequest r;
  r.mutable_auth_role_revoke_permission()->set_role(role);
  r.mutable_auth_role_revoke_permission()->set_key(key);
  r.mutable_auth_role_revoke_permission()->set_range_end(end);
  return r;
}
raftkvpb::InternalRequest enable() {
  raftkvpb::InternalRequest r;
  r.mutable_auth_enable();
  return r;
}

std::string msg(const ApplyOutcome& o) { return o.status.is_ok() ? "OK" : o.status.message(); }

// root user with the root role, a reader of "pub/" and auth enabled.
void setup(Harness& h) {
  ASSERT_EQ(msg(h.apply(user_add("root"))), "OK");
  ASSERT_EQ(msg(h.apply(grant_role("root", "root"))), "OK");
  ASSERT_EQ(msg(h.apply(user_add("alice"))), "OK");
  ASSERT_EQ(msg(h.apply(role_add("reader"))), "OK");
  ASSERT_EQ(msg(h.apply(grant_perm("reader", authpb::Permission::READ, "pub/", "pub0"))), "OK");
  ASSERT_EQ(msg(h.apply(grant_role("alice", "reader"))), "OK");
  ASSERT_EQ(msg(h.apply(enable())), "OK");
  ASSERT_TRUE(h.store().auth().enabled());
}

TEST(AuthStore, EnableNeedsRootUserWithRootRole) {
  TempDir d;
  Harness h(d.path());
  EXPECT_EQ(msg(h.apply(enable())), "etcdserver: root user does not exist");
  h.apply(user_add("root"));
  EXPECT_EQ(msg(h.apply(enable())), "etcdserver: root user does not have root role");
  EXPECT_EQ(msg(h.apply(grant_role("root", "root"))), "OK");  // granted before it is added
  EXPECT_EQ(msg(h.apply(enable())), "OK");
}

TEST(AuthStore, UserAndRoleErrorsMatchEtcd) {
  TempDir d;
  Harness h(d.path());
  EXPECT_EQ(msg(h.apply(user_add(""))), "etcdserver: user name is empty");
  EXPECT_EQ(msg(h.apply(user_add("u"))), "OK");
  EXPECT_EQ(msg(h.apply(user_add("u"))), "etcdserver: user name already exists");
  EXPECT_EQ(msg(h.apply(role_add(""))), "etcdserver: role name is empty");
  EXPECT_EQ(msg(h.apply(role_add("r"))), "OK");
  EXPECT_EQ(msg(h.apply(role_add("r"))), "etcdserver: role name already exists");
  EXPECT_EQ(msg(h.apply(grant_role("nobody", "r"))), "etcdserver: user name not found");
  EXPECT_EQ(msg(h.apply(grant_role("u", "nope"))), "etcdserver: role name not found");
  raftkvpb::InternalRequest revoke;
  revoke.mutable_auth_user_revoke_role()->set_name("u");
  revoke.mutable_auth_user_revoke_role()->set_role("r");
  EXPECT_EQ(msg(h.apply(revoke)), "etcdserver: role is not granted to the user");
  EXPECT_EQ(msg(h.apply(revoke_perm("r", "k", ""))),
            "etcdserver: permission is not granted to the role");
  EXPECT_EQ(msg(h.apply(grant_perm("nope", authpb::Permission::READ, "k", ""))),
            "etcdserver: role name not found");
}

TEST(AuthStore, RootCannotBeRemovedWhileEnabled) {
  TempDir d;
  Harness h(d.path());
  setup(h);
  const uint64_t rev = h.store().auth().revision();
  raftkvpb::InternalRequest del;
  del.mutable_auth_user_delete()->set_name("root");
  EXPECT_EQ(msg(h.apply(as_user(del, "root", rev))), "etcdserver: invalid auth management");
  raftkvpb::InternalRequest revoke;
  revoke.mutable_auth_user_revoke_role()->set_name("root");
  revoke.mutable_auth_user_revoke_role()->set_role("root");
  EXPECT_EQ(msg(h.apply(as_user(revoke, "root", rev))), "etcdserver: invalid auth management");
}

TEST(AuthStore, ChangesNeedRootWhileEnabled) {
  TempDir d;
  Harness h(d.path());
  setup(h);
  const uint64_t rev = h.store().auth().revision();
  EXPECT_EQ(msg(h.apply(role_add("x"))), "etcdserver: user name is empty");
  EXPECT_EQ(msg(h.apply(as_user(role_add("x"), "alice", rev))), "etcdserver: permission denied");
  EXPECT_EQ(msg(h.apply(as_user(role_add("x"), "root", rev))), "OK");
}

TEST(AuthStore, ApplyChecksEveryOperation) {
  TempDir d;
  Harness h(d.path());
  setup(h);
  uint64_t rev = h.store().auth().revision();
  // Nobody: user name is empty. Alice (read pub/): no writes, no reads elsewhere.
  EXPECT_EQ(msg(h.apply(put_req("pub/a", "1"))), "etcdserver: user name is empty");
  EXPECT_EQ(msg(h.apply(as_user(put_req("pub/a", "1"), "alice", rev))),
            "etcdserver: permission denied");
  EXPECT_EQ(h.get(testing::range_req("pub/a")).count(), 0);  // refused: nothing applied
  EXPECT_EQ(msg(h.apply(as_user(put_req("pub/a", "1"), "root", rev))), "OK");
  raftkvpb::InternalRequest rr;
  rr.mutable_range()->set_key("pub/a");
  EXPECT_EQ(msg(h.apply(as_user(rr, "alice", rev))), "OK");
  rr.mutable_range()->set_key("secret");
  EXPECT_EQ(msg(h.apply(as_user(rr, "alice", rev))), "etcdserver: permission denied");
  EXPECT_EQ(msg(h.apply(as_user(del_req("pub/a"), "alice", rev))), "etcdserver: permission denied");
  // Compaction: any authenticated user (etcd 3.4), nobody else.
  EXPECT_EQ(msg(h.apply(testing::compact_req(1))), "etcdserver: user name is empty");
  EXPECT_EQ(msg(h.apply(as_user(testing::compact_req(1), "alice", rev))), "OK");

  // A txn whose compare alice may read, hiding a put three levels down.
  raftkvpb::InternalRequest txn;
  auto* t = txn.mutable_txn();
  auto* c = t->add_compare();
  c->set_key("pub/a");
  c->set_target(etcdserverpb::Compare::VERSION);
  c->set_result(etcdserverpb::Compare::GREATER);
  c->set_version(100);  // false: the failure branch runs
  auto* inner = t->add_failure()->mutable_request_txn();
  inner->add_success()->mutable_request_range()->set_key("pub/a");
  auto* deepest = inner->add_failure()->mutable_request_txn();
  deepest->add_success()->mutable_request_put()->set_key("pub/evil");
  EXPECT_EQ(msg(h.apply(as_user(txn, "alice", rev))), "etcdserver: permission denied");
  EXPECT_EQ(h.get(testing::range_req("pub/evil")).count(), 0);
  // A compare on a key alice cannot read is refused too.
  raftkvpb::InternalRequest peek;
  auto* pc = peek.mutable_txn()->add_compare();
  pc->set_key("secret");
  pc->set_target(etcdserverpb::Compare::VALUE);
  pc->set_value("guess");
  EXPECT_EQ(msg(h.apply(as_user(peek, "alice", rev))), "etcdserver: permission denied");
}

TEST(AuthStore, ARevokedPermissionRefusesRequestsCheckedBefore) {
  TempDir d;
  Harness h(d.path());
  setup(h);
  uint64_t rev = h.store().auth().revision();
  ASSERT_EQ(msg(h.apply(as_user(grant_perm("reader", authpb::Permission::READWRITE, "pub/", "pub0"),
                                "root", rev))),
            "OK");
  const uint64_t checked_at = h.store().auth().revision();
  EXPECT_EQ(msg(h.apply(as_user(put_req("pub/a", "1"), "alice", checked_at))), "OK");
  // The API layer checked the next put at `checked_at`; the revoke lands first.
  ASSERT_EQ(msg(h.apply(as_user(revoke_perm("reader", "pub/", "pub0"), "root", checked_at))), "OK");
  EXPECT_EQ(msg(h.apply(as_user(put_req("pub/b", "1"), "alice", checked_at))),
            "etcdserver: revision of auth store is old");
  EXPECT_EQ(h.get(testing::range_req("pub/b")).count(), 0);
  EXPECT_EQ(msg(h.apply(as_user(put_req("pub/b", "1"), "alice", h.store().auth().revision()))),
            "etcdserver: permission denied");
}

TEST(AuthStore, LeaseRevokeNeedsWriteOnEveryAttachedKey) {
  TempDir d;
  Harness h(d.path());
  raftkvpb::InternalRequest grant;
  grant.mutable_lease_grant()->set_id(7);
  grant.mutable_lease_grant()->set_ttl(100);
  ASSERT_EQ(msg(h.apply(grant)), "OK");
  h.put("pub/a", "1", 7);
  h.put("secret", "1", 7);
  setup(h);
  const uint64_t rev = h.store().auth().revision();
  ASSERT_EQ(msg(h.apply(as_user(grant_perm("reader", authpb::Permission::READWRITE, "pub/", "pub0"),
                                "root", rev))),
            "OK");
  raftkvpb::InternalRequest revoke;
  revoke.mutable_lease_revoke()->set_id(7);
  EXPECT_EQ(msg(h.apply(as_user(revoke, "alice", h.store().auth().revision()))),
            "etcdserver: permission denied");
  EXPECT_EQ(msg(h.apply(as_user(revoke, "root", h.store().auth().revision()))), "OK");
}

TEST(AuthStore, SurvivesRestartAndSnapshotRestore) {
  TempDir d;
  Harness h(d.sub("a"));
  setup(h);
  const uint32_t hash = h.store().auth().hash();
  const uint64_t rev = h.store().auth().revision();
  h.reopen();
  EXPECT_TRUE(h.store().auth().enabled());
  EXPECT_EQ(h.store().auth().revision(), rev);
  EXPECT_EQ(h.store().auth().hash(), hash);
  ASSERT_TRUE(h.store().auth().role("reader").has_value());
  EXPECT_EQ(h.store().auth().role("reader")->keypermission_size(), 1);
  EXPECT_EQ(h.store().auth().user("alice")->roles(0), "reader");

  auto snap = h.store().snapshot();
  ASSERT_TRUE(snap.is_ok());
  auto restored = Store::restore(d.sub("b"), StoreOptions{}, [&] { return (*snap)->next_chunk(); });
  ASSERT_TRUE(restored.is_ok()) << restored.status().to_string();
  EXPECT_EQ((*restored)->auth().hash(), hash);
  EXPECT_TRUE((*restored)->auth().enabled());
}

TEST(AuthStore, RoleDeleteLeavesEveryUser) {
  TempDir d;
  Harness h(d.path());
  setup(h);
  raftkvpb::InternalRequest del;
  del.mutable_auth_role_delete()->set_role("reader");
  EXPECT_EQ(msg(h.apply(as_user(del, "root", h.store().auth().revision()))), "OK");
  EXPECT_EQ(h.store().auth().user("alice")->roles_size(), 0);
  h.reopen();
  EXPECT_EQ(h.store().auth().user("alice")->roles_size(), 0);
}

}  // namespace
}  // namespace raftkv::kv
