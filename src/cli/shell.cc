#include "cli/shell.h"

#include <fmt/format.h>
#include <histedit.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <string>

#include "cli/shell_commands.h"
#include "cli/terminal.h"
#include "cli/tokenizer.h"

namespace raftkv::cli {
namespace {

constexpr int kHistoryLines = 1000;
constexpr size_t kMaxCandidatesShown = 40;

std::string g_prompt;  // read by libedit's prompt callback (main thread only)

char* prompt_callback(EditLine*) {
  return g_prompt.data();
}

void write_out(std::string_view text) {
  std::fwrite(text.data(), 1, text.size(), stdout);
  std::fflush(stdout);
}

bool all_lower(std::string_view s) {
  for (char c : s) {
    if (std::isupper(static_cast<unsigned char>(c))) return false;
  }
  return true;
}

/// Tab: completes the command name being typed (only the first word of the line).
unsigned char complete_command(EditLine* el, int) {
  const LineInfo* li = el_line(el);
  std::string_view typed(li->buffer, static_cast<size_t>(li->cursor - li->buffer));
  if (typed.find_first_of(" \t") != std::string_view::npos) return CC_ERROR;
  std::string typed_upper;
  for (char c : typed)
    typed_upper += static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  std::vector<std::string> matches;
  for (const auto& name : shell_command_names()) {
    if (name.rfind(typed_upper, 0) == 0) matches.push_back(name);
  }
  if (matches.empty()) return CC_ERROR;
  // The longest common prefix of the matches, in the case the user is typing in.
  std::string common = matches[0];
  for (const auto& m : matches) {
    size_t n = 0;
    while (n < common.size() && n < m.size() && common[n] == m[n]) ++n;
    common.resize(n);
  }
  std::string insert = common.substr(typed.size());
  if (matches.size() == 1) insert += " ";
  if (all_lower(typed) && !typed.empty()) {
    for (char& c : insert) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  if (!insert.empty()) {
    el_insertstr(el, insert.c_str());
    return CC_REDISPLAY;
  }
  std::string list = "\n";
  for (size_t i = 0; i < matches.size() && i < kMaxCandidatesShown; ++i) list += matches[i] + "  ";
  list += "\n";
  write_out(list);
  return CC_REDISPLAY;
}

std::string history_path() {
  const char* home = std::getenv("HOME");
  if (home == nullptr || home[0] == '\0') return "";
  return std::string(home) + "/.raftkvctl_history";
}

/// Executes one input line; returns false when the shell should end.
bool handle_line(ShellSession& session, std::string_view line) {
  auto words = tokenize(line);
  if (!words.is_ok()) {
    write_out(fmt::format("error: {}: close the quote or escape the character\n",
                          words.status().message()));
    return true;
  }
  return session.execute(*words) == ShellSession::Next::kContinue;
}

int run_piped(ShellSession& session) {
  std::string line;
  while (std::getline(std::cin, line)) {
    if (!handle_line(session, line)) break;
  }
  return 0;
}

}  // namespace

int run_shell(client::Client& client) {
  ShellSession session(client, write_out);
  if (!stdin_is_tty()) return run_piped(session);

  EditLine* el = el_init("raftkvctl", stdin, stdout, stderr);
  History* hist = history_init();
  HistEvent ev;
  history(hist, &ev, H_SETSIZE, kHistoryLines);
  history(hist, &ev, H_SETUNIQUE, 1);
  const std::string hist_file = history_path();
  if (!hist_file.empty()) history(hist, &ev, H_LOAD, hist_file.c_str());  // absent on first run

  el_set(el, EL_EDITOR, "emacs");
  el_set(el, EL_PROMPT, prompt_callback);
  el_set(el, EL_HIST, history, hist);
  // The wide-character call keeps libedit from copying (and never freeing) the two names.
  el_wset(el, EL_ADDFN, L"raftkv-complete", L"complete a command name", complete_command);
  el_set(el, EL_BIND, "^I", "raftkv-complete", nullptr);

  write_out(fmt::format("raftkvctl shell connected to {}: type HELP for commands, QUIT to leave\n",
                        client.current_endpoint()));
  while (true) {
    g_prompt = fmt::format("raftkv {}> ", client.current_endpoint());
    clear_interrupt();
    int count = 0;
    errno = 0;
    const char* raw = el_gets(el, &count);
    if (raw == nullptr || count <= 0) {
      if (interrupted() || errno == EINTR) {  // Ctrl-C at the prompt: start a fresh line
        write_out("\n");
        el_reset(el);
        continue;
      }
      write_out("\n");  // Ctrl-D
      break;
    }
    std::string line(raw, static_cast<size_t>(count));
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) {
      history(hist, &ev, H_ENTER, line.c_str());
      if (!hist_file.empty()) history(hist, &ev, H_SAVE, hist_file.c_str());
    }
    if (!handle_line(session, line)) break;
  }
  history_end(hist);
  el_end(el);
  return 0;
}

}  // namespace raftkv::cli
