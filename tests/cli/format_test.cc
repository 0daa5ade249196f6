// Output building blocks: value escaping, base64, sizes, durations, tables, JSON.
#include "cli/format.h"

#include <gtest/gtest.h>

#include "cli/tokenizer.h"

namespace raftkv::cli {
namespace {

TEST(EscapeValue, PrintableTextIsShownAsItIs) {
  EXPECT_EQ(escape_value("hello world"), "hello world");
  EXPECT_EQ(escape_value("été ✓"), "été ✓");
  EXPECT_TRUE(is_printable("été"));
}

TEST(EscapeValue, OtherBytesAreHexEscapedInQuotes) {
  EXPECT_EQ(escape_value(std::string("a\0b", 3)), R"("a\x00b")");
  EXPECT_EQ(escape_value("line1\nline2\t"), R"("line1\nline2\t")");
  EXPECT_EQ(escape_value("\xff\xfe"), R"("\xff\xfe")");
  EXPECT_EQ(escape_value("\x7f"), R"("\x7f")");
  EXPECT_EQ(escape_value(""), R"("")");
  EXPECT_FALSE(is_printable("\xc3"));      // truncated UTF-8 sequence
  EXPECT_FALSE(is_printable("\xc0\xaf"));  // overlong encoding
}

TEST(EscapeValue, ValuesThatWouldReadAsQuotesAreQuoted) {
  EXPECT_EQ(escape_value(R"("quoted")"), R"("\"quoted\"")");
  EXPECT_EQ(escape_value("'x'"), R"("'x'")");
}

TEST(EscapeValue, TheTokenizerReadsEveryQuotedValueBack) {
  const std::string samples[] = {std::string("\0\x01\x02", 3),
                                 "\"q\"uote",
                                 "back\\slash\n",
                                 "\xff",
                                 "tab\there",
                                 "été\n",
                                 "",
                                 "'",
                                 "a b\x7f"};
  for (const auto& v : samples) {
    ASSERT_EQ(escape_value(v).front(), '"') << v;
    auto words = tokenize(escape_value(v));
    ASSERT_TRUE(words.is_ok()) << escape_value(v);
    ASSERT_EQ(words->size(), 1u) << escape_value(v);
    EXPECT_EQ((*words)[0], v) << escape_value(v);
  }
}

TEST(Base64, MatchesRfc4648TestVectors) {
  EXPECT_EQ(base64_encode(""), "");
  EXPECT_EQ(base64_encode("f"), "Zg==");
  EXPECT_EQ(base64_encode("fo"), "Zm8=");
  EXPECT_EQ(base64_encode("foo"), "Zm9v");
  EXPECT_EQ(base64_encode("foob"), "Zm9vYg==");
  EXPECT_EQ(base64_encode("fooba"), "Zm9vYmE=");
  EXPECT_EQ(base64_encode("foobar"), "Zm9vYmFy");
  EXPECT_EQ(base64_encode("\xff\xfe"), "//4=");
}

TEST(HexId, SixteenDigitsAndParsesBack) {
  EXPECT_EQ(hex_id(0x694d7c3e0f2a1b05), "694d7c3e0f2a1b05");
  EXPECT_EQ(hex_id(0x123), "0000000000000123");
  EXPECT_EQ(*parse_hex_id("694d7c3e0f2a1b05"), 0x694d7c3e0f2a1b05u);
  EXPECT_EQ(*parse_hex_id("0x1f"), 0x1fu);
  EXPECT_FALSE(parse_hex_id("xyz").is_ok());
  EXPECT_FALSE(parse_hex_id("").is_ok());
  EXPECT_FALSE(parse_hex_id("12345678901234567").is_ok());
}

TEST(HumanizeBytes, LikeEtcdctlDbSize) {
  EXPECT_EQ(humanize_bytes(9), "9 B");
  EXPECT_EQ(humanize_bytes(24576), "25 kB");
  EXPECT_EQ(humanize_bytes(20480), "20 kB");
  EXPECT_EQ(humanize_bytes(2'500'000), "2.5 MB");
  EXPECT_EQ(humanize_bytes(1'000'000'000), "1.0 GB");
}

TEST(Durations, ParseUnitsAndRejectNonsense) {
  EXPECT_EQ(*parse_duration_ms("500ms"), 500);
  EXPECT_EQ(*parse_duration_ms("5s"), 5000);
  EXPECT_EQ(*parse_duration_ms("1.5s"), 1500);
  EXPECT_EQ(*parse_duration_ms("2m"), 120'000);
  EXPECT_EQ(*parse_duration_ms("3"), 3000);
  EXPECT_FALSE(parse_duration_ms("soon").is_ok());
  EXPECT_FALSE(parse_duration_ms("5 s").is_ok());
  EXPECT_FALSE(parse_duration_ms("0s").is_ok());
  EXPECT_FALSE(parse_duration_ms("48h").is_ok());
  EXPECT_EQ(format_duration_us(1646), "1.646ms");
  EXPECT_EQ(format_duration_us(2'100'000), "2.100s");
}

TEST(TableRender, CentresHeadersAndRightAlignsCells) {
  Table t({"ID", "STATUS"});
  t.add_row({"86d9", "started"});
  t.add_row({"1", "x"});
  EXPECT_EQ(t.render(),
            "+------+---------+\n"
            "|  ID  | STATUS  |\n"
            "+------+---------+\n"
            "| 86d9 | started |\n"
            "|    1 |       x |\n"
            "+------+---------+\n");
}

TEST(JsonWriterTest, OmitsZeroFieldsLikeGoOmitempty) {
  JsonWriter w;
  w.begin_object();
  w.begin_object("header");
  w.field_uint("cluster_id", 7);
  w.field_int("revision", 0);
  w.end_object();
  w.field_bool("more", false);
  w.field_bool_always("Created", false);
  w.field_bytes("key", "foo");
  w.field_string("name", "");
  w.begin_array("peerURLs");
  w.element_string("http://a:1");
  w.element_string("b\"\n");
  w.end_array();
  w.end_object();
  EXPECT_EQ(
      w.str(),
      R"({"header":{"cluster_id":7},"Created":false,"key":"Zm9v","peerURLs":["http://a:1","b\"\n"]})");
}

}  // namespace
}  // namespace raftkv::cli
