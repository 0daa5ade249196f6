#include "api/grpc_metrics.h"

#include <array>
#include <atomic>
#include <chrono>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>

#include <google/protobuf/descriptor.h>

#include "base/metrics.h"

namespace raftkv::api {
namespace {

using Clock = std::chrono::steady_clock;
using grpc::experimental::InterceptionHookPoints;
using grpc::experimental::ServerRpcInfo;

constexpr int kCodes = 17;  // grpc::StatusCode OK .. UNAUTHENTICATED

// The services whose methods get their counters ready before the first call.
constexpr const char* kKnownServices[] = {
    "etcdserverpb.KV",      "etcdserverpb.Watch",       "etcdserverpb.Lease",
    "etcdserverpb.Cluster", "etcdserverpb.Maintenance", "etcdserverpb.Auth",
    "v3lockpb.Lock",        "v3electionpb.Election",    "grpc.health.v1.Health"};

const char* type_name(ServerRpcInfo::Type t) {
  switch (t) {
    case ServerRpcInfo::Type::UNARY: return "unary";
    case ServerRpcInfo::Type::CLIENT_STREAMING: return "client_stream";
    case ServerRpcInfo::Type::SERVER_STREAMING: return "server_stream";
    case ServerRpcInfo::Type::BIDI_STREAMING: return "bidi_stream";
    default: return "unknown";
  }
}

struct Families {
  metrics::Family<metrics::Counter>& started;
  metrics::Family<metrics::Counter>& handled;
  metrics::Family<metrics::Histogram>* handling;  ///< Null unless extensive.
};

// The series of one (method, call type), created on first use.
class MethodStats {
 public:
  MethodStats(const Families& f, std::string type, std::string service, std::string method)
      : f_(f), labels_{std::move(type), std::move(service), std::move(method)} {}

  void on_start() { series(started_, f_.started, labels_).inc(); }

  void on_finish(int code, Clock::duration took) {
    if (code < 0 || code >= kCodes) code = 2;  // UNKNOWN
    metrics::Counter* c = handled_[static_cast<size_t>(code)].load(std::memory_order_acquire);
    if (c == nullptr) {
      std::vector<std::string> l = labels_;
      l.emplace_back(grpc_code_name(code));
      c = &f_.handled.with(l);
      handled_[static_cast<size_t>(code)].store(c, std::memory_order_release);
    }
    c->inc();
    if (f_.handling != nullptr) {
      series(handling_, *f_.handling, labels_).observe(std::chrono::duration<double>(took).count());
    }
  }

 private:
  template <typename T>
  static T& series(std::atomic<T*>& slot, metrics::Family<T>& family,
                   const std::vector<std::string>& labels) {
    T* s = slot.load(std::memory_order_acquire);
    if (s == nullptr) {
      s = &family.with(labels);  // the family returns the same series to a racing caller
      slot.store(s, std::memory_order_release);
    }
    return *s;
  }

  const Families& f_;
  const std::vector<std::string> labels_;  ///< grpc_type, grpc_service, grpc_method
  std::atomic<metrics::Counter*> started_{nullptr};
  std::array<std::atomic<metrics::Counter*>, kCodes> handled_{};
  std::atomic<metrics::Histogram*> handling_{nullptr};
};

class MetricsInterceptor final : public grpc::experimental::Interceptor {
 public:
  explicit MetricsInterceptor(MethodStats* stats) : stats_(stats), start_(Clock::now()) {
    stats_->on_start();
  }
  void Intercept(grpc::experimental::InterceptorBatchMethods* m) override {
    if (m->QueryInterceptionHookPoint(InterceptionHookPoints::PRE_SEND_STATUS)) {
      stats_->on_finish(static_cast<int>(m->GetSendStatus().error_code()), Clock::now() - start_);
    }
    m->Proceed();
  }

 private:
  MethodStats* const stats_;
  const Clock::time_point start_;
};

class MetricsInterceptorFactory final
    : public grpc::experimental::ServerInterceptorFactoryInterface {
 public:
  explicit MetricsInterceptorFactory(bool extensive)
      : families_{metrics::Registry::global().counter_family(
                      "grpc_server_started_total",
                      "Total number of RPCs started on the server.",
                      {"grpc_type", "grpc_service", "grpc_method"}),
                  metrics::Registry::global().counter_family(
                      "grpc_server_handled_total",
                      "Total number of RPCs completed on the server, regardless of success or "
                      "failure.",
                      {"grpc_type", "grpc_service", "grpc_method", "grpc_code"}),
                  extensive ? &metrics::Registry::global().histogram_family(
                                  "grpc_server_handling_seconds",
                                  "Histogram of response latency (seconds) of gRPC that had been "
                                  "application-level handled by the server.",
                                  {"grpc_type", "grpc_service", "grpc_method"},
                                  {.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10})
                            : nullptr} {
    const google::protobuf::DescriptorPool* pool =
        google::protobuf::DescriptorPool::generated_pool();
    for (const char* name : kKnownServices) {
      const google::protobuf::ServiceDescriptor* sd = pool->FindServiceByName(name);
      if (sd == nullptr) continue;
      for (int i = 0; i < sd->method_count(); ++i) {
        const google::protobuf::MethodDescriptor* md = sd->method(i);
        ServerRpcInfo::Type t = ServerRpcInfo::Type::UNARY;
        if (md->client_streaming() && md->server_streaming()) {
          t = ServerRpcInfo::Type::BIDI_STREAMING;
        } else if (md->client_streaming()) {
          t = ServerRpcInfo::Type::CLIENT_STREAMING;
        } else if (md->server_streaming()) {
          t = ServerRpcInfo::Type::SERVER_STREAMING;
        }
        known_.emplace("/" + sd->full_name() + "/" + md->name(),
                       std::make_unique<MethodStats>(families_, type_name(t), sd->full_name(),
                                                     md->name()));
      }
    }
  }

  grpc::experimental::Interceptor* CreateServerInterceptor(ServerRpcInfo* info) override {
    const std::string_view full = info->method() == nullptr ? "" : info->method();
    // Read-only after construction: no lock for the services we know.
    auto it = known_.find(std::string(full));
    if (it != known_.end()) return new MetricsInterceptor(it->second.get());
    std::lock_guard lk(other_mu_);
    const std::string key = std::string(full) + "|" + type_name(info->type());
    auto& slot = other_[key];
    if (!slot) {
      const size_t slash = full.rfind('/');
      std::string service(full.substr(full.empty() ? 0 : 1, slash == std::string_view::npos || slash == 0
                                                             ? 0
                                                             : slash - 1));
      std::string method(slash == std::string_view::npos ? full : full.substr(slash + 1));
      slot = std::make_unique<MethodStats>(families_, type_name(info->type()), std::move(service),
                                           std::move(method));
    }
    return new MetricsInterceptor(slot.get());
  }

 private:
  const Families families_;
  std::unordered_map<std::string, std::unique_ptr<MethodStats>> known_;
  std::mutex other_mu_;
  std::map<std::string, std::unique_ptr<MethodStats>> other_;
};

}  // namespace

const char* grpc_code_name(int code) {
  static constexpr const char* kNames[kCodes] = {
      "OK",           "Canceled",        "Unknown",           "InvalidArgument",
      "DeadlineExceeded", "NotFound",    "AlreadyExists",     "PermissionDenied",
      "ResourceExhausted", "FailedPrecondition", "Aborted",   "OutOfRange",
      "Unimplemented", "Internal",       "Unavailable",       "DataLoss",
      "Unauthenticated"};
  if (code < 0 || code >= kCodes) return "Unknown";
  return kNames[code];
}

std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
make_grpc_metrics_interceptors(bool extensive) {
  std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>> v;
  v.push_back(std::make_unique<MetricsInterceptorFactory>(extensive));
  return v;
}

}  // namespace raftkv::api
