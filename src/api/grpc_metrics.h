// gRPC server metrics under the names go-grpc-prometheus gives them in etcd,
// counted by a server interceptor on every call of every service:
//   grpc_server_started_total{grpc_type,grpc_service,grpc_method}
//   grpc_server_handled_total{grpc_type,grpc_service,grpc_method,grpc_code}
//   grpc_server_handling_seconds{grpc_type,grpc_service,grpc_method}  (--metrics extensive)
// grpc_type is unary, client_stream, server_stream or bidi_stream; grpc_code
// is the status name as Go spells it (OK, InvalidArgument, Unavailable, ...).
//
// Cost per call: one interceptor object, a lookup in a map built before the
// server starts (read-only afterwards), and relaxed atomic increments.
#pragma once

#include <memory>
#include <vector>

#include <grpcpp/support/server_interceptor.h>

namespace raftkv::api {

/// The interceptor factories to give grpc::ServerBuilder::experimental()
/// .SetInterceptorCreators. `extensive` adds the handling-time histogram.
std::vector<std::unique_ptr<grpc::experimental::ServerInterceptorFactoryInterface>>
make_grpc_metrics_interceptors(bool extensive);

/// Go's name of a gRPC status code ("OK", "Canceled", ..., "Unauthenticated").
const char* grpc_code_name(int code);

}  // namespace raftkv::api
