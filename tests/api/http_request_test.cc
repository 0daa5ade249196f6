#include "api/http_request.h"

#include <string>

#include <gtest/gtest.h>

#include "api/grpc_metrics.h"

namespace raftkv::api {
namespace {

using State = HttpParse::State;

TEST(HttpRequestParse, SimpleGetWithHeaders) {
  const std::string raw = "GET /metrics?x=1 HTTP/1.1\r\nHost: a:1\r\nAccept:  text/plain \r\n\r\n";
  HttpParse p = parse_http_request(raw);
  ASSERT_EQ(p.state, State::kDone);
  EXPECT_EQ(p.consumed, raw.size());
  EXPECT_EQ(p.request.method, "GET");
  EXPECT_EQ(p.request.path, "/metrics");
  EXPECT_EQ(p.request.query, "x=1");
  EXPECT_EQ(p.request.minor_version, 1);
  ASSERT_NE(p.request.header("accept"), nullptr);
  EXPECT_EQ(*p.request.header("accept"), "text/plain");
  EXPECT_EQ(*p.request.header("host"), "a:1");
  EXPECT_TRUE(p.request.keep_alive);
}

TEST(HttpRequestParse, IncompleteUntilTheEmptyLine) {
  EXPECT_EQ(parse_http_request("GET / HTTP/1.1\r\nHost: a\r\n").state, State::kIncomplete);
  EXPECT_EQ(parse_http_request("").state, State::kIncomplete);
}

TEST(HttpRequestParse, BareLineFeedsAreTolerated) {
  HttpParse p = parse_http_request("GET /health HTTP/1.0\nHost: a\n\n");
  ASSERT_EQ(p.state, State::kDone);
  EXPECT_EQ(p.request.path, "/health");
  EXPECT_FALSE(p.request.keep_alive);  // HTTP/1.0 without keep-alive
}

TEST(HttpRequestParse, ConnectionHeaderDecidesKeepAlive) {
  EXPECT_FALSE(parse_http_request("GET / HTTP/1.1\r\nConnection: Close\r\n\r\n").request.keep_alive);
  EXPECT_TRUE(
      parse_http_request("GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n").request.keep_alive);
}

TEST(HttpRequestParse, PipelinedRequestsAreConsumedOneAtATime) {
  const std::string one = "GET /a HTTP/1.1\r\n\r\n";
  HttpParse p = parse_http_request(one + "GET /b HTTP/1.1\r\n\r\n");
  ASSERT_EQ(p.state, State::kDone);
  EXPECT_EQ(p.consumed, one.size());
  EXPECT_EQ(p.request.path, "/a");
}

TEST(HttpRequestParse, BodyByContentLengthIsWaitedForAndConsumed) {
  EXPECT_EQ(parse_http_request("POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nab").state,
            State::kIncomplete);
  const std::string raw = "POST / HTTP/1.1\r\nContent-Length: 4\r\n\r\nabcd";
  HttpParse p = parse_http_request(raw);
  ASSERT_EQ(p.state, State::kDone);
  EXPECT_EQ(p.consumed, raw.size());
}

TEST(HttpRequestParse, AbsoluteFormTargetYieldsItsPath) {
  HttpParse p = parse_http_request("GET http://h:1/version HTTP/1.1\r\n\r\n");
  ASSERT_EQ(p.state, State::kDone);
  EXPECT_EQ(p.request.path, "/version");
}

void expect_error(const std::string& raw, int status) {
  HttpParse p = parse_http_request(raw);
  EXPECT_EQ(p.state, State::kError) << raw;
  EXPECT_EQ(p.error_status, status) << raw;
}

TEST(HttpRequestParse, MalformedRequestsGet400) {
  expect_error("GARBAGE\r\n\r\n", 400);
  expect_error("GET  / HTTP/1.1\r\n\r\n", 400);
  expect_error("GET / HTTP/1.1 extra\r\n\r\n", 400);
  expect_error("G(T / HTTP/1.1\r\n\r\n", 400);
  expect_error("GET nopath HTTP/1.1\r\n\r\n", 400);
  expect_error("GET / FTP/1.1\r\n\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nBad Name: x\r\n\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nContent-Length: x\r\n\r\n", 400);
  expect_error("GET / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400);
  expect_error("\r\n\r\n", 400);
}

TEST(HttpRequestParse, UnsupportedFeaturesGetTheirStatus) {
  expect_error("GET / HTTP/2.0\r\n\r\n", 505);
  expect_error("GET / HTTP/1.2\r\n\r\n", 505);
  expect_error("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n", 501);
  expect_error("POST / HTTP/1.1\r\nContent-Length: 99999999\r\n\r\n", 413);
}

TEST(HttpRequestParse, OversizedHeadersGet431EvenBeforeTheyEnd) {
  HttpLimits limits;
  limits.max_header_bytes = 64;
  const std::string big = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a');
  HttpParse p = parse_http_request(big, limits);
  EXPECT_EQ(p.state, State::kError);
  EXPECT_EQ(p.error_status, 431);
}

TEST(HttpResponseFormat, HeadKeepsLengthButDropsBody) {
  EXPECT_EQ(format_http_response(200, "text/plain", "hello", true, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n"
            "Connection: keep-alive\r\n\r\nhello");
  EXPECT_EQ(format_http_response(503, "application/json", "{}", false, true),
            "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\n"
            "Content-Length: 2\r\nConnection: close\r\n\r\n");
}

TEST(GrpcMetrics, CodeNamesAreGos) {
  EXPECT_STREQ(grpc_code_name(0), "OK");
  EXPECT_STREQ(grpc_code_name(3), "InvalidArgument");
  EXPECT_STREQ(grpc_code_name(14), "Unavailable");
  EXPECT_STREQ(grpc_code_name(16), "Unauthenticated");
  EXPECT_STREQ(grpc_code_name(99), "Unknown");
}

}  // namespace
}  // namespace raftkv::api
