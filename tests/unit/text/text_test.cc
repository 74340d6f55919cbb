#include <glib.h>
#include <gtest/gtest.h>

#include <fstream>
#include <memory>
#include <sstream>
#include <vector>

#include "sanitizers/core/findings.h"
#include "sanitizers/text/text_converter.h"
#include "tests/unit/test_support.h"

namespace mugai {
namespace {

using namespace std::string_literals;

// Has characters only CP932 and EUC-JP-MS have (NEC ①②③, IBM 髙).
constexpr std::string_view kJapanese = "日本語のテキスト、①②③ 髙橋";
// Within plain JIS X 0208, for the encoders that stop there.
constexpr std::string_view kJis = "日本語のテキスト、カタカナ。";

// The bytes of `utf8` in `charset`, by iconv (through GLib).
std::string Encode(std::string_view utf8, const char* charset) {
  gsize written = 0;
  GError* error = nullptr;
  std::unique_ptr<gchar, decltype(&g_free)> bytes(
      g_convert(utf8.data(), utf8.size(), charset, "UTF-8", nullptr, &written, &error), g_free);
  if (!bytes) {
    ADD_FAILURE() << "encoding as " << charset << ": " << error->message;
    g_error_free(error);
    return {};
  }
  return std::string(bytes.get(), written);
}

using test::ReadCorpusFile;
using test::Recorder;

// The body of a message on disk: everything after the first empty line.
std::string CorpusMailBody(const std::string& name) {
  std::string mail = ReadCorpusFile("mail/japanese/" + name);
  for (std::string_view end : {"\r\n\r\n", "\n\n"}) {
    if (size_t at = mail.find(end); at != std::string::npos) return mail.substr(at + end.size());
  }
  ADD_FAILURE() << name << " has no body";
  return {};
}

void ExpectDecodes(std::string_view bytes, std::string_view utf8, std::string_view charset) {
  DecodedText decoded = DecodeToUtf8(bytes);
  EXPECT_EQ(decoded.utf8, utf8);
  EXPECT_EQ(decoded.charset, charset);
  EXPECT_EQ(decoded.invalid_sequences, 0u);
}

TEST(DecodeToUtf8, ShiftJisIsDecodedAsCp932) {
  ExpectDecodes(Encode(kJapanese, "CP932"), kJapanese, "CP932");
  // Short and all double-byte, so its byte pairs also look like UTF-16BE CJK.
  ExpectDecodes(Encode("こんにちは", "CP932"), "こんにちは", "CP932");
  // CP932, not JIS, for the characters the two map differently.
  ExpectDecodes(Encode("日本語で～－￢∥", "CP932"), "日本語で～－￢∥", "CP932");
}

TEST(DecodeToUtf8, ShiftJisThatUchardetTakesForWindows1252) {
  // samples/files/会議メモ-sjis.txt: uchardet 0.0.7 says WINDOWS-1252. (With
  // ～ U+FF5E, which is what CP932's 0x8160 means; 〜 U+301C would not
  // round-trip.)
  const std::string memo =
      "第3回 情報セキュリティ委員会 議事メモ\n\n日時: 令和8年12月1日（火）①10:00～②11:30\n"
      "出席: 髙橋、斎藤、渡邊\n\n・無害化通信の運用状況を確認した。\n・添付ファイルの原本は30日間保管する。\n";
  ExpectDecodes(Encode(memo, "CP932"), memo, "CP932");
  ExpectDecodes(Encode(memo, "EUC-JP-MS"), memo, "EUC-JP-MS");
  // Western text stays Western.
  EXPECT_EQ(DecodeToUtf8("Caf\xE9 cr\xE8" "me br\xFB" "l\xE9" "e, na\xEF" "ve r\xE9" "sum\xE9\n").utf8,
            "Café crème brûlée, naïve résumé\n");
}

TEST(DecodeToUtf8, EucJp) {
  ExpectDecodes(Encode(kJapanese, "EUC-JP-MS"), kJapanese, "EUC-JP-MS");
  ExpectDecodes(Encode(kJis, "EUC-JP"), kJis, "EUC-JP-MS");
}

TEST(DecodeToUtf8, Iso2022Jp) {
  ExpectDecodes(Encode(kJis, "ISO-2022-JP"), kJis, "ISO-2022-JP");
  // As Outlook writes it (CP50221): NEC row 13 in JIS X 0208 mode, then
  // half-width katakana after ESC ( I, then ASCII.
  ExpectDecodes("\x1b$BF|K\\8l!'-!-\"-#-j\x1b(I123\x1b(B ok\r\n", "日本語：①②③㈱ｱｲｳ ok\r\n", "ISO-2022-JP");
}

TEST(DecodeToUtf8, Utf16WithAndWithoutBom) {
  ExpectDecodes("\xFF\xFE" + Encode(kJapanese, "UTF-16LE"), kJapanese, "UTF-16LE");
  ExpectDecodes("\xFE\xFF" + Encode(kJapanese, "UTF-16BE"), kJapanese, "UTF-16BE");
  ExpectDecodes(Encode(kJapanese, "UTF-16BE"), kJapanese, "UTF-16BE");
  ExpectDecodes(Encode(kJapanese, "UTF-16LE"), kJapanese, "UTF-16LE");
  ExpectDecodes(Encode("Hello, world\r\n", "UTF-16LE"), "Hello, world\r\n", "UTF-16LE");
  ExpectDecodes(Encode("Hello, world\r\n", "UTF-16BE"), "Hello, world\r\n", "UTF-16BE");
  ExpectDecodes("\xFF\xFE\0\0"s + Encode("𠮷野家", "UTF-32LE"), "𠮷野家", "UTF-32LE");
}

TEST(DecodeToUtf8, Utf8AndAscii) {
  ExpectDecodes("\xEF\xBB\xBF" + std::string(kJapanese), kJapanese, "UTF-8");
  ExpectDecodes(kJapanese, kJapanese, "UTF-8");
  ExpectDecodes("plain ASCII, 0x0A0B\n", "plain ASCII, 0x0A0B\n", "UTF-8");
  // Looks like kana in UTF-16BE ("0A" is U+3041), but pure ASCII is ASCII.
  ExpectDecodes("0A0B0C0D", "0A0B0C0D", "UTF-8");
  ExpectDecodes("", "", "UTF-8");
  // Mostly ASCII with one multi-byte character: uchardet alone calls this
  // windows-1252 and would turn it into mojibake.
  ExpectDecodes("invoice\u202Etxt.exe\nok\n", "invoice\u202Etxt.exe\nok\n", "UTF-8");
  ExpectDecodes("caf\u00E9 au lait\n", "caf\u00E9 au lait\n", "UTF-8");
}

TEST(DecodeToUtf8, InvalidBytesBecomeReplacementCharacters) {
  DecodedText truncated = DecodeToUtf8(Encode(kJapanese, "CP932") + "\x93", "Shift_JIS");
  EXPECT_EQ(truncated.utf8, std::string(kJapanese) + "\uFFFD");
  EXPECT_EQ(truncated.invalid_sequences, 1u);

  // Overlong NUL, a surrogate, above U+10FFFF: one U+FFFD per byte.
  DecodedText bad = DecodeToUtf8(
      "a\xC0\x80"
      "b\xED\xA0\x80"
      "c\xF4\x90\x80\x80"
      "d",
      "UTF-8");
  EXPECT_EQ(bad.utf8, "a\uFFFD\uFFFDb\uFFFD\uFFFD\uFFFDc\uFFFD\uFFFD\uFFFD\uFFFDd");
  EXPECT_EQ(bad.invalid_sequences, 9u);

  DecodedText odd = DecodeToUtf8("\xFF\xFE" + Encode("ab", "UTF-16LE") + "c");
  EXPECT_EQ(odd.utf8, "ab\uFFFD");
  EXPECT_EQ(odd.invalid_sequences, 1u);

  // An unknown set (JIS X 0213) and what is written in it, then an 8-bit byte.
  DecodedText jis = DecodeToUtf8("\x1b$BF|\x1b$(Q!!\x1b(Bx\x80", "ISO-2022-JP");
  EXPECT_EQ(jis.utf8, "日\uFFFD\uFFFD\uFFFDx\uFFFD");
  EXPECT_EQ(jis.invalid_sequences, 4u);
}

TEST(DecodeToUtf8, DeclaredCharset) {
  std::string sjis = Encode(kJapanese, "CP932");
  EXPECT_EQ(DecodeToUtf8(sjis, "shift_jis").charset, "CP932");
  EXPECT_EQ(DecodeToUtf8(sjis, "Windows-31J").utf8, kJapanese);
  EXPECT_EQ(DecodeToUtf8("\x93quoted\x94", "iso-8859-1").utf8, "\u201Cquoted\u201D");
  EXPECT_EQ(DecodeToUtf8("\xBD\xBA\xC6\xBC\xC7\xD8", "ks_c_5601-1987").utf8, "스티해");  // Outlook's Korean
  // A byte-order mark wins; unknown and suspicious labels are ignored.
  EXPECT_EQ(DecodeToUtf8("\xEF\xBB\xBF" + std::string(kJapanese), "Shift_JIS").charset, "UTF-8");
  EXPECT_EQ(DecodeToUtf8(sjis, "x-no-such-charset").charset, "CP932");
  DecodedText ignored = DecodeToUtf8(sjis, "UTF-8//IGNORE");
  EXPECT_EQ(ignored.charset, "CP932");
  EXPECT_EQ(ignored.utf8, kJapanese);
}

TEST(DecodeToUtf8, SaysWhenTheDeclaredLabelWasNotUsed) {
  std::string sjis = Encode(kJapanese, "CP932");
  EXPECT_FALSE(DecodeToUtf8(sjis, "shift_jis").declared_ignored);
  EXPECT_FALSE(DecodeToUtf8("plain", "us-ascii").declared_ignored);
  EXPECT_FALSE(DecodeToUtf8(sjis).declared_ignored);
  EXPECT_TRUE(DecodeToUtf8(sjis, "x-no-such-charset").declared_ignored);
  EXPECT_TRUE(DecodeToUtf8("\xEF\xBB\xBF" + std::string(kJapanese), "Shift_JIS").declared_ignored);
  EXPECT_FALSE(DecodeToUtf8("\xFF\xFE" + Encode("ab", "UTF-16LE"), "UTF-16").declared_ignored);
  // DecodeToUtf8 itself keeps a known label even when it leaves U+FFFD.
  DecodedText kept = DecodeToUtf8(Encode("日本語のテキスト", "UTF-8"), "ISO-2022-JP");
  EXPECT_EQ(kept.charset, "ISO-2022-JP");
  EXPECT_FALSE(kept.declared_ignored);
}

TEST(DecodeToUtf8CheckingLabel, DetectionWinsOverALabelThatLeavesBytesUndecoded) {
  DecodedText utf8 = DecodeToUtf8CheckingLabel("日本語のテキスト、①です。\r\n", "ISO-2022-JP");
  EXPECT_EQ(utf8.utf8, "日本語のテキスト、①です。\r\n");
  EXPECT_EQ(utf8.charset, "UTF-8");
  EXPECT_TRUE(utf8.declared_ignored);
  DecodedText euc = DecodeToUtf8CheckingLabel(Encode(kJapanese, "EUC-JP-MS"), "Shift_JIS");
  EXPECT_EQ(euc.utf8, kJapanese);
  EXPECT_TRUE(euc.declared_ignored);
  // No better reading: the label stays, and so do its U+FFFD.
  DecodedText truncated = DecodeToUtf8CheckingLabel(Encode(kJapanese, "CP932") + "\x93", "Shift_JIS");
  EXPECT_EQ(truncated.utf8, std::string(kJapanese) + "\uFFFD");
  EXPECT_FALSE(truncated.declared_ignored);
}

TEST(DecodeToUtf8CheckingLabel, JapaneseBytesUnderAWesternLabel) {
  const std::string memo = "会議は１２月１日（火）です。よろしくお願いします。\n";
  for (const char* label : {"iso-8859-1", "windows-1252", "ISO-8859-15"}) {
    DecodedText sjis = DecodeToUtf8CheckingLabel(Encode(memo, "CP932"), label);
    EXPECT_EQ(sjis.utf8, memo) << label;
    EXPECT_EQ(sjis.charset, "CP932") << label;
    EXPECT_TRUE(sjis.declared_ignored) << label;
    DecodedText euc = DecodeToUtf8CheckingLabel(Encode(memo, "EUC-JP-MS"), label);
    EXPECT_EQ(euc.utf8, memo) << label;
    EXPECT_TRUE(euc.declared_ignored) << label;
  }
  DecodedText utf8 = DecodeToUtf8CheckingLabel("r\xC3\xA9sum\xC3\xA9 \xE2\x91\xA0\n", "iso-8859-1");
  EXPECT_EQ(utf8.utf8, "résumé ①\n");
  EXPECT_TRUE(utf8.declared_ignored);
  // Western text under its own label is left alone, and right labels are.
  DecodedText latin = DecodeToUtf8CheckingLabel("Caf\xE9 cr\xE8me br\xFBl\xE9" "e, na\xEFve r\xE9sum\xE9\n", "iso-8859-1");
  EXPECT_EQ(latin.utf8, "Café crème brûlée, naïve résumé\n");
  EXPECT_FALSE(latin.declared_ignored);
  EXPECT_FALSE(DecodeToUtf8CheckingLabel(Encode(memo, "CP932"), "Shift_JIS").declared_ignored);
  EXPECT_FALSE(DecodeToUtf8CheckingLabel(memo, "utf-8").declared_ignored);
}

TEST(DecodeToUtf8, CorpusMailBodies) {
  ExpectDecodes(CorpusMailBody("mikel_japanese_shift_jis.eml"),
                "あいうえお\r\n\r\nこのメールはテスト用のメールです。\r\n\r\n"
                "今後ともよろしくお願い申し上げます！\r\n",
                "CP932");
  DecodedText iso = DecodeToUtf8(CorpusMailBody("mimekit_japanese.eml"));
  EXPECT_EQ(iso.charset, "ISO-2022-JP");
  EXPECT_EQ(iso.utf8,
            "Let's see if both subject and body works fine...\n\n"
            "日本語が\n正常に\n送れているか\nテスト.\n");
  ExpectDecodes(CorpusMailBody("mikel_japanese_iso_2022.eml"), "すみません。\r\n\r\n", "ISO-2022-JP");
}

TEST(TextConverter, EmitsOneTextRecord) {
  std::string sjis = Encode(kJapanese, "CP932");
  Recorder sink;
  TextConverter().Convert({"memo.txt", sjis, 1 << 20}, sink);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].text().utf8(), kJapanese);
}

TEST(TextConverter, ReportsUndecodableBytes) {
  std::string bytes = "\xFF\xFE" + Encode("ab", "UTF-16LE") + "c";
  Recorder sink;
  TextConverter().Convert({"odd.txt", bytes, 1 << 20}, sink);
  ASSERT_EQ(sink.records.size(), 2u);
  EXPECT_EQ(sink.records[0].text().utf8(), "ab\uFFFD");
  EXPECT_EQ(sink.records[1].finding().code(), finding::kTextInvalidBytes);
  EXPECT_NE(sink.records[1].finding().reason().find("UTF-16LE"), std::string::npos);
}

TEST(TextConverter, RefusesOutputPastTheLimit) {
  std::string sjis = Encode(kJapanese, "CP932");
  Recorder sink;
  TextConverter().Convert({"memo.txt", sjis, kJapanese.size() - 1}, sink);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].finding().code(), finding::kLimitOutput);
  sink.records.clear();
  TextConverter().Convert({"memo.txt", sjis, kJapanese.size()}, sink);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_TRUE(sink.records[0].has_text());
}

}  // namespace
}  // namespace mugai
