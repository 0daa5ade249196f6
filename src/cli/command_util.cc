#include "cli/command_util.h"

#include <fmt/format.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/format.h"

namespace raftkv::cli {

void out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

int usage_error(std::string_view message) {
  std::fprintf(stderr, "error: %.*s\nRun 'raftkvctl --help' for usage.\n",
               static_cast<int>(message.size()), message.data());
  return kExitUsage;
}

int fail(const Status& s) {
  std::fprintf(stderr, "error: %s\n", s.message().c_str());
  if (client::is_unavailable(s)) return kExitUnavailable;
  if (s.code() == Code::kInvalidArgument && s.message().rfind("bad ", 0) == 0) return kExitUsage;
  return kExitFailed;
}

void add_range_flags(CLI::App* sub, RangeFlags* f) {
  sub->add_flag("--prefix", f->prefix, "Treat the key as a prefix");
  sub->add_flag("--from-key", f->from_key, "Every key >= the key (byte order)");
}

Result<int64_t> parse_lease_flag(const std::string& text) {
  if (text.empty()) return int64_t{0};
  auto id = parse_hex_id(text);
  if (!id.is_ok()) return id.status();
  return static_cast<int64_t>(*id);
}

}  // namespace raftkv::cli
