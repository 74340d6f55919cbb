#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <vector>

#include "sanitizers/html/html_converter.h"
#include "sanitizers/core/findings.h"
#include "tests/unit/test_support.h"

namespace mugai {
namespace {

using namespace std::string_literals;

constexpr std::string_view kJapanese = "日本語のテキスト、①②③ 髙橋";
// kJapanese in Shift_JIS (CP932).
constexpr std::string_view kJapaneseSjis =
    "\x93\xfa\x96\x7b\x8c\xea\x82\xcc\x83\x65\x83\x4c\x83\x58\x83\x67\x81\x41\x87\x40\x87\x41\x87\x42"
    "\x20\xfb\xfc\x8b\xb4";

using test::ReadCorpusFile;
using test::Recorder;

TEST(HtmlToText, DropsScriptsStylesAndComments) {
  EXPECT_EQ(HtmlToText("<html><head><title>Notice</title><style>p{color:red}</style>"
                       "<script>alert(1)</script><meta charset=\"utf-8\"></head>"
                       "<body><!-- hidden comment --><p>Hello<script>document.write('x')</script>"
                       " world</p><?php echo 1 ?><noscript>enable js</noscript>"
                       "<template><p>tpl</p></template><iframe src=\"x\">frame</iframe>"
                       "<svg><text>drawn</text></svg></body></html>"),
            "Notice\n\nHello world");
}

TEST(RenderUtf8Html, FindsLinksThatShowOneHostAndLeadToAnother) {
  RenderedHtml html = RenderUtf8Html(
      "<p><a href=\"http://evil.example/login\">https://bank.example</a> "
      "<a href=\"https://bank.example@evil.example/\">www.bank.example</a> "
      "<a href=\"https://evil.example/\">BANK.example/login</a> "
      "<a href=\"https://bank.example.evil.example/\">bank.example</a></p>");
  ASSERT_EQ(html.deceptive_links.size(), 4u);
  EXPECT_EQ(html.deceptive_links[0].shown, "https://bank.example");
  EXPECT_EQ(html.deceptive_links[0].target, "http://evil.example/login");
  EXPECT_EQ(html.deceptive_links[1].target, "https://bank.example@evil.example/");
  EXPECT_EQ(html.deceptive_links[2].shown, "BANK.example/login");
  EXPECT_EQ(html.deceptive_links[3].shown, "bank.example");
  EXPECT_EQ(html.text,
            "https://bank.example <http://evil.example/login> www.bank.example <https://bank.example@evil.example/> "
            "BANK.example/login <https://evil.example/> bank.example <https://bank.example.evil.example/>");
}

TEST(RenderUtf8Html, HonestLinksAreNotDeceptive) {
  RenderedHtml html = RenderUtf8Html(
      "<a href=\"https://www.bank.example/\">bank.example</a>"
      "<a href=\"https://login.bank.example:8443/x\">https://Bank.Example.</a>"
      "<a href=\"https://files.example/report.pdf\">report.pdf</a>"
      "<a href=\"https://evil.example/\">click here</a>"
      "<a href=\"mailto:info@bank.example\">info@bank.example</a>"
      "<a href=\"/relative\">www.bank.example</a>"
      "<a href=\"https://bank.example/\">www.bank.example</a>");
  EXPECT_TRUE(html.deceptive_links.empty()) << html.deceptive_links[0].shown;
}

TEST(RenderUtf8Html, TakesUtf8AsItIs) {
  // A <meta> naming another charset changes nothing: the bytes are UTF-8.
  EXPECT_EQ(RenderUtf8Html("<meta charset=\"shift_jis\"><p>" + std::string(kJapanese) + "</p>").text, kJapanese);
  EXPECT_EQ(HtmlMetaCharset("<meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">"),
            "shift_jis");
  EXPECT_EQ(HtmlMetaCharset("<p>no meta</p>"), "");
}

TEST(HtmlToText, LinksShowTheirUrl) {
  EXPECT_EQ(HtmlToText("<p>See <a href=\"https://example.com/a?b=1&amp;c=2\">the docs</a>, "
                       "<a href=\" https://example.com/ \">https://example.com/</a> and "
                       "<a href=\"mailto:info@example.jp\">mail <b>us</b> </a>now.</p>"),
            "See the docs <https://example.com/a?b=1&c=2>, https://example.com/ and "
            "mail us <mailto:info@example.jp> now.");
}

TEST(HtmlToText, ScriptAndRelativeUrlsAreNotShown) {
  EXPECT_EQ(HtmlToText("<p><a href=\"javascript:alert(1)\">one</a> "
                       "<a href=\" JaVa&#10;ScRiPt:alert(1)\">two</a> "
                       "<a href=\"data:text/html,<script>x</script>\">three</a> "
                       "<a href=\"/relative\">four</a> <a href=\"#top\">five</a> "
                       "<a href=\"vbscript:x\">six</a> <a>seven</a></p>"),
            "one two three four five six seven");
}

TEST(HtmlToText, ImagesShowTheirAltText) {
  EXPECT_EQ(HtmlToText("<p>Logo: <img src=\"logo.png\" alt=\"  City  Hall \"> <img src=\"spacer.gif\">"
                       " <a href=\"https://city.example.jp/\"><img src=\"b.png\" alt=\"Home\"></a></p>"),
            "Logo: [image: City Hall] [image] [image: Home] <https://city.example.jp/>");
}

TEST(HtmlToText, DecodesEntities) {
  EXPECT_EQ(HtmlToText("<p>&amp; &lt;b&gt; &#x65E5;&#26412; a&nbsp;b &copy; &quot;q&quot;</p>"),
            "& <b> 日本 a\u00A0b © \"q\"");
}

TEST(HtmlToText, BlocksBecomeLines) {
  EXPECT_EQ(HtmlToText("<div>a</div><div>b</div><p>c</p><p>d</p>x<br>y<br><br>z<h1>Title</h1><hr>after"),
            "a\nb\n\nc\n\nd\n\nx\ny\n\nz\n\nTitle\n\nafter");
  EXPECT_EQ(HtmlToText("<p>a</p><br><br><br><br><div></div><p></p><p>b</p>"), "a\n\nb");
  EXPECT_EQ(HtmlToText("<div>line<br></div><div>next</div>"), "line\nnext");
}

TEST(HtmlToText, CollapsesWhitespaceOutsidePre) {
  EXPECT_EQ(HtmlToText("<p>  spaced \n\t out  </p>\n\n<p><b>bold</b> <i>italic</i><b>joined</b></p>"),
            "spaced out\n\nbold italicjoined");
  EXPECT_EQ(HtmlToText("<p>code:</p><pre>\n  int x;\n\n  return  x;\n</pre><p>done</p>"),
            "code:\n\n  int x;\n\n  return  x;\n\ndone");
}

TEST(HtmlToText, ListsAndTables) {
  EXPECT_EQ(HtmlToText("<ul><li>one</li><li>two<ul><li>inner</li></ul></li></ul><ol><li>first</li></ol>"),
            "- one\n- two\n  - inner\n\n- first");
  EXPECT_EQ(
      HtmlToText("<ul><li><p>para</p></li><li><div><a href=\"https://a.example/\"></a></div></li></ul>"),
      "- para\n\n- <https://a.example/>");
  EXPECT_EQ(HtmlToText("<table>\n<tr>\n  <th>Name</th>\n  <th>Age</th>\n</tr>\n"
                       "<tr><td>Alice</td><td>30</td></tr></table><p>end</p>"),
            "Name | Age\nAlice | 30\n\nend");
}

TEST(HtmlToText, ShiftJisDeclaredInMeta) {
  std::string sjis(kJapaneseSjis);
  EXPECT_EQ(
      HtmlToText("<html><head><meta http-equiv=\"Content-Type\" content=\"text/html; charset=Shift_JIS\">"
                 "<title>" +
                 sjis + "</title></head><body><p>" + sjis + "</p></body></html>"),
      std::string(kJapanese) + "\n\n" + std::string(kJapanese));
  EXPECT_EQ(HtmlToText("<meta charset='x-sjis'><p>" + sjis + "</p>"), kJapanese);
}

TEST(HtmlToText, ShiftJisWithoutMetaIsDetected) {
  EXPECT_EQ(HtmlToText("<html><body><p>" + std::string(kJapaneseSjis) + "</p></body></html>"), kJapanese);
}

TEST(HtmlToText, ByteOrderMarkAndMisdeclaredUtf16) {
  EXPECT_EQ(HtmlToText("\xFF\xFE<\0p\0>\0\xE5\x65<\0/\0p\0>\0"s), "日");
  // A <meta> that can be read as ASCII cannot be UTF-16.
  EXPECT_EQ(HtmlToText("<meta charset=\"utf-16\"><p>caf\xC3\xA9</p>"), "café");
}

TEST(HtmlToText, MalformedMarkupStillGivesText) {
  EXPECT_EQ(HtmlToText("<p>unclosed <b>bold <i>both<div>block</p></i><table><td>cell<td>next"),
            "unclosed bold both\nblock\n\ncell | next");
  // A stray </p> is an empty paragraph, in browsers too.
  EXPECT_EQ(HtmlToText("text </p></div></body> after <p"), "text\n\nafter");
}

TEST(HtmlToText, EmptyDocuments) {
  EXPECT_EQ(HtmlToText(""), "");
  EXPECT_EQ(HtmlToText("  \n "), "");
  EXPECT_EQ(HtmlToText("<html><head><title> </title></head><body></body></html>"), "");
  EXPECT_EQ(HtmlToText("<!-- only a comment -->"), "");
}

std::string Nested(int depth, std::string_view text) {
  std::string html;
  for (int i = 0; i < depth; ++i) html += "<span>";
  html += text;
  for (int i = 0; i < depth; ++i) html += "</span>";
  return html;
}

TEST(HtmlToText, DeepNesting) {
  EXPECT_EQ(HtmlToText(Nested(200, "deep") + "<p>after</p>"), "deep\n\nafter");
  // libxml2 stops past 256 levels; the text after that must not go missing
  // quietly.
  EXPECT_THROW(HtmlToText(Nested(100000, "deep") + "<p>after</p>"), ConvertError);
}

TEST(HtmlToText, CorpusMessages) {
  // A message whose whole body is HTML, with a tracking URL.
  std::string mail = ReadCorpusFile("mail/structure/mimedefang_uri-html.eml");
  EXPECT_EQ(HtmlToText(mail.substr(mail.find("<html>"))),
            "Foo\n\ntest <http://www.example.com/My_Blog/mypage.aspx?"
            "id=123&utm_source=twitterfeed&utm_medium=twitter#c123456>");
  // An ISO-2022-JP part that says so in its <meta>.
  mail = ReadCorpusFile("mail/japanese/deco_joruri_html.eml");
  size_t begin = mail.find("<!DOCTYPE");
  std::string_view end = "</html>";
  EXPECT_EQ(HtmlToText(mail.substr(begin, mail.find(end, begin) + end.size() - begin)), "test");
}

TEST(HtmlConverter, EmitsOneTextRecord) {
  std::string html = "<p>" + std::string(kJapaneseSjis) + "</p>";
  Recorder sink;
  HtmlConverter().Convert({"page.html", html, 1 << 20}, sink);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].text().utf8(), kJapanese);
}

TEST(HtmlConverter, RefusesOutputPastTheLimit) {
  Recorder sink;
  HtmlConverter().Convert({"page.html", "<p>0123456789</p>", 9}, sink);
  ASSERT_EQ(sink.records.size(), 1u);
  EXPECT_EQ(sink.records[0].finding().code(), finding::kLimitOutput);
}

}  // namespace
}  // namespace mugai
