// raftkvctl: the command-line client of raftkv (docs/cli.md).
#include "cli/commands.h"

int main(int argc, char** argv) {
  return raftkv::cli::run_main(argc, argv, RAFTKV_VERSION);
}
