#include "api/http_request.h"

#include <algorithm>
#include <cctype>
#include <charconv>

namespace raftkv::api {
namespace {

bool is_tchar(char c) {
  if (std::isalnum(static_cast<unsigned char>(c))) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
  return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

HttpParse fail(int status, std::string why) {
  HttpParse p;
  p.state = HttpParse::State::kError;
  p.error_status = status;
  p.error = std::move(why);
  return p;
}

// Whether `value` (a comma-separated list) holds `token`, case-insensitively.
bool list_has(std::string_view value, std::string_view token) {
  const std::string v = lower(value);
  size_t pos = 0;
  while (pos <= v.size()) {
    size_t comma = v.find(',', pos);
    if (comma == std::string::npos) comma = v.size();
    if (trim(std::string_view(v).substr(pos, comma - pos)) == token) return true;
    pos = comma + 1;
  }
  return false;
}

}  // namespace

const std::string* HttpRequest::header(std::string_view name) const {
  for (const auto& [n, v] : headers) {
    if (n == name) return &v;
  }
  return nullptr;
}

HttpParse parse_http_request(std::string_view buf, const HttpLimits& limits) {
  // Find the end of the header block: an empty line (CRLF CRLF or LF LF).
  size_t end = std::string_view::npos;
  size_t body_start = 0;
  for (size_t i = 0; i < buf.size(); ++i) {
    if (buf[i] != '\n') continue;
    if (i + 1 < buf.size() && buf[i + 1] == '\n') {
      end = i + 1;
      body_start = i + 2;
      break;
    }
    if (i + 2 < buf.size() && buf[i + 1] == '\r' && buf[i + 2] == '\n') {
      end = i + 1;
      body_start = i + 3;
      break;
    }
  }
  if (end == std::string_view::npos) {
    if (buf.size() > limits.max_header_bytes) return fail(431, "request header fields too large");
    return {};
  }
  if (body_start > limits.max_header_bytes) return fail(431, "request header fields too large");

  // Split into lines (without their CR LF).
  std::vector<std::string_view> lines;
  size_t pos = 0;
  while (pos < end) {
    size_t nl = buf.find('\n', pos);
    std::string_view line = buf.substr(pos, nl - pos);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    lines.push_back(line);
    pos = nl + 1;
  }
  if (lines.empty() || lines[0].empty()) return fail(400, "missing request line");

  HttpParse p;
  HttpRequest& r = p.request;
  // Request line: exactly three fields separated by single spaces.
  const std::string_view rl = lines[0];
  const size_t sp1 = rl.find(' ');
  const size_t sp2 = sp1 == std::string_view::npos ? sp1 : rl.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos || rl.find(' ', sp2 + 1) != std::string_view::npos) {
    return fail(400, "malformed request line");
  }
  const std::string_view method = rl.substr(0, sp1);
  const std::string_view target = rl.substr(sp1 + 1, sp2 - sp1 - 1);
  const std::string_view version = rl.substr(sp2 + 1);
  if (!is_token(method)) return fail(400, "malformed method");
  if (target.empty()) return fail(400, "missing request target");
  for (char c : target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return fail(400, "malformed request target");
  }
  if (version.size() != 8 || version.substr(0, 7) != "HTTP/1." ) {
    if (version.substr(0, 5) == "HTTP/") return fail(505, "HTTP version not supported");
    return fail(400, "malformed HTTP version");
  }
  if (version[7] != '0' && version[7] != '1') return fail(505, "HTTP version not supported");
  r.method = std::string(method);
  r.target = std::string(target);
  r.minor_version = version[7] - '0';

  std::string_view path = target;
  if (path.front() != '/') {
    // Absolute form: scheme "://" authority path.
    const size_t scheme_end = path.find("://");
    if (scheme_end == std::string_view::npos) {
      if (path == "*") {
        path = "*";
      } else {
        return fail(400, "malformed request target");
      }
    } else {
      const size_t slash = path.find('/', scheme_end + 3);
      path = slash == std::string_view::npos ? std::string_view("/") : path.substr(slash);
    }
  }
  const size_t q = path.find('?');
  r.path = std::string(path.substr(0, q));
  if (q != std::string_view::npos) r.query = std::string(path.substr(q + 1));

  for (size_t i = 1; i < lines.size(); ++i) {
    const std::string_view line = lines[i];
    if (line.front() == ' ' || line.front() == '\t') return fail(400, "obsolete header line folding");
    const size_t colon = line.find(':');
    if (colon == std::string_view::npos) return fail(400, "malformed header line");
    const std::string_view name = line.substr(0, colon);
    if (!is_token(name)) return fail(400, "malformed header name");
    const std::string_view value = trim(line.substr(colon + 1));
    for (char c : value) {
      if ((static_cast<unsigned char>(c) < 0x20 && c != '\t') || c == 0x7f) {
        return fail(400, "malformed header value");
      }
    }
    r.headers.emplace_back(lower(name), std::string(value));
  }

  if (r.header("transfer-encoding") != nullptr) return fail(501, "transfer-encoding not supported");
  size_t body_len = 0;
  bool have_length = false;
  for (const auto& [n, v] : r.headers) {
    if (n != "content-length") continue;
    uint64_t len = 0;
    auto res = std::from_chars(v.data(), v.data() + v.size(), len);
    if (v.empty() || res.ec != std::errc() || res.ptr != v.data() + v.size()) {
      return fail(400, "malformed content-length");
    }
    if (have_length && len != body_len) return fail(400, "conflicting content-length");
    if (len > limits.max_body_bytes) return fail(413, "request body too large");
    body_len = static_cast<size_t>(len);
    have_length = true;
  }
  if (buf.size() - body_start < body_len) return {};  // body not complete yet

  const std::string* conn = r.header("connection");
  if (r.minor_version == 0) {
    r.keep_alive = conn != nullptr && list_has(*conn, "keep-alive");
  } else {
    r.keep_alive = conn == nullptr || !list_has(*conn, "close");
  }
  p.state = HttpParse::State::kDone;
  p.consumed = body_start + body_len;
  return p;
}

const char* http_reason(int status) {
  switch (status) {
    case 200: return "OK";
    case 400: return "Bad Request";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 408: return "Request Timeout";
    case 413: return "Payload Too Large";
    case 431: return "Request Header Fields Too Large";
    case 500: return "Internal Server Error";
    case 501: return "Not Implemented";
    case 503: return "Service Unavailable";
    case 505: return "HTTP Version Not Supported";
    default: return "Unknown";
  }
}

std::string format_http_response(int status, std::string_view content_type,
                                 std::string_view body, bool keep_alive, bool head_only,
                                 const std::vector<std::string>& extra_headers) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + http_reason(status) + "\r\n";
  out += "Content-Type: ";
  out += content_type;
  out += "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  for (const std::string& h : extra_headers) out += h + "\r\n";
  out += keep_alive ? "Connection: keep-alive\r\n\r\n" : "Connection: close\r\n\r\n";
  if (!head_only) out += body;
  return out;
}

}  // namespace raftkv::api
