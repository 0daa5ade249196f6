// A small client of the v3lockpb.Lock and v3electionpb.Election services for
// the coordination tests (etcdctl's lock and elect run etcd's recipes on the
// client side instead of calling these services).
//
//   coord_client ENDPOINT lock NAME LEASE          -> "key=K rev=R"
//   coord_client ENDPOINT unlock KEY
//   coord_client ENDPOINT campaign NAME LEASE VALUE -> "key=K rev=R lease=L"
//   coord_client ENDPOINT proclaim NAME KEY REV LEASE VALUE
//   coord_client ENDPOINT resign NAME KEY REV LEASE
//   coord_client ENDPOINT leader NAME              -> "key=K value=V"
//   coord_client ENDPOINT observe NAME COUNT       -> COUNT lines "key=K value=V"
// LEASE and REV are decimal. Errors: "error: CODE MESSAGE" on stderr, exit 1.
// With COORD_TOKEN set, the call carries it as the `token` metadata (an auth
// token from Auth.Authenticate).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "etcd/v3electionpb/v3election.grpc.pb.h"
#include "etcd/v3lockpb/v3lock.grpc.pb.h"

namespace {

int fail(const grpc::Status& s) {
  std::cerr << "error: " << static_cast<int>(s.error_code()) << " " << s.error_message() << "\n";
  return 1;
}

int usage() {
  std::cerr << "usage: coord_client ENDPOINT (lock|unlock|campaign|proclaim|resign|leader|observe) ARGS\n";
  return 2;
}

v3electionpb::LeaderKey leader_key(char** a) {
  v3electionpb::LeaderKey k;
  k.set_name(a[0]);
  k.set_key(a[1]);
  k.set_rev(std::atoll(a[2]));
  k.set_lease(std::atoll(a[3]));
  return k;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) return usage();
  auto channel = grpc::CreateChannel(argv[1], grpc::InsecureChannelCredentials());
  auto lock = v3lockpb::Lock::NewStub(channel);
  auto election = v3electionpb::Election::NewStub(channel);
  const std::string cmd = argv[2];
  grpc::ClientContext ctx;
  if (const char* token = std::getenv("COORD_TOKEN"); token != nullptr && *token != '\0') {
    ctx.AddMetadata("token", token);
  }
  grpc::Status s;
  if (cmd == "lock" && argc == 5) {
    v3lockpb::LockRequest req;
    req.set_name(argv[3]);
    req.set_lease(std::atoll(argv[4]));
    v3lockpb::LockResponse resp;
    s = lock->Lock(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::cout << "key=" << resp.key() << " rev=" << resp.header().revision() << std::endl;
  } else if (cmd == "unlock" && argc == 4) {
    v3lockpb::UnlockRequest req;
    req.set_key(argv[3]);
    v3lockpb::UnlockResponse resp;
    s = lock->Unlock(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::cout << "rev=" << resp.header().revision() << std::endl;
  } else if (cmd == "campaign" && argc == 6) {
    v3electionpb::CampaignRequest req;
    req.set_name(argv[3]);
    req.set_lease(std::atoll(argv[4]));
    req.set_value(argv[5]);
    v3electionpb::CampaignResponse resp;
    s = election->Campaign(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::cout << "key=" << resp.leader().key() << " rev=" << resp.leader().rev()
              << " lease=" << resp.leader().lease() << std::endl;
  } else if (cmd == "proclaim" && argc == 8) {
    v3electionpb::ProclaimRequest req;
    *req.mutable_leader() = leader_key(argv + 3);
    req.set_value(argv[7]);
    v3electionpb::ProclaimResponse resp;
    s = election->Proclaim(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::cout << "rev=" << resp.header().revision() << std::endl;
  } else if (cmd == "resign" && argc == 7) {
    v3electionpb::ResignRequest req;
    *req.mutable_leader() = leader_key(argv + 3);
    v3electionpb::ResignResponse resp;
    s = election->Resign(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::cout << "rev=" << resp.header().revision() << std::endl;
  } else if (cmd == "leader" && argc == 4) {
    v3electionpb::LeaderRequest req;
    req.set_name(argv[3]);
    v3electionpb::LeaderResponse resp;
    s = election->Leader(&ctx, req, &resp);
    if (!s.ok()) return fail(s);
    std::cout << "key=" << resp.kv().key() << " value=" << resp.kv().value() << std::endl;
  } else if (cmd == "observe" && argc == 5) {
    v3electionpb::LeaderRequest req;
    req.set_name(argv[3]);
    auto reader = election->Observe(&ctx, req);
    const int count = std::atoi(argv[4]);
    v3electionpb::LeaderResponse resp;
    for (int i = 0; i < count; ++i) {
      if (!reader->Read(&resp)) return fail(reader->Finish());
      std::cout << "key=" << resp.kv().key() << " value=" << resp.kv().value() << std::endl;
    }
    ctx.TryCancel();
  } else {
    return usage();
  }
  return 0;
}
