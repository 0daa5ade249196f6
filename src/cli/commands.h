// raftkvctl's command line: global flags, etcdctl-compatible script commands, and the
// shell when no command is given.
//
// Exit codes (docs/cli.md):
//   0  success
//   1  the operation failed (a server error, a strict get/del that found nothing, an
//      unhealthy endpoint, a lease that no longer exists, ...)
//   2  usage error (unknown command or flag, bad argument)
//   3  the cluster is unavailable (cannot connect, no leader, timed out)
#pragma once

#include <string_view>

namespace raftkv::cli {

enum ExitCode : int { kExitOk = 0, kExitFailed = 1, kExitUsage = 2, kExitUnavailable = 3 };

/// Parses argv and runs the command (or the shell). Main thread only.
int run_main(int argc, char** argv, std::string_view version);

}  // namespace raftkv::cli
