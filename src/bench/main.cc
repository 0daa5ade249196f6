// raftkv-bench: a load generator for the etcd v3 gRPC API. See options.h for
// the command line, driver.h for how load is generated, report.h for output.
#include <cstdio>

#include "bench/driver.h"
#include "bench/options.h"
#include "bench/report.h"

int main(int argc, char** argv) {
  using namespace raftkv::bench;
  raftkv::Result<ParsedArgs> args = parse_args(argc, argv);
  if (!args) {
    std::fprintf(stderr, "raftkv-bench: %s\n(see raftkv-bench --help)\n",
                 args.status().message().c_str());
    return 2;
  }
  if (args->help) {
    std::fputs(args->text.c_str(), stdout);
    return 0;
  }
  const BenchOptions& o = args->options;
  raftkv::Result<Report> report = o.workload == Workload::kFsync ? run_fsync(o) : run_workload(o);
  if (!report) {
    std::fprintf(stderr, "raftkv-bench: %s\n", report.status().to_string().c_str());
    return 1;
  }
  const std::string out = o.json ? to_json(*report) : to_text(*report);
  std::fputs(out.c_str(), stdout);
  return 0;
}
