// The commands of raftkvctl's interactive shell (SET, GET, INCR, WATCH, LOCK, STATUS, …).
//
// A ShellSession executes one already-tokenized command line at a time against a Client and
// writes what it prints through a sink, so it works the same on a terminal, on piped input
// and in tests. Command names are case-insensitive. Errors print one line, "error: …",
// saying what to do. Used from one thread (the shell's); WATCH and LOCK block that thread
// until they finish or Ctrl-C (terminal.h's interrupt flag) stops them.
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "cli/client.h"
#include "cli/recipes.h"

namespace raftkv::cli {

/// Command names in the order HELP lists them (upper case), for tab completion.
const std::vector<std::string>& shell_command_names();

/// HELP's text: the list of commands when `command` is empty, else that command's usage,
/// description and an example. Unknown command: a line saying so.
std::string shell_help(std::string_view command);

class ShellSession {
 public:
  using Sink = std::function<void(std::string_view)>;
  ShellSession(client::Client& client, Sink out);
  ~ShellSession();  ///< releases a lock still held

  enum class Next { kContinue, kQuit };
  /// Runs one command. `words` as produced by tokenize(); empty does nothing.
  Next execute(const std::vector<std::string>& words);

 private:
  struct HeldLock {
    std::string name;
    client::Ownership owner;
    std::unique_ptr<client::LeaseKeeper> keeper;
  };

  void print(std::string_view text) { out_(text); }
  void error(std::string_view message);
  /// Prints the error of a failed call; returns true if there was one.
  bool failed(const Status& s);
  Status release_lock();

  void cmd_set(const std::vector<std::string>& a);
  void cmd_get(const std::vector<std::string>& a);
  void cmd_del(const std::vector<std::string>& a);
  void cmd_exists(const std::vector<std::string>& a);
  void cmd_keys(const std::vector<std::string>& a);
  void cmd_scan(const std::vector<std::string>& a);
  void cmd_incr(const std::vector<std::string>& a);
  void cmd_cas(const std::vector<std::string>& a);
  void cmd_ttl(const std::vector<std::string>& a);
  void cmd_history(const std::vector<std::string>& a);
  void cmd_watch(const std::vector<std::string>& a);
  void cmd_lock(const std::vector<std::string>& a);
  void cmd_unlock(const std::vector<std::string>& a);
  void cmd_status(const std::vector<std::string>& a);
  void cmd_members(const std::vector<std::string>& a);

  client::Client& client_;
  Sink out_;
  std::unique_ptr<HeldLock> lock_;
};

}  // namespace raftkv::cli
