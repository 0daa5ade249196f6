// HTTP/1.x request parsing and response formatting for the small HTTP
// surface of a member (/health, /livez, /readyz, /metrics, /version; see
// http_server.h). Pure functions, any thread.
//
// Accepted: "METHOD SP request-target SP HTTP/1.0|HTTP/1.1" CRLF, header
// lines "name: value" CRLF, an empty line, and a body only as
// Content-Length (read and ignored). Refused with the status the client gets:
// malformed request line or header, obsolete line folding, a bad or repeated
// Content-Length → 400; Transfer-Encoding → 501; another HTTP version → 505;
// a header block above the limit → 431; a body above the limit → 413. Bare LF
// line endings are tolerated (as most servers do).
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace raftkv::api {

struct HttpRequest {
  std::string method;   ///< As sent (methods are case-sensitive).
  std::string target;   ///< As sent.
  std::string path;     ///< Target without query; absolute-form reduced to its path.
  std::string query;    ///< After '?', without it.
  int minor_version = 1;  ///< HTTP/1.<minor_version>.
  std::vector<std::pair<std::string, std::string>> headers;  ///< Names lower-cased.
  bool keep_alive = true;  ///< Whether the connection may serve another request.

  /// The first header named `name` (lower case), or nullptr.
  const std::string* header(std::string_view name) const;
};

struct HttpParse {
  enum class State { kIncomplete, kDone, kError };
  State state = State::kIncomplete;
  HttpRequest request;     ///< kDone only.
  size_t consumed = 0;     ///< kDone: bytes of `buf` the request (with its body) used.
  int error_status = 0;    ///< kError: 400, 413, 431, 501 or 505.
  std::string error;       ///< kError: why, for the response body.
};

struct HttpLimits {
  size_t max_header_bytes = 16 * 1024;  ///< Request line + headers.
  size_t max_body_bytes = 64 * 1024;
};

/// Parses the request at the start of `buf`.
HttpParse parse_http_request(std::string_view buf, const HttpLimits& limits = {});

/// The reason phrase of `status` ("OK", "Not Found", ...).
const char* http_reason(int status);

/// A complete HTTP/1.1 response. `head_only` leaves the body out (HEAD) but
/// keeps its Content-Length. `extra_headers` are whole lines without CRLF.
std::string format_http_response(int status, std::string_view content_type,
                                 std::string_view body, bool keep_alive, bool head_only,
                                 const std::vector<std::string>& extra_headers = {});

}  // namespace raftkv::api
