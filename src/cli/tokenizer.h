// Splits one line typed at the raftkvctl shell into words, with shell-like quoting.
//
// Rules (also in docs/cli.md):
//   - words are separated by runs of spaces or tabs;
//   - "double quotes" group a word and understand escapes: \" \\ \n \r \t \0 and \xNN
//     (two hex digits, any byte, so binary values can be typed);
//   - 'single quotes' group a word literally (no escapes at all);
//   - outside quotes a backslash makes the next character literal (hello\ world);
//   - quoted and unquoted parts next to each other join into one word: a"b c"d -> "ab cd";
//   - "" is an empty word (so `SET k ""` stores an empty value).
// Pure function: no I/O, callable from any thread.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "base/status.h"

namespace raftkv::cli {

/// The words of `line`, or InvalidArgument naming the problem (unterminated quote,
/// bad \x escape, trailing backslash) and its column.
Result<std::vector<std::string>> tokenize(std::string_view line);

}  // namespace raftkv::cli
