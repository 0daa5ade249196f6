// Status and Result<T>: the one error scheme of raftkv (docs/architecture.md).
//
// Expected failures (not leader, key not found, compacted revision, I/O error)
// travel as values of these types; they are [[nodiscard]] so an ignored error
// is a compile error under -Werror. Bugs are not Statuses: they abort through
// RAFTKV_CHECK (check.h). No exception crosses a module border.
//
// Header-only and standard-library-only, so the deterministic Raft core may use it.
#pragma once

#include <cassert>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace raftkv {

/// What went wrong, coarsely; the message says precisely. The API layer maps
/// each code (plus the message) onto a gRPC status.
enum class Code : int {
  kOk = 0,
  kInvalidArgument,     ///< The request is malformed; retrying will not help.
  kNotFound,            ///< A named thing (key, lease, member, file) does not exist.
  kAlreadyExists,       ///< Creating something that exists.
  kOutOfRange,          ///< A revision or index outside what is retained (compacted / future).
  kFailedPrecondition,  ///< The system is not in a state that allows this (e.g. not leader).
  kResourceExhausted,   ///< A bound was hit: quota, queue, in-flight limit.
  kUnavailable,         ///< Temporarily cannot serve (no leader, shutting down); may retry.
  kDeadlineExceeded,    ///< Timed out.
  kAborted,             ///< Lost a race (e.g. leadership changed); may retry.
  kCorruption,          ///< Bytes on disk or wire failed validation (checksum, length, range).
  kIOError,             ///< The operating system refused a read, write or sync.
  kPermissionDenied,
  kUnauthenticated,
  kInternal,            ///< Should not happen; reported rather than crashing a server.
};

/// Human-readable name of a code, e.g. "Corruption".
constexpr std::string_view code_name(Code c) {
  switch (c) {
    case Code::kOk: return "OK";
    case Code::kInvalidArgument: return "InvalidArgument";
    case Code::kNotFound: return "NotFound";
    case Code::kAlreadyExists: return "AlreadyExists";
    case Code::kOutOfRange: return "OutOfRange";
    case Code::kFailedPrecondition: return "FailedPrecondition";
    case Code::kResourceExhausted: return "ResourceExhausted";
    case Code::kUnavailable: return "Unavailable";
    case Code::kDeadlineExceeded: return "DeadlineExceeded";
    case Code::kAborted: return "Aborted";
    case Code::kCorruption: return "Corruption";
    case Code::kIOError: return "IOError";
    case Code::kPermissionDenied: return "PermissionDenied";
    case Code::kUnauthenticated: return "Unauthenticated";
    case Code::kInternal: return "Internal";
  }
  return "Unknown";
}

/// The outcome of an operation that returns no value.
class [[nodiscard]] Status {
 public:
  Status() = default;  ///< OK.
  Status(Code code, std::string message) : code_(code), message_(std::move(message)) {}

  static Status ok() { return Status(); }
  static Status invalid_argument(std::string m) { return {Code::kInvalidArgument, std::move(m)}; }
  static Status not_found(std::string m) { return {Code::kNotFound, std::move(m)}; }
  static Status already_exists(std::string m) { return {Code::kAlreadyExists, std::move(m)}; }
  static Status out_of_range(std::string m) { return {Code::kOutOfRange, std::move(m)}; }
  static Status failed_precondition(std::string m) {
    return {Code::kFailedPrecondition, std::move(m)};
  }
  static Status resource_exhausted(std::string m) {
    return {Code::kResourceExhausted, std::move(m)};
  }
  static Status unavailable(std::string m) { return {Code::kUnavailable, std::move(m)}; }
  static Status deadline_exceeded(std::string m) {
    return {Code::kDeadlineExceeded, std::move(m)};
  }
  static Status aborted(std::string m) { return {Code::kAborted, std::move(m)}; }
  static Status corruption(std::string m) { return {Code::kCorruption, std::move(m)}; }
  static Status io_error(std::string m) { return {Code::kIOError, std::move(m)}; }
  static Status internal(std::string m) { return {Code::kInternal, std::move(m)}; }

  bool is_ok() const { return code_ == Code::kOk; }
  explicit operator bool() const { return is_ok(); }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }

  /// "Corruption: wal segment 3 offset 4096: crc mismatch".
  std::string to_string() const {
    if (is_ok()) return "OK";
    std::string s(code_name(code_));
    s += ": ";
    s += message_;
    return s;
  }

  bool operator==(const Status& o) const { return code_ == o.code_ && message_ == o.message_; }

 private:
  Code code_ = Code::kOk;
  std::string message_;
};

/// A value or the Status explaining why there is none.
template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::move(value)) {}  // NOLINT: implicit by design
  Result(Status status) : v_(std::move(status)) {  // NOLINT: implicit by design
    assert(!std::get<Status>(v_).is_ok() && "Result built from an OK status has no value");
  }

  bool is_ok() const { return std::holds_alternative<T>(v_); }
  explicit operator bool() const { return is_ok(); }

  /// REQUIRES: is_ok().
  T& value() & { return std::get<T>(v_); }
  const T& value() const& { return std::get<T>(v_); }
  T&& value() && { return std::get<T>(std::move(v_)); }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  /// The error; Status::ok() when a value is present.
  Status status() const { return is_ok() ? Status::ok() : std::get<Status>(v_); }

 private:
  std::variant<T, Status> v_;
};

}  // namespace raftkv

/// Returns the Status of `expr` from the enclosing function if it is not OK.
#define RAFTKV_RETURN_IF_ERROR(expr)          \
  do {                                        \
    ::raftkv::Status raftkv_s_ = (expr);      \
    if (!raftkv_s_.is_ok()) return raftkv_s_; \
  } while (0)
