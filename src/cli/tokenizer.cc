#include "cli/tokenizer.h"

#include <fmt/format.h>

namespace raftkv::cli {
namespace {

int hex_digit(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

Status error_at(size_t column, std::string_view what) {
  return Status::invalid_argument(fmt::format("{} at column {}", what, column + 1));
}

}  // namespace

Result<std::vector<std::string>> tokenize(std::string_view line) {
  std::vector<std::string> words;
  std::string word;
  bool in_word = false;  // true once any part of the current word was seen (so "" counts)
  size_t i = 0;
  while (i < line.size()) {
    char c = line[i];
    if (c == ' ' || c == '\t' || c == '\r' || c == '\n') {
      if (in_word) words.push_back(std::move(word));
      word.clear();
      in_word = false;
      ++i;
    } else if (c == '\'') {
      size_t close = line.find('\'', i + 1);
      if (close == std::string_view::npos) return error_at(i, "unterminated single quote");
      word.append(line.substr(i + 1, close - i - 1));
      in_word = true;
      i = close + 1;
    } else if (c == '"') {
      size_t start = i;
      ++i;
      bool closed = false;
      while (i < line.size()) {
        char d = line[i];
        if (d == '"') {
          closed = true;
          ++i;
          break;
        }
        if (d != '\\') {
          word.push_back(d);
          ++i;
          continue;
        }
        if (i + 1 >= line.size()) break;  // reported as unterminated below
        char e = line[i + 1];
        switch (e) {
          case 'n':
            word.push_back('\n');
            i += 2;
            break;
          case 'r':
            word.push_back('\r');
            i += 2;
            break;
          case 't':
            word.push_back('\t');
            i += 2;
            break;
          case '0':
            word.push_back('\0');
            i += 2;
            break;
          case 'x': {
            int hi = i + 2 < line.size() ? hex_digit(line[i + 2]) : -1;
            int lo = i + 3 < line.size() ? hex_digit(line[i + 3]) : -1;
            if (hi < 0 || lo < 0) return error_at(i, "\\x needs two hex digits");
            word.push_back(static_cast<char>(hi * 16 + lo));
            i += 4;
            break;
          }
          default:  // \" \\ and any other character stand for themselves
            word.push_back(e);
            i += 2;
            break;
        }
      }
      if (!closed) return error_at(start, "unterminated double quote");
      in_word = true;
    } else if (c == '\\') {
      if (i + 1 >= line.size()) return error_at(i, "trailing backslash");
      word.push_back(line[i + 1]);
      in_word = true;
      i += 2;
    } else {
      word.push_back(c);
      in_word = true;
      ++i;
    }
  }
  if (in_word) words.push_back(std::move(word));
  return words;
}

}  // namespace raftkv::cli
