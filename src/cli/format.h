// Text building blocks for raftkvctl's output: value escaping, base64, ids, byte sizes,
// durations, etcdctl-style tables and a small JSON writer.
//
// All pure functions of their inputs (no I/O, no clocks), callable from any thread.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace raftkv::cli {

/// True when `bytes` is valid UTF-8 without control characters (C0, DEL), i.e. it can be
/// printed on one line as it is.
bool is_printable(std::string_view bytes);

/// The shell's way of showing a value: the text itself when is_printable() (and not empty
/// and not starting with a quote), otherwise a double-quoted string with \n \r \t \\ \"
/// and \xNN escapes, which the shell tokenizer reads back into the same bytes: for a quoted
/// result, tokenize(escape_value(v)) == {v}, so it can be pasted into a SET.
std::string escape_value(std::string_view bytes);

/// Standard base64 with padding (RFC 4648 §4), as etcdctl's JSON output uses for bytes.
std::string base64_encode(std::string_view bytes);

/// An id the way etcdctl prints member and lease ids: 16 lowercase hex digits.
std::string hex_id(uint64_t id);

/// Parses a hex lease/member id ("694d7c3e0f2a1b05", optional "0x"); InvalidArgument if not hex.
Result<uint64_t> parse_hex_id(std::string_view text);

/// A byte count in SI units with one significant decimal below 10, as etcdctl prints the
/// database size: 24576 -> "25 kB", 2500000 -> "2.5 MB", 9 -> "9 B".
std::string humanize_bytes(uint64_t bytes);

/// Parses a duration flag: "5s", "500ms", "2m", "1.5s", or a bare number of seconds.
/// InvalidArgument says what is accepted.
Result<int64_t> parse_duration_ms(std::string_view text);

/// A duration for humans, as etcdctl prints request times: "1.646ms", "2.1s".
std::string format_duration_us(int64_t micros);

/// A box-drawn table like etcdctl's `-w table`: headers centred, cells right-aligned.
///   +------+-----+
///   | NAME | AGE |
///   +------+-----+
///   |   n1 |   3 |
///   +------+-----+
class Table {
 public:
  explicit Table(std::vector<std::string> headers) : headers_(std::move(headers)) {}
  /// REQUIRES: row.size() == number of headers.
  void add_row(std::vector<std::string> row);
  std::string render() const;

 private:
  std::vector<std::string> headers_;
  std::vector<std::vector<std::string>> rows_;
};

/// Writes compact JSON the way Go's encoding/json does for etcdctl's `-w json`: fields in
/// the order written, and (like Go's `omitempty`) zero numbers, false, empty strings and
/// empty arrays left out unless written with the *_always variants.
/// Not thread-safe; one writer per document.
class JsonWriter {
 public:
  /// Opens an object; `name` empty for the top level or inside an array.
  void begin_object(std::string_view name = {});
  void end_object();
  void begin_array(std::string_view name = {});
  void end_array();

  void field_int(std::string_view name, int64_t v);              ///< omitted when 0
  void field_uint(std::string_view name, uint64_t v);            ///< omitted when 0
  void field_bool(std::string_view name, bool v);                ///< omitted when false
  void field_string(std::string_view name, std::string_view v);  ///< omitted when empty
  void field_bytes(std::string_view name, std::string_view v);   ///< base64; omitted when empty
  void field_int_always(std::string_view name, int64_t v);
  void field_bool_always(std::string_view name, bool v);
  void field_string_always(std::string_view name, std::string_view v);

  /// Array elements.
  void element_string(std::string_view v);
  void element_bytes(std::string_view v);

  /// REQUIRES: every object and array closed.
  const std::string& str() const;

 private:
  void separator();
  void name(std::string_view n);
  void quoted(std::string_view s);

  std::string out_;
  std::vector<bool> first_;  // per open container: nothing written into it yet
};

}  // namespace raftkv::cli
