// RAFTKV_CHECK: invariant assertions that stay on in release builds.
//
// In the Raft core and storage a broken invariant means data loss, so we crash
// loudly with the file, line and condition instead of carrying on
// (docs/architecture.md, STYLE "assert invariants densely").
#pragma once

#include <cstdio>
#include <cstdlib>

namespace raftkv::detail {
[[noreturn]] inline void check_failed(const char* file, int line, const char* cond,
                                      const char* msg) {
  std::fprintf(stderr, "raftkv: invariant violated at %s:%d: %s%s%s\n", file, line, cond,
               msg[0] ? " — " : "", msg);
  std::fflush(stderr);
  std::abort();
}
}  // namespace raftkv::detail

/// Aborts the process if `cond` is false. Always evaluated, in every build type.
#define RAFTKV_CHECK(cond)                                                          \
  do {                                                                              \
    if (!(cond)) [[unlikely]]                                                       \
      ::raftkv::detail::check_failed(__FILE__, __LINE__, #cond, "");                \
  } while (0)

/// Like RAFTKV_CHECK with an explanation (a string literal or const char*).
#define RAFTKV_CHECK_MSG(cond, msg)                                                 \
  do {                                                                              \
    if (!(cond)) [[unlikely]]                                                       \
      ::raftkv::detail::check_failed(__FILE__, __LINE__, #cond, (msg));             \
  } while (0)
