// The shell's tokenizer: words, quoting and escapes (docs/cli.md "Quoting").
#include "cli/tokenizer.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace raftkv::cli {
namespace {

using ::testing::ElementsAre;

std::vector<std::string> words(std::string_view line) {
  auto r = tokenize(line);
  EXPECT_TRUE(r.is_ok()) << r.status().to_string();
  return r.is_ok() ? *r : std::vector<std::string>{};
}

TEST(Tokenizer, SplitsOnRunsOfSpacesAndTabs) {
  EXPECT_THAT(words("  SET\tkey   value "), ElementsAre("SET", "key", "value"));
  EXPECT_THAT(words(""), ElementsAre());
  EXPECT_THAT(words("   "), ElementsAre());
}

TEST(Tokenizer, DoubleQuotesGroupWordsAndUnderstandEscapes) {
  EXPECT_THAT(words(R"(SET greeting "hello world")"),
              ElementsAre("SET", "greeting", "hello world"));
  EXPECT_THAT(words(R"("a\"b" "c\\d" "e\nf\tg\rh")"), ElementsAre("a\"b", "c\\d", "e\nf\tg\rh"));
  EXPECT_THAT(words(R"("\x41\x7a\xff")"), ElementsAre(std::string("Az\xff")));
  EXPECT_THAT(words(R"("\0")"), ElementsAre(std::string(1, '\0')));
}

TEST(Tokenizer, SingleQuotesAreLiteral) {
  EXPECT_THAT(words(R"('a \n "b"')"), ElementsAre(R"(a \n "b")"));
}

TEST(Tokenizer, EmptyQuotesMakeAnEmptyWord) {
  EXPECT_THAT(words(R"(SET k "")"), ElementsAre("SET", "k", ""));
  EXPECT_THAT(words("''"), ElementsAre(""));
}

TEST(Tokenizer, AdjacentPartsJoinIntoOneWord) {
  EXPECT_THAT(words(R"(a"b c"d'e f')"), ElementsAre("ab cde f"));
}

TEST(Tokenizer, BackslashOutsideQuotesEscapesTheNextCharacter) {
  EXPECT_THAT(words(R"(hello\ world a\"b)"), ElementsAre("hello world", "a\"b"));
}

TEST(Tokenizer, ReportsUnterminatedQuotesAndBadEscapesWithTheColumn) {
  auto r = tokenize(R"(SET k "open)");
  ASSERT_FALSE(r.is_ok());
  EXPECT_EQ(r.status().code(), Code::kInvalidArgument);
  EXPECT_EQ(r.status().message(), "unterminated double quote at column 7");
  EXPECT_EQ(tokenize("'x").status().message(), "unterminated single quote at column 1");
  EXPECT_EQ(tokenize(R"("\x4")").status().message(), "\\x needs two hex digits at column 2");
  EXPECT_EQ(tokenize(R"(a\)").status().message(), "trailing backslash at column 2");
  EXPECT_FALSE(tokenize(R"("abc\)").is_ok());
}

}  // namespace
}  // namespace raftkv::cli
