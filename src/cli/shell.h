// raftkvctl's interactive shell: a read-eval-print loop over ShellSession.
//
// On a terminal it uses libedit: line editing, history kept in ~/.raftkvctl_history (1000
// lines), Tab completes command names, Ctrl-C clears the line (or stops WATCH / a waiting
// LOCK), Ctrl-D or QUIT leaves. When stdin is not a terminal it reads commands line by
// line without a prompt, so `echo "GET k" | raftkvctl` works in scripts.
#pragma once

#include "cli/client.h"

namespace raftkv::cli {

/// Runs the shell until QUIT/EXIT or end of input. Main thread; the SIGINT handler
/// (install_interrupt_handler) must be installed. Returns the process exit code (0).
int run_shell(client::Client& client);

}  // namespace raftkv::cli
