#include "api/http_endpoints.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <fstream>
#include <sstream>
#include <string>

#include "api/service_util.h"
#include "base/metrics.h"

namespace raftkv::api {
namespace {

constexpr const char* kJson = "application/json";
constexpr const char* kPrometheusText = "text/plain; version=0.0.4; charset=utf-8";

std::string json_escape(const std::string& s) {
  std::string out;
  for (char c : s) {
    if (c == '"' || c == '\\') {
      out += '\\';
      out += c;
    } else if (static_cast<unsigned char>(c) < 0x20) {
      char buf[8];
      std::snprintf(buf, sizeof buf, "\\u%04x", c);
      out += buf;
    } else {
      out += c;
    }
  }
  return out;
}

struct HealthCounters {
  metrics::Counter& success = metrics::Registry::global().counter(
      "etcd_server_health_success", "The total number of successful health checks");
  metrics::Counter& failures = metrics::Registry::global().counter(
      "etcd_server_health_failures", "The total number of failed health checks");
};

// Runs etcd's health checks and calls `done` with "" (healthy) or the reason.
void check_health(server::Node* node, std::function<void(std::string reason)> done) {
  static HealthCounters counters;
  auto finish = [done = std::move(done)](std::string reason) {
    (reason.empty() ? counters.success : counters.failures).inc();
    done(std::move(reason));
  };
  if (node->leader() == 0) {
    finish("RAFT NO LEADER");
    return;
  }
  node->read_barrier([finish](Status st) {
    finish(st.is_ok() ? std::string() : "QGET ERROR: " + st.message());
  });
}

HttpResponse text(int status, std::string body, const char* type = "text/plain; charset=utf-8") {
  HttpResponse r;
  r.status = status;
  r.content_type = type;
  r.body = std::move(body);
  return r;
}

// Fields of /proc/self/stat after the command name (field 3 is index 0).
std::vector<std::string> proc_stat_fields() {
  std::ifstream f("/proc/self/stat");
  std::string all((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
  const size_t close = all.rfind(')');
  std::vector<std::string> out;
  if (close == std::string::npos) return out;
  std::istringstream in(all.substr(close + 1));
  std::string w;
  while (in >> w) out.push_back(w);
  return out;
}

double proc_stat_field(size_t field_number) {
  const std::vector<std::string> f = proc_stat_fields();
  const size_t i = field_number - 3;
  return i < f.size() ? std::stod(f[i]) : 0;
}

double boot_time_seconds() {
  std::ifstream f("/proc/stat");
  std::string key;
  double v = 0;
  while (f >> key) {
    if (key == "btime") {
      f >> v;
      return v;
    }
    f.ignore(1 << 16, '\n');
  }
  return 0;
}

double open_fds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return 0;
  double n = 0;
  while (const dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory stream's own descriptor
}

}  // namespace

void register_process_metrics() {
  using metrics::Type;
  metrics::Registry& r = metrics::Registry::global();
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  // Fields of proc(5): 14 utime, 15 stime, 22 starttime (ticks since boot),
  // 23 vsize (bytes), 24 rss (pages).
  r.set_callback("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
                 Type::kCounter, [ticks] {
                   const std::vector<std::string> f = proc_stat_fields();
                   return f.size() > 12 ? (std::stod(f[11]) + std::stod(f[12])) / ticks : 0;
                 });
  r.set_callback("process_resident_memory_bytes", "Resident memory size in bytes.", Type::kGauge,
                 [page] { return proc_stat_field(24) * page; });
  r.set_callback("process_virtual_memory_bytes", "Virtual memory size in bytes.", Type::kGauge,
                 [] { return proc_stat_field(23); });
  const double start = boot_time_seconds() + proc_stat_field(22) / ticks;
  r.set_callback("process_start_time_seconds",
                 "Start time of the process since unix epoch in seconds.", Type::kGauge,
                 [start] { return start; });
  r.set_callback("process_open_fds", "Number of open file descriptors.", Type::kGauge, open_fds);
  r.set_callback("process_max_fds", "Maximum number of open file descriptors.", Type::kGauge, [] {
    rlimit rl{};
    ::getrlimit(RLIMIT_NOFILE, &rl);
    return static_cast<double>(rl.rlim_cur);
  });
  r.gauge_family("etcd_server_version", "Which version is running. 1 for 'server_version' label with current version.",
                 {"server_version"})
      .with({kApiVersion})
      .set(1);
  std::string api(kApiVersion);
  r.gauge_family("etcd_cluster_version",
                 "Which version is running. 1 for 'cluster_version' label with current cluster "
                 "version",
                 {"cluster_version"})
      .with({api.substr(0, api.rfind('.'))})
      .set(1);
}

HttpHandler make_operational_endpoints(server::Node* node) {
  return [node](const HttpRequest& req, HttpResponder respond) {
    if (req.method != "GET" && req.method != "HEAD") {
      respond(text(405, "Method Not Allowed\n"));
      return;
    }
    if (req.path == "/metrics") {
      respond(text(200, metrics::Registry::global().expose(), kPrometheusText));
    } else if (req.path == "/health") {
      check_health(node, [respond](std::string reason) {
        const bool ok = reason.empty();
        respond(text(ok ? 200 : 503,
                     std::string("{\"health\":\"") + (ok ? "true" : "false") + "\",\"reason\":\"" +
                         json_escape(reason) + "\"}",
                     kJson));
      });
    } else if (req.path == "/readyz") {
      check_health(node, [respond](std::string reason) {
        if (reason.empty()) {
          respond(text(200, "ok"));
        } else {
          respond(text(503, "[-]linearizable_read failed: " + reason + "\nreadyz check failed\n"));
        }
      });
    } else if (req.path == "/livez") {
      std::shared_ptr<kv::Store> store = node->store();
      if (store) {
        respond(text(200, "ok"));
      } else {
        respond(text(503, "[-]serializable_read failed: store not open\nlivez check failed\n"));
      }
    } else if (req.path == "/version") {
      respond(text(200,
                   std::string("{\"etcdserver\":\"") + kApiVersion + "\",\"etcdcluster\":\"" +
                       kApiVersion + "\"}",
                   kJson));
    } else {
      respond(text(404, "404 page not found\n"));
    }
  };
}

}  // namespace raftkv::api
