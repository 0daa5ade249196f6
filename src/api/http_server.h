// HttpServer: a small HTTP/1.1 server for a member's operational endpoints
// (http_endpoints.h), on --listen-metrics-urls and, like etcd, on the plain
// http:// client URLs, which it shares with gRPC.
//
// Sharing the client port: the server accepts those connections itself and
// peeks (without consuming) at the first bytes. A connection that opens with
// the HTTP/2 prior-knowledge preface ("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", what
// every gRPC client sends first over plain TCP) is handed, untouched, to the
// gRPC server (grpc::AddInsecureChannelFromFd) and is never seen here again;
// anything else is served as HTTP/1.1. gRPC calls pay only for that one peek
// at connection setup.
//
// One thread runs a poll loop over non-blocking sockets, so a slow or idle
// client blocks no one: every connection has a deadline (idle, reading,
// writing), and connections beyond max_connections are closed at once.
// Handlers may answer later, from any thread (the /health read waits for the
// raft log); the answer comes back through a queue and an eventfd.
//
// Malformed requests get 400 (see http_request.h for the other statuses) and
// the connection is closed.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "api/http_request.h"
#include "base/status.h"

namespace grpc {
class Server;
}

namespace raftkv::api {

struct HttpResponse {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
};

/// Sends the answer to one request; call exactly once, from any thread, at
/// any time (a call after the connection or server is gone is ignored).
using HttpResponder = std::function<void(HttpResponse)>;
/// Serves one parsed request. Runs on the server thread: must not block.
using HttpHandler = std::function<void(const HttpRequest&, HttpResponder)>;

struct HttpListenerSpec {
  std::string url;           ///< http://host:port
  bool share_with_grpc = false;  ///< Hand HTTP/2 connections to the gRPC server.
};

struct HttpServerOptions {
  size_t max_connections = 256;
  int idle_timeout_ms = 30000;  ///< No progress on a connection for this long closes it.
  HttpLimits limits;
};

class HttpServer {
 public:
  /// Binds and listens on every spec (nothing is accepted until start()).
  /// Errors: kInvalidArgument (URL), kUnavailable (cannot bind: address in use).
  static Result<std::unique_ptr<HttpServer>> listen(const std::vector<HttpListenerSpec>& specs,
                                                    HttpHandler handler,
                                                    HttpServerOptions options = {});
  /// Stops (see stop()).
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  /// Starts the server thread. `grpc` (started, outliving this server until
  /// stop()) receives the HTTP/2 connections of share_with_grpc listeners;
  /// REQUIRES: non-null if any listener shares.
  void start(grpc::Server* grpc);

  /// Stops accepting, closes every connection, joins the thread. Idempotent.
  /// Call before the gRPC server shuts down.
  void stop();

  /// The bound port of each spec, in order (useful with port 0).
  const std::vector<int>& ports() const { return ports_; }

 private:
  struct Impl;
  explicit HttpServer(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
  std::vector<int> ports_;
};

/// Splits "http://host:port[/]" into host (brackets of an IPv6 literal
/// removed) and port. Errors: kInvalidArgument naming `flag`.
Result<std::pair<std::string, std::string>> split_http_url(const std::string& flag,
                                                           const std::string& url);

}  // namespace raftkv::api
