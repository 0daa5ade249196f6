#include "api/http_server.h"

#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <map>
#include <mutex>

#include <grpcpp/server.h>
#include <grpcpp/server_posix.h>
#include <spdlog/spdlog.h>

namespace raftkv::api {
namespace {

using Clock = std::chrono::steady_clock;

// What every gRPC client sends first on a plain-TCP connection (RFC 9113 §3.4).
constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
constexpr size_t kReadChunk = 16 * 1024;
constexpr int kAcceptsPerRound = 64;
// A partial preface is re-peeked after this (poll would report the unread
// bytes as readable again at once).
constexpr auto kSniffRetry = std::chrono::milliseconds(2);

}  // namespace

Result<std::pair<std::string, std::string>> split_http_url(const std::string& flag,
                                                           const std::string& url) {
  constexpr std::string_view kHttp = "http://";
  if (url.rfind("https://", 0) == 0) {
    return Status::invalid_argument(flag + " " + url +
                                    ": https is not supported here; use http://");
  }
  if (url.rfind(kHttp, 0) != 0) {
    return Status::invalid_argument(flag + " " + url + " must start with http://");
  }
  std::string hostport = url.substr(kHttp.size());
  if (!hostport.empty() && hostport.back() == '/') hostport.pop_back();
  const size_t colon = hostport.rfind(':');
  if (hostport.find('/') != std::string::npos || colon == std::string::npos || colon == 0 ||
      colon + 1 == hostport.size()) {
    return Status::invalid_argument(flag + " " + url + " must have the form http://host:port");
  }
  std::string host = hostport.substr(0, colon);
  std::string port = hostport.substr(colon + 1);
  for (char c : port) {
    if (c < '0' || c > '9') return Status::invalid_argument(flag + " " + url + " has a non-numeric port");
  }
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']') host = host.substr(1, host.size() - 2);
  return std::make_pair(host, port);
}

// Answers coming back from handlers (any thread) to the server thread. Shared
// with every responder, so a late answer never touches a destroyed server.
struct Mailbox {
  std::mutex mu;
  std::vector<std::pair<uint64_t, HttpResponse>> answers;
  bool closed = false;
  int event_fd = -1;
  ~Mailbox() {
    if (event_fd >= 0) ::close(event_fd);
  }
  void post(uint64_t conn, HttpResponse r) {
    std::lock_guard lk(mu);
    if (closed) return;
    answers.emplace_back(conn, std::move(r));
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(event_fd, &one, sizeof one);
  }
};

struct HttpServer::Impl {
  enum class State { kSniff, kRead, kWait, kWrite };
  struct Listener {
    int fd = -1;
    bool share_with_grpc = false;
  };
  struct Conn {
    int fd = -1;
    State state = State::kRead;
    std::string in;
    std::string out;
    size_t out_off = 0;
    bool keep_alive = false;
    bool head_only = false;
    Clock::time_point deadline;
    Clock::time_point sniff_retry_at{};
  };

  HttpHandler handler;
  HttpServerOptions options;
  std::vector<Listener> listeners;
  std::shared_ptr<Mailbox> mailbox = std::make_shared<Mailbox>();
  grpc::Server* grpc = nullptr;
  std::map<uint64_t, Conn> conns;
  uint64_t next_conn_id = 1;
  std::atomic<bool> stopping{false};
  std::thread thread;

  ~Impl() {
    for (Listener& l : listeners) ::close(l.fd);
    for (auto& [id, c] : conns) ::close(c.fd);
  }

  void wake() {
    const uint64_t one = 1;
    [[maybe_unused]] ssize_t n = ::write(mailbox->event_fd, &one, sizeof one);
  }

  void run();
  void accept_from(const Listener& l);
  // Each returns false when the connection is to be closed.
  bool on_sniff(uint64_t id, Conn& c);
  bool on_readable(uint64_t id, Conn& c);
  bool parse_and_dispatch(uint64_t id, Conn& c);
  bool on_writable(uint64_t id, Conn& c);
  void answer(Conn& c, const HttpResponse& r);
  void answer_error(Conn& c, int status, const std::string& why);
  void close_conn(std::map<uint64_t, Conn>::iterator it) {
    ::close(it->second.fd);
    conns.erase(it);
  }
};

HttpServer::HttpServer(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}

HttpServer::~HttpServer() { stop(); }

Result<std::unique_ptr<HttpServer>> HttpServer::listen(const std::vector<HttpListenerSpec>& specs,
                                                       HttpHandler handler,
                                                       HttpServerOptions options) {
  auto impl = std::make_unique<Impl>();
  impl->handler = std::move(handler);
  impl->options = options;
  impl->mailbox->event_fd = ::eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (impl->mailbox->event_fd < 0) return Status::io_error(std::string("eventfd: ") + std::strerror(errno));
  std::vector<int> ports;
  for (const HttpListenerSpec& spec : specs) {
    Result<std::pair<std::string, std::string>> hp = split_http_url("listen URL", spec.url);
    if (!hp) return hp.status();
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
    addrinfo* res = nullptr;
    if (int rc = ::getaddrinfo(hp->first.c_str(), hp->second.c_str(), &hints, &res); rc != 0) {
      return Status::invalid_argument("cannot resolve " + spec.url + ": " + gai_strerror(rc));
    }
    int fd = -1;
    std::string why = "no address";
    for (addrinfo* a = res; a != nullptr && fd < 0; a = a->ai_next) {
      fd = ::socket(a->ai_family, a->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC, a->ai_protocol);
      if (fd < 0) continue;
      const int on = 1;
      ::setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
      if (::bind(fd, a->ai_addr, a->ai_addrlen) != 0 || ::listen(fd, 1024) != 0) {
        why = std::strerror(errno);
        ::close(fd);
        fd = -1;
      }
    }
    ::freeaddrinfo(res);
    if (fd < 0) return Status::unavailable("cannot listen on " + spec.url + ": " + why);
    impl->listeners.push_back(Impl::Listener{fd, spec.share_with_grpc});
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    ports.push_back(ss.ss_family == AF_INET6
                        ? ntohs(reinterpret_cast<sockaddr_in6*>(&ss)->sin6_port)
                        : ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port));
  }
  std::unique_ptr<HttpServer> s(new HttpServer(std::move(impl)));
  s->ports_ = std::move(ports);
  return s;
}

void HttpServer::start(grpc::Server* grpc) {
  impl_->grpc = grpc;
  impl_->thread = std::thread([this] { impl_->run(); });
}

void HttpServer::stop() {
  if (!impl_) return;
  impl_->stopping = true;
  if (impl_->thread.joinable()) {
    impl_->wake();
    impl_->thread.join();
  }
  {
    std::lock_guard lk(impl_->mailbox->mu);
    impl_->mailbox->closed = true;
  }
  impl_.reset();
}

void HttpServer::Impl::run() {
  std::vector<pollfd> fds;
  std::vector<uint64_t> ids;  // conn id per pollfd past the listeners and the eventfd
  while (!stopping.load()) {
    const auto now = Clock::now();
    fds.clear();
    ids.clear();
    fds.push_back({mailbox->event_fd, POLLIN, 0});
    for (const Listener& l : listeners) fds.push_back({l.fd, POLLIN, 0});
    auto next_wake = now + std::chrono::seconds(1);
    for (auto& [id, c] : conns) {
      short events = 0;
      if (c.state == State::kRead) events = POLLIN;
      if (c.state == State::kWrite) events = POLLOUT;
      if (c.state == State::kSniff) {
        if (c.sniff_retry_at <= now) {
          events = POLLIN;
        } else {
          next_wake = std::min(next_wake, c.sniff_retry_at);
        }
      }
      next_wake = std::min(next_wake, c.deadline);
      fds.push_back({c.fd, events, 0});
      ids.push_back(id);
    }
    const auto wait_ms = std::chrono::duration_cast<std::chrono::milliseconds>(next_wake - now).count();
    const int rc = ::poll(fds.data(), fds.size(), static_cast<int>(std::max<int64_t>(0, wait_ms) + 1));
    if (rc < 0 && errno != EINTR) {
      spdlog::error("http server: poll failed: {}", std::strerror(errno));
      return;
    }
    if (stopping.load()) return;

    // Answers from handlers.
    if (fds[0].revents & POLLIN) {
      uint64_t v = 0;
      [[maybe_unused]] ssize_t n = ::read(mailbox->event_fd, &v, sizeof v);
    }
    std::vector<std::pair<uint64_t, HttpResponse>> answers;
    {
      std::lock_guard lk(mailbox->mu);
      answers.swap(mailbox->answers);
    }
    for (auto& [id, r] : answers) {
      auto it = conns.find(id);
      if (it != conns.end() && it->second.state == State::kWait) answer(it->second, r);
    }

    for (size_t i = 0; i < listeners.size(); ++i) {
      if (fds[1 + i].revents & POLLIN) accept_from(listeners[i]);
    }

    const size_t base = 1 + listeners.size();
    const auto after = Clock::now();
    for (size_t i = 0; i < ids.size(); ++i) {
      auto it = conns.find(ids[i]);
      if (it == conns.end()) continue;
      Conn& c = it->second;
      const short re = fds[base + i].revents;
      bool keep = true;
      if (c.state == State::kSniff && (re & (POLLIN | POLLHUP | POLLERR))) {
        keep = on_sniff(ids[i], c);
        if (keep && c.fd < 0) {  // handed to gRPC
          conns.erase(it);
          continue;
        }
      } else if (c.state == State::kRead && (re & (POLLIN | POLLHUP | POLLERR))) {
        keep = on_readable(ids[i], c);
      } else if (c.state == State::kWrite && (re & (POLLOUT | POLLHUP | POLLERR))) {
        keep = on_writable(ids[i], c);
      }
      if (keep && c.state != State::kWait && c.deadline <= after) keep = false;
      if (keep && c.state == State::kWait && c.deadline <= after) {
        answer_error(c, 503, "handler timed out");
      }
      if (!keep) close_conn(it);
    }
  }
}

void HttpServer::Impl::accept_from(const Listener& l) {
  for (int i = 0; i < kAcceptsPerRound; ++i) {
    const int fd = ::accept4(l.fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) return;  // EAGAIN, or a transient error: try again next round
    if (conns.size() >= options.max_connections) {
      ::close(fd);
      continue;
    }
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    Conn c;
    c.fd = fd;
    c.state = l.share_with_grpc ? State::kSniff : State::kRead;
    c.deadline = Clock::now() + std::chrono::milliseconds(options.idle_timeout_ms);
    conns.emplace(next_conn_id++, std::move(c));
  }
}

bool HttpServer::Impl::on_sniff(uint64_t id, Conn& c) {
  char buf[kHttp2Preface.size()];
  const ssize_t n = ::recv(c.fd, buf, sizeof buf, MSG_PEEK);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  const std::string_view got(buf, static_cast<size_t>(n));
  if (kHttp2Preface.substr(0, got.size()) != got) {
    c.state = State::kRead;  // HTTP/1.x: the peeked bytes are still in the socket
    return on_readable(id, c);
  }
  if (got.size() < kHttp2Preface.size()) {
    c.sniff_retry_at = Clock::now() + kSniffRetry;
    return true;
  }
  // gRPC owns the descriptor from here on.
  grpc::AddInsecureChannelFromFd(grpc, c.fd);
  c.fd = -1;
  return true;
}

bool HttpServer::Impl::on_readable(uint64_t id, Conn& c) {
  char buf[kReadChunk];
  const ssize_t n = ::recv(c.fd, buf, sizeof buf, 0);
  if (n == 0) return false;
  if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
  c.in.append(buf, static_cast<size_t>(n));
  c.deadline = Clock::now() + std::chrono::milliseconds(options.idle_timeout_ms);
  return parse_and_dispatch(id, c);
}

bool HttpServer::Impl::parse_and_dispatch(uint64_t id, Conn& c) {
  HttpParse p = parse_http_request(c.in, options.limits);
  if (p.state == HttpParse::State::kIncomplete) return true;
  if (p.state == HttpParse::State::kError) {
    c.in.clear();
    answer_error(c, p.error_status, p.error);
    return true;
  }
  c.in.erase(0, p.consumed);
  c.keep_alive = p.request.keep_alive;
  c.head_only = p.request.method == "HEAD";
  c.state = State::kWait;
  // The handler must answer; this bounds a handler that forgets.
  c.deadline = Clock::now() + std::chrono::minutes(2);
  std::shared_ptr<Mailbox> mb = mailbox;
  handler(p.request, [mb, id](HttpResponse r) { mb->post(id, std::move(r)); });
  return true;
}

void HttpServer::Impl::answer(Conn& c, const HttpResponse& r) {
  c.out = format_http_response(r.status, r.content_type, r.body, c.keep_alive, c.head_only);
  c.out_off = 0;
  c.state = State::kWrite;
  c.deadline = Clock::now() + std::chrono::milliseconds(options.idle_timeout_ms);
}

void HttpServer::Impl::answer_error(Conn& c, int status, const std::string& why) {
  c.keep_alive = false;
  c.head_only = false;
  HttpResponse r;
  r.status = status;
  r.body = why + "\n";
  answer(c, r);
}

bool HttpServer::Impl::on_writable(uint64_t id, Conn& c) {
  while (c.out_off < c.out.size()) {
    const ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR;
    c.out_off += static_cast<size_t>(n);
    c.deadline = Clock::now() + std::chrono::milliseconds(options.idle_timeout_ms);
  }
  if (!c.keep_alive) {
    ::shutdown(c.fd, SHUT_WR);
    return false;
  }
  c.out.clear();
  c.out_off = 0;
  c.state = State::kRead;
  // A pipelined request may already be buffered.
  return c.in.empty() || parse_and_dispatch(id, c);
}

}  // namespace raftkv::api
