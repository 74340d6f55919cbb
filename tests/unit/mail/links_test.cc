#include "sanitizers/mail/links.h"

#include <glib.h>
#include <gtest/gtest.h>

#include <chrono>
#include <random>
#include <string>
#include <vector>

namespace mugai {
namespace {

std::string Defang(std::string_view text) { return ApplyLinkPolicy(text, LinkPolicy::kDefang).text; }
std::string Remove(std::string_view text) { return ApplyLinkPolicy(text, LinkPolicy::kRemove).text; }
size_t Links(std::string_view text) { return ApplyLinkPolicy(text, LinkPolicy::kKeep).links; }

TEST(LinksTest, DefangsEachScheme) {
  EXPECT_EQ(Defang("http://a.example/x"), "hxxp://a[.]example/x");
  EXPECT_EQ(Defang("https://a.example/x"), "hxxps://a[.]example/x");
  EXPECT_EQ(Defang("ftp://files.a.example/pub"), "fxp://files[.]a[.]example/pub");
  EXPECT_EQ(Defang("ftps://files.a.example/pub"), "fxps://files[.]a[.]example/pub");
}

TEST(LinksTest, KeepsTheCaseOfTheScheme) {
  EXPECT_EQ(Defang("HTTP://A.EXAMPLE/"), "HXXP://A[.]EXAMPLE/");
  EXPECT_EQ(Defang("Https://a.example/"), "Hxxps://a[.]example/");
  EXPECT_EQ(Defang("hTtPs://a.example/"), "hXxPs://a[.]example/");
  EXPECT_EQ(Defang("FTP://a.example"), "FXP://a[.]example");
  EXPECT_EQ(Defang("fTpS://a.example"), "fXpS://a[.]example");
}

TEST(LinksTest, DefangsOnlyTheAuthorityDots) {
  EXPECT_EQ(Defang("https://www.a.example/dir/file.pdf?v=1.2#sec.3"),
            "hxxps://www[.]a[.]example/dir/file.pdf?v=1.2#sec.3");
  EXPECT_EQ(Defang("https://a.example?q=x.y"), "hxxps://a[.]example?q=x.y");
  EXPECT_EQ(Defang("https://a.example#x.y"), "hxxps://a[.]example#x.y");
  EXPECT_EQ(Defang("http://192.0.2.1/"), "hxxp://192[.]0[.]2[.]1/");
}

TEST(LinksTest, PortsAndUserinfo) {
  EXPECT_EQ(Defang("http://a.example:8080/x.html"), "hxxp://a[.]example:8080/x.html");
  EXPECT_EQ(Defang("ftp://user:pw@files.a.example:21/f.txt"), "fxp://user:pw@files[.]a[.]example:21/f.txt");
  // A dotted userinfo is defanged too: left as it was it still looks like
  // a host a reader would link.
  EXPECT_EQ(Defang("https://www.bank.example@evil.example/"), "hxxps://www[.]bank[.]example@evil[.]example/");
  EXPECT_EQ(Defang("http://[2001:db8::1]:80/a.b"), "hxxp://[2001:db8::1]:80/a.b");
}

TEST(LinksTest, Www) {
  EXPECT_EQ(Defang("www.a.example"), "www[.]a[.]example");
  EXPECT_EQ(Defang("see www.a.example/x.html now"), "see www[.]a[.]example/x.html now");
  EXPECT_EQ(Defang("WWW.A.EXAMPLE"), "WWW[.]A[.]EXAMPLE");
  EXPECT_EQ(Defang("(www.a.example)"), "(www[.]a[.]example)");
  EXPECT_EQ(Defang("詳細はwww.a.example/jaへ"), "詳細はwww[.]a[.]example/jaへ");
  EXPECT_EQ(Defang("www.a.example:8080/x"), "www[.]a[.]example:8080/x");
}

TEST(LinksTest, WwwOnlyAtTheStartOfAWord) {
  for (std::string text : {"awww.a.example", "mail.www.a.example", "user@www.a.example", "x-www.a.example",
                           "x_www.a.example", "9www.a.example"}) {
    EXPECT_EQ(Defang(text), text);
    EXPECT_EQ(Links(text), 0u) << text;
  }
}

TEST(LinksTest, SchemeAnywhereInAWord) {
  EXPECT_EQ(Defang("xhttp://a.example/"), "xhxxp://a[.]example/");
  EXPECT_EQ(Defang("URL:https://a.example/"), "URL:hxxps://a[.]example/");
}

TEST(LinksTest, TrailingPunctuationIsNotPartOfTheUrl) {
  EXPECT_EQ(Defang("Go to https://a.example/x."), "Go to hxxps://a[.]example/x.");
  EXPECT_EQ(Defang("https://a.example, then"), "hxxps://a[.]example, then");
  EXPECT_EQ(Defang("https://a.example/x?!"), "hxxps://a[.]example/x?!");
  EXPECT_EQ(Defang("https://a.example/x;:"), "hxxps://a[.]example/x;:");
  EXPECT_EQ(Defang("https://a.example..."), "hxxps://a[.]example...");
  LinkedText removed = ApplyLinkPolicy("Go to https://a.example/x.", LinkPolicy::kRemove);
  EXPECT_EQ(removed.text, "Go to [URL削除 / link removed].");
  EXPECT_EQ(removed.links, 1u);
}

TEST(LinksTest, ParenthesesAndBrackets) {
  EXPECT_EQ(Remove("(see https://a.example/x)"), "(see [URL削除 / link removed])");
  EXPECT_EQ(Remove("(see https://a.example/x)."), "(see [URL削除 / link removed]).");
  EXPECT_EQ(Remove("https://ja.wikipedia.org/wiki/Foo_(bar)"), "[URL削除 / link removed]");
  EXPECT_EQ(Remove("(https://ja.wikipedia.org/wiki/Foo_(bar))"), "([URL削除 / link removed])");
  EXPECT_EQ(Remove("[https://a.example/x]"), "[[URL削除 / link removed]]");
  EXPECT_EQ(Remove("https://a.example/x[1]"), "[URL削除 / link removed]");
  EXPECT_EQ(Remove("http://[::1]"), "[URL削除 / link removed]");
  EXPECT_EQ(Defang("(https://a.example/Foo_(bar))"), "(hxxps://a[.]example/Foo_(bar))");
}

TEST(LinksTest, JapaneseRightAfterAUrl) {
  EXPECT_EQ(Defang("https://a.example/x。次"), "hxxps://a[.]example/x。次");
  EXPECT_EQ(Defang("こちら：https://a.example.jp/申込"), "こちら：hxxps://a[.]example[.]jp/申込");
  EXPECT_EQ(Remove("「https://a.example」をご覧ください"), "「[URL削除 / link removed]」をご覧ください");
}

TEST(LinksTest, StopsAtSpacesQuotesAndControls) {
  EXPECT_EQ(Defang("\"https://a.example/x\""), "\"hxxps://a[.]example/x\"");
  EXPECT_EQ(Defang("'https://a.example/x'"), "'hxxps://a[.]example/x'");
  EXPECT_EQ(Defang("https://a.example/x\tnext.b"), "hxxps://a[.]example/x\tnext.b");
  EXPECT_EQ(Defang("https://a.example/x\nnext.b"), "hxxps://a[.]example/x\nnext.b");
  EXPECT_EQ(Defang("a https://a.example b.c"), "a hxxps://a[.]example b.c");
}

TEST(LinksTest, AngleBracketFormOfTheHtmlConverter) {
  LinkedText defanged = ApplyLinkPolicy("申込書 <https://x.example/a>\n次 <http://y.example>", LinkPolicy::kDefang);
  EXPECT_EQ(defanged.text, "申込書 <hxxps://x[.]example/a>\n次 <hxxp://y[.]example>");
  EXPECT_EQ(defanged.links, 2u);
  EXPECT_EQ(Remove("text <https://x.example/a>"), "text <[URL削除 / link removed]>");
}

TEST(LinksTest, NestedUrlsAreDefangedToo) {
  EXPECT_EQ(Defang("https://a.example/login?next=http://evil.example/x"),
            "hxxps://a[.]example/login?next=hxxp://evil[.]example/x");
  EXPECT_EQ(Defang("https://a.example/r?u=www.evil.example"), "hxxps://a[.]example/r?u=www[.]evil[.]example");
  EXPECT_EQ(Defang("http://a.http://b.example/"), "hxxp://a[.]hxxp://b[.]example/");
  EXPECT_EQ(Links("https://a.example/login?next=http://evil.example/x"), 1u);
}

TEST(LinksTest, AlreadyDefangedTextIsLeftAlone) {
  for (std::string text :
       {"hxxp://a[.]b", "hxxps://evil[.]example/x", "fxp://a[.]example", "www[.]a[.]example", "HXXPS://A[.]EXAMPLE"}) {
    LinkedText defanged = ApplyLinkPolicy(text, LinkPolicy::kDefang);
    EXPECT_EQ(defanged.text, text);
    EXPECT_EQ(defanged.links, 0u) << text;
  }
  // A half-defanged host is finished without doubling the brackets.
  EXPECT_EQ(Defang("https://a[.]b.example/"), "hxxps://a[.]b[.]example/");
}

TEST(LinksTest, BarePrefixesAreNoLinks) {
  for (std::string text : {"http://", "http:// x", "www.", "See www.", "https://...", "ftp://)"}) {
    EXPECT_EQ(Links(text), 0u) << text;
    EXPECT_EQ(Defang(text), text);
  }
}

TEST(LinksTest, RemoveReplacesEveryUrl) {
  LinkedText removed =
      ApplyLinkPolicy("A: https://a.example/x B: www.b.example C: ftp://c.example/f", LinkPolicy::kRemove);
  EXPECT_EQ(removed.text, "A: [URL削除 / link removed] B: [URL削除 / link removed] C: [URL削除 / link removed]");
  EXPECT_EQ(removed.links, 3u);
}

TEST(LinksTest, KeepChangesNothingButCounts) {
  std::string text = "A: https://a.example/x B: www.b.example, C: <ftp://c.example/f>; D: hxxp://d[.]example";
  LinkedText kept = ApplyLinkPolicy(text, LinkPolicy::kKeep);
  EXPECT_EQ(kept.text, text);
  EXPECT_EQ(kept.links, 3u);
  EXPECT_EQ(ApplyLinkPolicy(text, LinkPolicy::kDefang).links, 3u);
  EXPECT_EQ(ApplyLinkPolicy(text, LinkPolicy::kRemove).links, 3u);
}

TEST(LinksTest, TextWithoutLinksIsUnchanged) {
  for (std::string text : {"", "こんにちは。会議は3.5時間です。", "e-mail: taro@example.jp", "version 1.2.3",
                           "http:/a.example", "wwwa.example", "https:a.example"}) {
    for (LinkPolicy policy : {LinkPolicy::kKeep, LinkPolicy::kDefang, LinkPolicy::kRemove}) {
      LinkedText result = ApplyLinkPolicy(text, policy);
      EXPECT_EQ(result.text, text);
      EXPECT_EQ(result.links, 0u) << text;
    }
  }
}

TEST(LinksTest, Idempotent) {
  for (std::string text : {"https://a.example/login?next=http://evil.example/x.", "www.a.example:80/x?u=www.b.c",
                           "http://a.http://b.example/", "xhttp://a.b(c)d]e", "hxxp://a[.]b http://c.d",
                           "(https://a.example/Foo_(bar)).", "https://a.example/?u=http://"}) {
    std::string once = Defang(text);
    EXPECT_EQ(Defang(once), once) << text;
    std::string removed = Remove(text);
    EXPECT_EQ(Remove(removed), removed) << text;
  }
}

// Texts made of pieces that sit at the edges of the grammar, checked for
// idempotence and for valid UTF-8 out.
TEST(LinksTest, IdempotentOnGeneratedTexts) {
  const std::vector<std::string> pieces = {
      "http://", "HTTPS://", "ftp://", "ftps://", "www.", "WWW.",    "a", "example", ".", ",",   ")", "(",
      "]",       "[",        "/",      "?",       "#",    "@",       ":", "8080",    " ", "\n",  "<", ">",
      "\"",      "'",        "。",     "次",      "[.]",  "hxxp://", "-", "_",       "!", "x.y", "é"};
  std::mt19937 random(20240611);
  for (int round = 0; round < 20000; ++round) {
    std::string text;
    size_t count = 1 + random() % 16;
    for (size_t i = 0; i < count; ++i) text += pieces[random() % pieces.size()];
    for (LinkPolicy policy : {LinkPolicy::kDefang, LinkPolicy::kRemove}) {
      std::string once = ApplyLinkPolicy(text, policy).text;
      LinkedText twice = ApplyLinkPolicy(once, policy);
      ASSERT_EQ(twice.text, once) << "input: " << text;
      ASSERT_EQ(twice.links, 0u) << "input: " << text;
      ASSERT_TRUE(g_utf8_validate(once.data(), static_cast<gssize>(once.size()), nullptr)) << text;
    }
  }
}

// The sender chooses the text: long runs must cost linear time.
TEST(LinksTest, PathologicalTextsAreLinear) {
  const std::vector<std::string> texts = {
      "http://" + std::string(2'000'000, ')'),
      [] {
        std::string s;
        while (s.size() < 2'000'000) s += "http://a.";
        return s;
      }(),
      [] {
        std::string s = "https://x/";
        while (s.size() < 2'000'000) s += "www.a,";
        return s;
      }(),
      [] {
        std::string s;
        while (s.size() < 2'000'000) s += "http://)";
        return s;
      }(),
  };
  auto start = std::chrono::steady_clock::now();
  for (const std::string& text : texts) {
    std::string once = Defang(text);
    EXPECT_EQ(Defang(once), once);
  }
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(20));
}

}  // namespace
}  // namespace mugai
