#include "cli/format.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cmath>
#include <cstdlib>

#include "base/check.h"

namespace raftkv::cli {
namespace {

// Length of the UTF-8 sequence starting at s[i] if it is well formed, else 0.
size_t utf8_sequence_length(std::string_view s, size_t i) {
  auto byte = [&](size_t k) { return static_cast<unsigned char>(s[k]); };
  unsigned char c = byte(i);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xE ? 3 : (c >> 3) == 0x1E ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((byte(i + k) & 0xC0) != 0x80) return 0;
  }
  if (n == 2 && c < 0xC2) return 0;  // overlong
  return n;
}

}  // namespace

bool is_printable(std::string_view bytes) {
  size_t i = 0;
  while (i < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[i]);
    if (c < 0x20 || c == 0x7F) return false;
    size_t n = utf8_sequence_length(bytes, i);
    if (n == 0) return false;
    i += n;
  }
  return true;
}

std::string escape_value(std::string_view bytes) {
  if (is_printable(bytes) && !bytes.empty() && bytes.front() != '"' && bytes.front() != '\'')
    return std::string(bytes);
  std::string out = "\"";
  size_t i = 0;
  while (i < bytes.size()) {
    auto c = static_cast<unsigned char>(bytes[i]);
    switch (c) {
      case '\n':
        out += "\\n";
        ++i;
        continue;
      case '\r':
        out += "\\r";
        ++i;
        continue;
      case '\t':
        out += "\\t";
        ++i;
        continue;
      case '\\':
        out += "\\\\";
        ++i;
        continue;
      case '"':
        out += "\\\"";
        ++i;
        continue;
      default:
        break;
    }
    size_t n = (c < 0x20 || c == 0x7F) ? 0 : utf8_sequence_length(bytes, i);
    if (n == 0) {
      out += fmt::format("\\x{:02x}", c);
      ++i;
    } else {
      out.append(bytes.substr(i, n));
      i += n;
    }
  }
  out += '"';
  return out;
}

std::string base64_encode(std::string_view bytes) {
  static constexpr char kAlphabet[] =
      "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 3 <= bytes.size(); i += 3) {
    uint32_t v = (static_cast<unsigned char>(bytes[i]) << 16) |
                 (static_cast<unsigned char>(bytes[i + 1]) << 8) |
                 static_cast<unsigned char>(bytes[i + 2]);
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += kAlphabet[(v >> 6) & 63];
    out += kAlphabet[v & 63];
  }
  size_t rest = bytes.size() - i;
  if (rest > 0) {
    uint32_t v = static_cast<unsigned char>(bytes[i]) << 16;
    if (rest == 2) v |= static_cast<unsigned char>(bytes[i + 1]) << 8;
    out += kAlphabet[(v >> 18) & 63];
    out += kAlphabet[(v >> 12) & 63];
    out += rest == 2 ? kAlphabet[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::string hex_id(uint64_t id) {
  return fmt::format("{:016x}", id);
}

Result<uint64_t> parse_hex_id(std::string_view text) {
  std::string_view t = text;
  if (t.size() > 2 && t[0] == '0' && (t[1] == 'x' || t[1] == 'X')) t.remove_prefix(2);
  if (t.empty() || t.size() > 16 || !std::all_of(t.begin(), t.end(), [](char c) {
        return std::isxdigit(static_cast<unsigned char>(c));
      })) {
    return Status::invalid_argument(
        fmt::format("bad id \"{}\": expected up to 16 hex digits, e.g. 694d7c3e0f2a1b05", text));
  }
  return static_cast<uint64_t>(std::strtoull(std::string(t).c_str(), nullptr, 16));
}

std::string humanize_bytes(uint64_t bytes) {
  static constexpr const char* kUnits[] = {"B", "kB", "MB", "GB", "TB", "PB", "EB"};
  if (bytes < 10) return fmt::format("{} B", bytes);
  double e = std::floor(std::log(static_cast<double>(bytes)) / std::log(1000.0));
  e = std::min(e, 6.0);
  double val = std::floor(static_cast<double>(bytes) / std::pow(1000.0, e) * 10 + 0.5) / 10;
  const char* unit = kUnits[static_cast<int>(e)];
  return val < 10 ? fmt::format("{:.1f} {}", val, unit) : fmt::format("{:.0f} {}", val, unit);
}

Result<int64_t> parse_duration_ms(std::string_view text) {
  auto bad = [&] {
    return Status::invalid_argument(
        fmt::format("bad duration \"{}\": use a number with a unit, e.g. 500ms, 5s or 2m", text));
  };
  size_t unit_at = 0;
  while (unit_at < text.size() &&
         (std::isdigit(static_cast<unsigned char>(text[unit_at])) || text[unit_at] == '.')) {
    ++unit_at;
  }
  if (unit_at == 0 || unit_at > 12) return bad();
  std::string number(text.substr(0, unit_at));
  char* end = nullptr;
  double value = std::strtod(number.c_str(), &end);
  if (end != number.c_str() + number.size()) return bad();
  std::string_view unit = text.substr(unit_at);
  double ms = 0;
  if (unit == "ms") {
    ms = value;
  } else if (unit == "s" || unit.empty()) {
    ms = value * 1000;
  } else if (unit == "m") {
    ms = value * 60'000;
  } else if (unit == "h") {
    ms = value * 3'600'000;
  } else {
    return bad();
  }
  if (ms < 1 || ms > 24.0 * 3'600'000) {
    return Status::invalid_argument(
        fmt::format("duration \"{}\" out of range: it must be between 1ms and 24h", text));
  }
  return static_cast<int64_t>(ms);
}

std::string format_duration_us(int64_t micros) {
  if (micros < 1000) return fmt::format("{}µs", micros);
  if (micros < 1'000'000) return fmt::format("{:.3f}ms", static_cast<double>(micros) / 1e3);
  return fmt::format("{:.3f}s", static_cast<double>(micros) / 1e6);
}

// ---------------------------------------------------------------------------- Table

void Table::add_row(std::vector<std::string> row) {
  RAFTKV_CHECK(row.size() == headers_.size());
  rows_.push_back(std::move(row));
}

namespace {
// Display width in terminal columns: UTF-8 continuation bytes take no column.
size_t display_width(std::string_view s) {
  return static_cast<size_t>(std::count_if(
      s.begin(), s.end(), [](char c) { return (static_cast<unsigned char>(c) & 0xC0) != 0x80; }));
}
}  // namespace

std::string Table::render() const {
  std::vector<size_t> widths;
  for (const auto& h : headers_) widths.push_back(display_width(h));
  for (const auto& row : rows_) {
    for (size_t i = 0; i < row.size(); ++i) widths[i] = std::max(widths[i], display_width(row[i]));
  }
  std::string rule = "+";
  for (size_t w : widths) rule += std::string(w + 2, '-') + "+";
  rule += "\n";

  std::string out = rule + "|";
  for (size_t i = 0; i < headers_.size(); ++i) {
    size_t pad = widths[i] - display_width(headers_[i]);
    size_t left = pad / 2;  // etcdctl puts the odd space on the right
    out += " " + std::string(left, ' ') + headers_[i] + std::string(pad - left, ' ') + " |";
  }
  out += "\n" + rule;
  for (const auto& row : rows_) {
    out += "|";
    for (size_t i = 0; i < row.size(); ++i) {
      out += " " + std::string(widths[i] - display_width(row[i]), ' ') + row[i] + " |";
    }
    out += "\n";
  }
  out += rule;
  return out;
}

// ---------------------------------------------------------------------------- JsonWriter

void JsonWriter::separator() {
  if (first_.empty()) return;
  if (!first_.back()) out_ += ',';
  first_.back() = false;
}

void JsonWriter::quoted(std::string_view s) {
  out_ += '"';
  for (char ch : s) {
    auto c = static_cast<unsigned char>(ch);
    switch (c) {
      case '"':
        out_ += "\\\"";
        break;
      case '\\':
        out_ += "\\\\";
        break;
      case '\n':
        out_ += "\\n";
        break;
      case '\r':
        out_ += "\\r";
        break;
      case '\t':
        out_ += "\\t";
        break;
      default:
        if (c < 0x20) {
          out_ += fmt::format("\\u{:04x}", c);
        } else {
          out_ += ch;
        }
    }
  }
  out_ += '"';
}

void JsonWriter::name(std::string_view n) {
  separator();
  if (!n.empty()) {
    quoted(n);
    out_ += ':';
  }
}

void JsonWriter::begin_object(std::string_view n) {
  name(n);
  out_ += '{';
  first_.push_back(true);
}

void JsonWriter::end_object() {
  RAFTKV_CHECK(!first_.empty());
  first_.pop_back();
  out_ += '}';
}

void JsonWriter::begin_array(std::string_view n) {
  name(n);
  out_ += '[';
  first_.push_back(true);
}

void JsonWriter::end_array() {
  RAFTKV_CHECK(!first_.empty());
  first_.pop_back();
  out_ += ']';
}

void JsonWriter::field_int(std::string_view n, int64_t v) {
  if (v != 0) field_int_always(n, v);
}
void JsonWriter::field_uint(std::string_view n, uint64_t v) {
  if (v == 0) return;
  name(n);
  out_ += fmt::format("{}", v);
}
void JsonWriter::field_bool(std::string_view n, bool v) {
  if (v) field_bool_always(n, v);
}
void JsonWriter::field_string(std::string_view n, std::string_view v) {
  if (!v.empty()) field_string_always(n, v);
}
void JsonWriter::field_bytes(std::string_view n, std::string_view v) {
  if (!v.empty()) field_string_always(n, base64_encode(v));
}
void JsonWriter::field_int_always(std::string_view n, int64_t v) {
  name(n);
  out_ += fmt::format("{}", v);
}
void JsonWriter::field_bool_always(std::string_view n, bool v) {
  name(n);
  out_ += v ? "true" : "false";
}
void JsonWriter::field_string_always(std::string_view n, std::string_view v) {
  name(n);
  quoted(v);
}
void JsonWriter::element_string(std::string_view v) {
  separator();
  quoted(v);
}
void JsonWriter::element_bytes(std::string_view v) {
  element_string(base64_encode(v));
}

const std::string& JsonWriter::str() const {
  RAFTKV_CHECK(first_.empty());
  return out_;
}

}  // namespace raftkv::cli
