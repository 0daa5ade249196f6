// The shell's command table: names for completion, HELP text.
#include <gtest/gtest.h>

#include "cli/shell_commands.h"

namespace raftkv::cli {
namespace {

TEST(ShellHelp, ListsEveryCommandWithItsUsage) {
  std::string help = shell_help("");
  for (const auto& name : shell_command_names()) {
    EXPECT_NE(help.find("  " + name), std::string::npos) << name;
  }
  EXPECT_GE(shell_command_names().size(), 18u);
}

TEST(ShellHelp, ExplainsOneCommandCaseInsensitively) {
  EXPECT_EQ(shell_help("set").substr(0, 34), "usage: SET key value [EX seconds]\n");
  EXPECT_NE(shell_help("Lock").find("fencing token"), std::string::npos);
  EXPECT_EQ(shell_help("frob"), "unknown command \"frob\": type HELP for the list\n");
}

}  // namespace
}  // namespace raftkv::cli
