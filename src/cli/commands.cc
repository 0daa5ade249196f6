#include "cli/commands.h"

#include <fmt/format.h>

#include <CLI/CLI.hpp>

#include "cli/client.h"
#include "cli/command_util.h"
#include "cli/format.h"
#include "cli/render.h"
#include "cli/shell.h"
#include "cli/terminal.h"

namespace raftkv::cli {

int run_main(int argc, char** argv, std::string_view version) {
  CLI::App app{
      "raftkvctl: command-line client of raftkv (and etcd v3).\n"
      "Without a command it opens an interactive shell (type HELP there).",
      "raftkvctl"};
  app.fallthrough();  // global flags may follow the command: raftkvctl get k -w json
  app.set_version_flag("--version", fmt::format("raftkvctl {}", version));
  std::string endpoints = "127.0.0.1:2379", dial = "2s", command = "5s", write_out = "simple";
  app.add_option("--endpoints", endpoints, "Comma-separated host:port list")->capture_default_str();
  app.add_option("--dial-timeout", dial, "Time to wait for a connection")->capture_default_str();
  app.add_option("--command-timeout", command, "Time to wait for each request")
      ->capture_default_str();
  app.add_option("-w,--write-out", write_out, "Output format: simple, json or table")
      ->capture_default_str();

  client::ClientTls tls;
  app.add_option("--cacert", tls.cacert, "Verify servers with this CA bundle (TLS)");
  app.add_option("--cert", tls.cert, "Identify this client with this certificate (TLS)");
  app.add_option("--key", tls.key, "Key of the --cert certificate (TLS)");
  app.add_flag("--insecure-transport", tls.insecure_transport,
               "Disable transport security for client connections (default true)");
  app.add_flag("--insecure-skip-tls-verify", tls.insecure_skip_tls_verify,
               "Accept any server certificate (encrypted but unauthenticated)");

  Plan plan;
  add_kv_commands(app, plan);
  add_lease_commands(app, plan);
  add_cluster_commands(app, plan);

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) return app.exit(e);  // --help, --version
    return usage_error(e.what());
  }

  auto format = parse_output_format(write_out);
  if (!format.is_ok()) return usage_error(format.status().message());
  if (*format == OutputFormat::kTable && !plan.command.empty() && !supports_table(plan.command)) {
    return usage_error(
        fmt::format("{} has no table output: use -w simple or -w json", plan.command));
  }
  client::ClientOptions options;
  auto dial_ms = parse_duration_ms(dial);
  auto command_ms = parse_duration_ms(command);
  if (!dial_ms.is_ok()) return usage_error("--dial-timeout: " + dial_ms.status().message());
  if (!command_ms.is_ok())
    return usage_error("--command-timeout: " + command_ms.status().message());
  options.dial_timeout_ms = *dial_ms;
  options.command_timeout_ms = *command_ms;
  options.tls = tls;
  for (size_t start = 0; start <= endpoints.size();) {
    size_t comma = endpoints.find(',', start);
    if (comma == std::string::npos) comma = endpoints.size();
    if (comma > start) options.endpoints.push_back(endpoints.substr(start, comma - start));
    start = comma + 1;
  }
  auto c = client::Client::create(std::move(options));
  if (!c.is_ok()) return usage_error(c.status().message());

  install_interrupt_handler();
  if (!plan.action) return run_shell(**c);
  Context ctx{**c, *format};
  return plan.action(ctx);
}

}  // namespace raftkv::cli
