#include "sanitizers/mail/mail_converter.h"

#include <glib.h>
#include <gtest/gtest.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "sanitizers/core/findings.h"
#include "sanitizers/text/safe_text.h"
#include "sanitizers/worker/record_validator.h"
#include "sanitizers/worker/worker_pool.h"
#include "tests/unit/test_support.h"

namespace mugai {
namespace {

using v1::worker::MailOptions;
using v1::worker::Record;
using Names = std::vector<std::string>;

// What the converter sent, sorted by kind.
struct Converted {
  size_t records = 0;
  std::map<std::string, v1::worker::MailHeader> headers;
  std::optional<std::string> text;
  std::vector<v1::worker::Child> children;
  Names findings;  // "code subject", or "code" for the message itself
  Names reasons;

  Names ChildNames() const {
    Names names;
    for (const auto& child : children) names.push_back(child.name());
    return names;
  }

  const v1::worker::Child& Child(std::string_view name) const {
    static const v1::worker::Child kNone;
    for (const auto& child : children) {
      if (child.name() == name) return child;
    }
    ADD_FAILURE() << "no child " << name;
    return kNone;
  }

  std::string Header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "(none)" : it->second.value();
  }

  Names Mailboxes(const std::string& name) const {
    Names mailboxes;
    if (auto it = headers.find(name); it != headers.end()) {
      for (const auto& m : it->second.mailboxes()) mailboxes.push_back(m.name() + " <" + m.address() + ">");
    }
    return mailboxes;
  }

  std::string Reason(std::string_view code) const {
    for (size_t i = 0; i < findings.size(); ++i) {
      if (findings[i].starts_with(code)) return reasons[i];
    }
    return "(none)";
  }
};

Converted Summarize(const std::vector<Record>& records) {
  Converted c;
  c.records = records.size();
  for (const Record& r : records) {
    if (r.has_mail_header()) c.headers[r.mail_header().name()] = r.mail_header();
    if (r.has_text()) {
      EXPECT_FALSE(c.text) << "a second Text record";
      c.text = r.text().utf8();
    }
    if (r.has_child()) c.children.push_back(r.child());
    if (r.has_finding()) {
      const std::string& subject = r.finding().subject();
      c.findings.push_back(r.finding().code() + (subject.empty() ? "" : " " + subject));
      c.reasons.push_back(r.finding().reason());
    }
  }
  return c;
}

Converted Convert(std::string_view mail, MailOptions options = {}, uint64_t max_output_bytes = 1 << 20) {
  test::Recorder recorder;
  ConvertInput input{"message.eml", mail, max_output_bytes};
  input.mail = options;
  MailConverter().Convert(input, recorder);
  return Summarize(recorder.records);
}

Converted ConvertCorpus(const std::string& path) { return Convert(test::ReadCorpusFile("mail/" + path)); }

// --- Messages built for the tests -------------------------------------------

constexpr std::string_view kHeaders =
    "From: Sender <sender@example.jp>\r\nTo: someone@example.jp\r\nSubject: test\r\n"
    "Date: Tue, 01 Dec 2026 10:00:00 +0900\r\nMIME-Version: 1.0\r\n";

std::string Base64(std::string_view bytes) {
  std::unique_ptr<gchar, decltype(&g_free)> encoded(
      g_base64_encode(reinterpret_cast<const guchar*>(bytes.data()), bytes.size()), g_free);
  return encoded.get();
}

// A MIME entity: header lines (each ending in CRLF), a blank line, a body.
std::string Entity(std::string_view headers, std::string_view body) {
  return std::string(headers) + "\r\n" + std::string(body);
}

std::string Multipart(std::string_view type, const std::vector<std::string>& parts) {
  static int boundaries = 0;
  std::string boundary = "=_part" + std::to_string(++boundaries);
  std::string body;
  for (const std::string& part : parts) body += "--" + boundary + "\r\n" + part + "\r\n";
  body += "--" + boundary + "--\r\n";
  return Entity("Content-Type: " + std::string(type) + "; boundary=\"" + boundary + "\"\r\n", body);
}

std::string Text(std::string_view charset, std::string_view bytes) {
  return Entity("Content-Type: text/plain; charset=" + std::string(charset) + "\r\n", bytes);
}

std::string Html(std::string_view charset, std::string_view bytes) {
  return Entity("Content-Type: text/html; charset=" + std::string(charset) + "\r\n", bytes);
}

// A base64 part: `headers` and its Content-Transfer-Encoding.
std::string Base64Part(std::string_view headers, std::string_view bytes) {
  std::string encoded = Base64(bytes), folded;
  for (size_t i = 0; i < encoded.size(); i += 76) folded += encoded.substr(i, 76) + "\r\n";
  return Entity(std::string(headers) + "Content-Transfer-Encoding: base64\r\n", folded);
}

std::string Message(std::string_view entity, std::string_view headers = kHeaders) {
  return std::string(headers) + std::string(entity);
}

// A message with a short text body and one attachment.
std::string WithAttachment(std::string_view headers, std::string_view content) {
  return Message(
      Multipart("multipart/mixed", {Text("us-ascii", "See the attachment.\r\n"), Base64Part(headers, content)}));
}

constexpr std::string_view kPng = "\x89PNG\r\n\x1a\n";

// --- Japanese ----------------------------------------------------------------

TEST(MailJapanese, Iso2022JpSubjectAndBody) {
  Converted c = ConvertCorpus("japanese/mimekit_japanese.eml");
  EXPECT_EQ(c.Header("Subject"), "日本語メールテスト (testing Japanese emails)");
  EXPECT_EQ(c.Mailboxes("From"), Names{"Atsushi Eno <x@x.com>"});
  EXPECT_EQ(c.text, "Let's see if both subject and body works fine...\n\n日本語が\n正常に\n送れているか\nテスト.\n");
  EXPECT_EQ(c.findings, Names{});

  Converted short_mail = ConvertCorpus("japanese/mikel_japanese_iso_2022.eml");
  EXPECT_EQ(short_mail.Header("Subject"), "まみむめも");
  EXPECT_EQ(short_mail.Mailboxes("To"), Names{"みける <raasdnil@gmail.com>"});
  EXPECT_EQ(short_mail.text, "すみません。\n");
}

TEST(MailJapanese, ShiftJisBody) {
  Converted c = ConvertCorpus("japanese/mikel_japanese_shift_jis.eml");
  EXPECT_EQ(c.text, "あいうえお\n\nこのメールはテスト用のメールです。\n\n今後ともよろしくお願い申し上げます！\n");
  EXPECT_EQ(c.findings, Names{});
}

TEST(MailJapanese, EucJpBody) {
  Converted c =
      Convert(Message(Text("EUC-JP", "\xC6\xFC\xCB\xDC\xB8\xEC\xA4\xCE\xA5\xC6\xA5\xAD\xA5\xB9\xA5\xC8\r\n")));
  EXPECT_EQ(c.text, "日本語のテキスト\n");
  EXPECT_EQ(c.findings, Names{});
}

TEST(MailJapanese, EncodedWordSubjectsAndNames) {
  Converted example = ConvertCorpus("japanese/mikel_rfc2822_example14.eml");
  EXPECT_EQ(example.Header("Subject"), "Re: TEST テストテスト");
  EXPECT_EQ(example.Mailboxes("From"), Names{"Atsushi Yoshida <atsushi@example.com>"});
  EXPECT_EQ(ConvertCorpus("japanese/deco_joruri_plain.eml").Mailboxes("From"),
            Names{"でこ笑むエフ <dummysender@example.com>"});
  // Windows mailers' NEC and IBM characters, which glibc's ISO-2022-JP and
  // Shift_JIS decoders (and so GMime alone) refuse; and a character split
  // across two words.
  std::string headers = "From: =?Shift_JIS?B?" + Base64("\xFB\xFC\x8B\xB4") +
                        "?= <taka@example.jp>\r\n"
                        "To: someone@example.jp\r\n"
                        "Subject: =?ISO-2022-JP?B?" +
                        Base64("\x1b$B-!-j\x1b(B") + "?= =?shift_jis?B?" + Base64("\x87\x40\x93") +
                        "?=\r\n =?shift_jis?B?" + Base64("\xFA\x96\x7B") + "?= ok\r\n";
  Converted c = Convert(Message(Text("us-ascii", "hi\r\n"), headers));
  EXPECT_EQ(c.Header("Subject"), "①㈱①日本 ok");
  EXPECT_EQ(c.Mailboxes("From"), Names{"髙橋 <taka@example.jp>"});
}

TEST(MailJapanese, AttachmentNames) {
  EXPECT_EQ(ConvertCorpus("japanese/deco_outlook_plain_jp-zip-name.eml").ChildNames(), Names{"テスト.zip"});
  EXPECT_EQ(ConvertCorpus("japanese/mikel_japanese_attachment.eml").ChildNames(), Names{"てすと.txt"});
  EXPECT_EQ(ConvertCorpus("japanese/mikel_japanese_attachment_long_name.eml").ChildNames(),
            Names{"かきくけこかきくけこかきくけこかきくけこかきくけこ.txt"});
  // RFC 2231: Shift_JIS in pieces, ISO-2022-JP with an NEC character, and
  // a raw Shift_JIS name as old Japanese mailers send it.
  Converted sjis =
      Convert(WithAttachment("Content-Type: text/plain\r\nContent-Disposition: attachment;\r\n"
                             " filename*0*=shift_jis''%93%FA%96%7B; filename*1*=%8C%EA.txt\r\n",
                             "x"));
  EXPECT_EQ(sjis.ChildNames(), Names{"日本語.txt"});
  Converted jis = Convert(WithAttachment(
      "Content-Type: application/pdf;\r\n name*=iso-2022-jp'ja'%1B%24B-%218%2B%40Q%3Dq%1B%28B.pdf\r\n", "%PDF-"));
  EXPECT_EQ(jis.ChildNames(), Names{"①見積書.pdf"});
  EXPECT_EQ(jis.children[0].declared_type(), "application/pdf");
  Converted raw = Convert(WithAttachment(
      "Content-Type: application/octet-stream; name=\"\x89\xEF\x8B\x63\x8E\x91\x97\xBF.xlsx\"\r\n", "PK"));
  EXPECT_EQ(raw.ChildNames(), Names{"会議資料.xlsx"});
}

TEST(MailJapanese, MislabelledCharsets) {
  Converted sjis = Convert(
      Message(Text("iso-8859-1", "\x89\xEF\x8B\x63\x82\xCD\x82\xA0\x82\xB5\x82\xBD\x82\xC5\x82\xB7\x81\x42\r\n")));
  EXPECT_EQ(sjis.text, "会議はあしたです。\n");
  EXPECT_EQ(sjis.findings, Names{"mail.charset_fallback"});
  EXPECT_EQ(sjis.reasons[0], "a text part declared \"iso-8859-1\", decoded as CP932");

  Converted utf8 = Convert(Message(Text("ISO-2022-JP", "会議は①あしたです。\r\n")));
  EXPECT_EQ(utf8.text, "会議は①あしたです。\n");
  EXPECT_EQ(utf8.findings, Names{"mail.charset_fallback"});
  EXPECT_EQ(utf8.reasons[0], "a text part declared \"ISO-2022-JP\", decoded as UTF-8");

  // In the corpus: an Outlook body labelled ISO-2022-JP, written in Shift_JIS.
  Converted corpus = ConvertCorpus("japanese/deco_no-alternative_sjis.eml");
  EXPECT_EQ(corpus.text, "テスト\n");
  EXPECT_EQ(corpus.findings, Names{"mail.charset_fallback"});
}

// --- Bodies ------------------------------------------------------------------

TEST(MailBody, HtmlOnlyShiftJisBecomesText) {
  Converted c = Convert(
      Message(Html("Shift_JIS", "<html><body><p>\x93\xFA\x96\x7B\x8C\xEA</p><p>\x87\x40</p></body></html>\r\n")));
  EXPECT_EQ(c.text, "日本語\n\n①\n");
  EXPECT_EQ(c.findings, Names{"mail.html_converted"});
  // No charset parameter: the document's <meta> says it.
  Converted meta =
      Convert(Message(Entity("Content-Type: text/html\r\n", "<meta charset=\"shift_jis\"><p>\x93\xFA\x96\x7B</p>")));
  EXPECT_EQ(meta.text, "日本\n");
}

TEST(MailBody, AlternativeKeepsThePlainTextThatSaysTheSame) {
  Converted same = Convert(
      Message(Multipart("multipart/alternative",
                        {Text("UTF-8", "会議は明日の10時からです。\r\nよろしくお願いします。\r\n"),
                         Html("UTF-8", "<p>会議は<b>明日の10時</b>からです。</p><p>よろしくお願いします。</p>")})));
  EXPECT_EQ(same.text, "会議は明日の10時からです。\nよろしくお願いします。\n");
  EXPECT_EQ(same.findings, Names{});
}

TEST(MailBody, AlternativeTakesTheHtmlWhenThePlainTextSaysLess) {
  Converted c = Convert(Message(Multipart(
      "multipart/alternative",
      {Text("us-ascii", "Please view this message in an HTML mail reader.\r\n"),
       Multipart("multipart/related",
                 {Html("UTF-8",
                       "<p>Quarterly report: revenue grew in every region, details in the attached tables and the "
                       "chart below, with thanks to everyone involved.</p><img src=\"cid:chart\" alt=\"chart\">"),
                  Base64Part("Content-Type: image/png\r\nContent-ID: <chart>\r\n", kPng)})})));
  EXPECT_EQ(c.text,
            "Quarterly report: revenue grew in every region, details in the attached tables and the chart below, "
            "with thanks to everyone involved.\n\n[image: chart]\n");
  EXPECT_EQ(c.findings, Names{"mail.html_converted"});
  ASSERT_EQ(c.ChildNames(), Names{"attachment-1.png"});
  EXPECT_TRUE(c.children[0].shown_inline());
  EXPECT_EQ(c.children[0].content(), kPng);
}

TEST(MailBody, RelatedRootAndInlineImages) {
  // The root named by start, not the first part.
  Converted related = Convert(Message(Multipart(
      "multipart/related; type=\"text/html\"; start=\"<root@example.jp>\"",
      {Base64Part("Content-Type: image/gif\r\nContent-ID: <logo@example.jp>\r\n", "GIF89a"),
       Entity("Content-Type: text/html; charset=UTF-8\r\nContent-ID: <root@example.jp>\r\n", "<p>本文</p>")})));
  EXPECT_EQ(related.text, "本文\n");
  ASSERT_EQ(related.ChildNames(), Names{"attachment-1.gif"});
  EXPECT_TRUE(related.children[0].shown_inline());
  EXPECT_EQ(related.children[0].declared_type(), "image/gif");
  // In mixed: an inline image is shown, an attached one is not.
  Converted mixed = Convert(Message(Multipart(
      "multipart/mixed",
      {Text("us-ascii", "one\r\n"), Base64Part("Content-Type: image/png\r\nContent-Disposition: inline\r\n", kPng),
       Text("us-ascii", "two\r\n"),
       Base64Part("Content-Type: image/png\r\nContent-Disposition: attachment; filename=photo.png\r\n", kPng)})));
  EXPECT_EQ(mixed.text, "one\n\ntwo\n");
  EXPECT_EQ(mixed.ChildNames(), (Names{"attachment-1.png", "photo.png"}));
  EXPECT_TRUE(mixed.children[0].shown_inline());
  EXPECT_FALSE(mixed.children[1].shown_inline());
  // MHTML: no start, the root is the first part of the type parameter's type.
  Converted mhtml = ConvertCorpus("structure/mimekit_multipart-related-mhtml.eml");
  EXPECT_NE(mhtml.text, "");
  EXPECT_EQ(mhtml.ChildNames(), Names{"attachment-1.png"});
}

TEST(MailBody, AttachmentsAndTheirNames) {
  Converted c = Convert(Message(Multipart(
      "multipart/mixed",
      {Text("us-ascii", "body\r\n"),
       Base64Part("Content-Type: application/pdf\r\nContent-Disposition: attachment; "
                  "filename=\"C:\\\\tmp\\\\..\\\\a.pdf\"\r\n",
                  "%PDF-1.4"),
       Base64Part("Content-Type: Application/X-Unknown\r\n", "data"), Text("us-ascii; name=notes.txt", "notes\r\n"),
       Entity("Content-Type: text/enriched\r\n", "<bold>x</bold>"),
       Base64Part("Content-Type: application/pkcs7-signature; name=smime.p7s\r\n", "sig")})));
  EXPECT_EQ(c.text, "body\n");
  EXPECT_EQ(c.ChildNames(), (Names{"a.pdf", "attachment-1.bin", "notes.txt", "attachment-2.txt", "smime.p7s"}));
  EXPECT_EQ(c.Child("a.pdf").content(), "%PDF-1.4");
  EXPECT_EQ(c.Child("attachment-1.bin").declared_type(), "application/x-unknown");
  EXPECT_EQ(c.Child("attachment-2.txt").declared_type(), "text/enriched");
  EXPECT_EQ(c.Child("smime.p7s").declared_type(), "application/pkcs7-signature");
}

TEST(MailBody, AMultipartWithoutPartsShowsWhatItHolds) {
  Converted c = Convert(Message(Entity("Content-Type: multipart/mixed\r\n", "all of it\r\n--x\r\nmore\r\n")));
  EXPECT_EQ(c.text, "all of it\n--x\nmore\n");
  EXPECT_EQ(c.findings, Names{"mail.malformed"});
  EXPECT_EQ(c.reasons[0], "GMime found a multipart without a boundary parameter at byte 131: \"mixed\"");
}

TEST(MailBody, LongNamesKeepTheirExtension) {
  std::string name = std::string(300, 'a') + ".pdf";
  Converted c = Convert(WithAttachment("Content-Type: application/pdf; name=\"" + name + "\"\r\n", "%PDF-"));
  ASSERT_EQ(c.children.size(), 1u);
  EXPECT_EQ(c.children[0].name(), std::string(251, 'a') + ".pdf");
}

TEST(MailBody, KoreanAsOutlookLabelsIt) {
  Converted c = ConvertCorpus("structure/mikel_korean_ks_c_5601-1987.eml");
  EXPECT_EQ(c.findings, Names{});
  EXPECT_EQ(c.text, "스티해\n");
}

TEST(MailBody, NoBodyIsAnEmptyText) {
  Converted c = ConvertCorpus("attachments/mikel_attachment_only_email.eml");
  EXPECT_EQ(c.text, "");
  EXPECT_EQ(c.ChildNames(), Names{"blah.gz"});
}

// --- Embedded messages ---------------------------------------------------------

TEST(MailEmbedded, MessageBecomesATextChildWithItsAttachmentsUnderIt) {
  Converted c = ConvertCorpus("attachments/mikel_attachment_message_rfc822.eml");
  EXPECT_EQ(c.text, "This is the first part.\n");
  ASSERT_EQ(c.ChildNames(), (Names{"Another PDF.txt", "Another PDF/broken.pdf"}));
  EXPECT_EQ(c.Child("Another PDF.txt").declared_type(), "text/plain");
  EXPECT_EQ(c.Child("Another PDF.txt").content(),
            "From: Test Tester <xxxx@xxxx.com>\nTo: xxxx@xxxx.com, xxxx@xxxx.com\n"
            "Date: Tue, 10 May 2005 11:26:39 -0600\nSubject: Another PDF\n\n"
            "Just attaching another PDF, here, to see what the message looks like,\n"
            "and to see if I can figure out what is going wrong here.\n");
  EXPECT_TRUE(c.Child("Another PDF/broken.pdf").content().starts_with("%PDF-1.4"));
}

TEST(MailEmbedded, NestedAndUntitled) {
  std::string inner = Entity(
      "Content-Type: message/rfc822\r\n",
      "From: inner@example.jp\r\nSubject: 内側/の件\r\nContent-Type: text/plain; charset=UTF-8\r\n\r\n内側の本文\r\n");
  std::string outer =
      Entity("Content-Type: message/rfc822\r\n",
             "From: outer@example.jp\r\n" + Multipart("multipart/mixed", {Text("us-ascii", "outer body\r\n"), inner}));
  Converted c = Convert(Message(Multipart("multipart/mixed", {Text("us-ascii", "top\r\n"), outer})));
  EXPECT_EQ(c.ChildNames(), (Names{"message-1.txt", "message-1/内側_の件.txt"}));
  EXPECT_EQ(c.Child("message-1.txt").content(), "From: outer@example.jp\n\nouter body\n");
  EXPECT_EQ(c.Child("message-1/内側_の件.txt").content(), "From: inner@example.jp\nSubject: 内側/の件\n\n内側の本文\n");
}

// --- Uuencode -------------------------------------------------------------------

TEST(MailUuencode, FilesInTheBodyBecomeAttachments) {
  Converted c = ConvertCorpus("attachments/hunny_m0018_outlook_uuencode.eml");
  ASSERT_EQ(c.ChildNames(), (Names{"blueball.png", "greenball.png", "redball.png"}));
  for (const auto& child : c.children) {
    EXPECT_TRUE(child.content().starts_with(kPng)) << child.name();
    EXPECT_TRUE(child.content().ends_with("IEND\xAE\x42\x60\x82")) << child.name();
  }
  EXPECT_EQ(c.findings,
            (Names{"mail.uuencoded blueball.png", "mail.uuencoded greenball.png", "mail.uuencoded redball.png"}));
  ASSERT_TRUE(c.text);
  EXPECT_NE(c.text->find("Slow but steady wins the race.\n\n\n[uuencoded file blueball.png moved to an attachment]\n\n"
                         "[uuencoded file greenball.png moved to an attachment]\n"),
            std::string::npos)
      << *c.text;
  EXPECT_EQ(c.text->find("begin 666"), std::string::npos);
  // Within a MIME part's body, and with trailing spaces lost in transit.
  Converted quote = ConvertCorpus("attachments/mailparser_test_15_uuencode.eml");
  EXPECT_EQ(quote.ChildNames(), Names{"REQUEST FOR QUOTE.zip"});
  EXPECT_TRUE(quote.children[0].content().starts_with("PK\x03\x04"));
  Converted built = Convert(Message(Text("us-ascii", "see below\r\nbegin 644 hi.txt\r\n#:&D*\r\n`\r\nend\r\nbye\r\n")));
  EXPECT_EQ(built.text, "see below\n[uuencoded file hi.txt moved to an attachment]\nbye\n");
  ASSERT_EQ(built.ChildNames(), Names{"hi.txt"});
  EXPECT_EQ(built.children[0].content(), "hi\n");
}

TEST(MailUuencode, XUuencodePartsAreDecodedByGMime) {
  Converted c = ConvertCorpus("attachments/hunny_m1014_netscape_uuencode.eml");
  ASSERT_EQ(c.ChildNames(), (Names{"redball.png", "greenball.png", "blueball.png"}));
  for (const auto& child : c.children) EXPECT_TRUE(child.content().starts_with(kPng)) << child.name();
  EXPECT_EQ(c.findings, Names{});
}

// --- TNEF -------------------------------------------------------------------------

std::string Tnef(std::string_view content) {
  return WithAttachment(
      "Content-Type: application/ms-tnef; name=\"winmail.dat\"\r\n"
      "Content-Disposition: attachment; filename=\"winmail.dat\"\r\n",
      content);
}

TEST(MailTnef, MembersBecomeAttachmentsUnderItsName) {
  EXPECT_EQ(Convert(Tnef(test::ReadCorpusFile("mail/tnef/mimekit_two-files.tnef"))).ChildNames(),
            (Names{"winmail.dat/AUTHORS", "winmail.dat/README"}));
  Converted quick = Convert(Tnef(test::ReadCorpusFile("mail/tnef/poi_quick-winmail.dat")));
  EXPECT_EQ(quick.ChildNames(), (Names{"winmail.dat/quick.doc", "winmail.dat/quick.html", "winmail.dat/quick.pdf",
                                       "winmail.dat/quick.txt", "winmail.dat/quick.xml"}));
  EXPECT_TRUE(quick.Child("winmail.dat/quick.pdf").content().starts_with("%PDF-"));
  EXPECT_EQ(quick.findings, Names{});
  // The long name, not the 8.3 title; UTF-16 names.
  EXPECT_EQ(Convert(Tnef(test::ReadCorpusFile("mail/tnef/mimekit_long-filename.tnef"))).ChildNames(),
            Names{"winmail.dat/allproductsmar2000.dat"});
  EXPECT_EQ(Convert(Tnef(test::ReadCorpusFile("mail/tnef/mimekit_unicode-mapi-attr-name.tnef"))).ChildNames(),
            (Names{"winmail.dat/spaconsole2.cfg", "winmail.dat/image001.png", "winmail.dat/image002.png",
                   "winmail.dat/image003.png"}));
  // Found by its name alone.
  EXPECT_EQ(Convert(WithAttachment("Content-Type: application/octet-stream; name=WINMAIL.DAT\r\n",
                                   test::ReadCorpusFile("mail/tnef/mimekit_one-file.tnef")))
                .ChildNames(),
            Names{"WINMAIL.DAT/AUTHORS"});
}

TEST(MailTnef, WhatLibytnefCannotReadIsPassedOnWhole) {
  std::string clam = test::ReadFile(MUGAI_TESTFILES_DIR "/clam.tnef");
  Converted c = Convert(Tnef(clam));
  ASSERT_EQ(c.ChildNames(), Names{"winmail.dat"});
  EXPECT_EQ(c.children[0].content(), clam);
  EXPECT_EQ(c.children[0].declared_type(), "application/ms-tnef");
  EXPECT_EQ(c.findings, Names{"mail.malformed winmail.dat"});
  EXPECT_EQ(c.reasons[0],
            "libytnef could not read the TNEF attachment (an attribute's checksum is wrong); it is passed on as it is");
  // A "winmail.dat" that is a PNG.
  Converted png = ConvertCorpus("tnef/zbateson_m4006_tnef.eml");
  EXPECT_EQ(png.ChildNames(), Names{"winmail.dat"});
  EXPECT_EQ(png.findings, Names{"mail.malformed winmail.dat"});
  // Read, but nothing in it but a body (HTML here): passed on for the
  // daemon's policy to decide.
  Converted body_only = ConvertCorpus("tnef/mimekit_ukr_tnef.eml");
  EXPECT_EQ(body_only.ChildNames(), Names{"winmail.dat"});
  EXPECT_EQ(body_only.findings, Names{});
}

// --- Links ------------------------------------------------------------------------

TEST(MailLinks, DeceptiveLinks) {
  Converted c = Convert(Message(Html("UTF-8",
                                     "<p><a href=\"http://evil.example/login\">https://bank.example</a> "
                                     "<a href=\"https://www.bank.example/help\">bank.example</a></p>")));
  EXPECT_EQ(c.findings, (Names{"mail.html_converted", "mail.deceptive_link"}));
  EXPECT_EQ(c.Reason("mail.deceptive_link"),
            "the link text shows \"https://bank.example\" but leads to \"http://evil.example/login\"");
  // Only the body chosen counts: a plain text that says the same wins.
  Converted plain = Convert(Message(Multipart(
      "multipart/alternative", {Text("us-ascii", "https://bank.example <http://evil.example/login>\r\n"),
                                Html("UTF-8", "<a href=\"http://evil.example/login\">https://bank.example</a>")})));
  EXPECT_EQ(plain.findings, Names{});
}

// --- Headers ----------------------------------------------------------------------

TEST(MailHeaders, KeptHeaders) {
  Converted c = ConvertCorpus("malformed/mikel_two_from.eml");
  EXPECT_EQ(c.Mailboxes("From"), Names{"Tester 1 <tester1@test.com>"});
  EXPECT_EQ(c.Header("Message-ID"), "<8fc5086d0912020139y1564ad32jb4f4209fa464f4a6@test.com>");
  EXPECT_EQ(c.Header("In-Reply-To"), "<8fc5086d0912020131y377ba0ccpf8f14783cfc3014a@test.com>");
  const auto& date = c.headers.at("Date");
  EXPECT_EQ(date.date_seconds(), 1259746773);
  EXPECT_EQ(date.date_offset_minutes(), 780);

  std::string headers =
      "From: a@example.jp\r\nTo: Team: x@example.jp, \"Y, Z\" <y@example.jp>;, w@example.jp\r\n"
      "Cc: c@example.jp\r\nReply-To: r@example.jp\r\nBcc: hidden@example.jp\r\nX-Mailer: kept out\r\n"
      "Subject: folded\r\n\tsubject\r\nReferences: <a@x> <b@x>\r\n <c@x>\r\nDate: not a date\r\n";
  Converted built = Convert(Message(Text("us-ascii", "x"), headers));
  EXPECT_EQ(built.Mailboxes("To"), (Names{" <x@example.jp>", "Y, Z <y@example.jp>", " <w@example.jp>"}));
  EXPECT_EQ(built.Mailboxes("Reply-To"), Names{" <r@example.jp>"});
  EXPECT_EQ(built.Header("Subject"), "folded subject");
  EXPECT_EQ(built.Header("References"), "<a@x> <b@x> <c@x>");
  EXPECT_EQ(built.headers.count("Date"), 0u);
  EXPECT_EQ(built.headers.count("Bcc"), 0u);
  EXPECT_EQ(built.headers.size(), 6u);  // From To Cc Reply-To Subject References
}

TEST(MailHeaders, ParserWarningsAreMalformedOncePerKind) {
  Converted c = ConvertCorpus("malformed/mimekit_multipart-no-end-boundary.eml");
  EXPECT_EQ(c.findings, Names{"mail.malformed"});
  EXPECT_EQ(c.reasons[0], "GMime found the message truncated");
  std::string headers = std::string(kHeaders) + "Subject: test\r\nSubject: test\r\n";
  EXPECT_EQ(Convert(Message(Text("us-ascii", "x"), headers)).findings, Names{"mail.malformed"});
}

// --- Limits -----------------------------------------------------------------------

MailOptions Limits(uint32_t depth, uint32_t parts, uint64_t header_bytes) {
  MailOptions options;
  options.set_max_depth(depth);
  options.set_max_parts(parts);
  options.set_max_header_bytes(header_bytes);
  return options;
}

// The finding, and nothing else about the message.
void ExpectOnly(const Converted& c, std::string_view code) {
  EXPECT_EQ(c.records, 1u);
  EXPECT_EQ(c.findings, Names{std::string(code)});
}

TEST(MailLimits, Depth) {
  std::string three_deep = Message(
      Multipart("multipart/mixed",
                {Multipart("multipart/mixed", {Multipart("multipart/alternative", {Text("us-ascii", "deep")})})}));
  ExpectOnly(Convert(three_deep, Limits(2, 0, 0)), finding::kLimitMimeDepth);
  EXPECT_EQ(Convert(three_deep, Limits(3, 0, 0)).text, "deep\n");
  EXPECT_EQ(Convert(three_deep).text, "deep\n");  // 0: no limit
  // An embedded message is a level, and so is its multipart.
  std::string embedded = Message(Multipart(
      "multipart/mixed", {Entity("Content-Type: message/rfc822\r\n",
                                 "Subject: in\r\n" + Multipart("multipart/mixed", {Text("us-ascii", "x")}))}));
  ExpectOnly(Convert(embedded, Limits(2, 0, 0)), finding::kLimitMimeDepth);
  EXPECT_EQ(Convert(embedded, Limits(3, 0, 0)).ChildNames(), Names{"in.txt"});
  // Deeper than GMime parses (1024 levels), with no limit of our own: what
  // it leaves unparsed would be lost.
  std::string deep = Text("us-ascii", "deep");
  for (int i = 0; i < 1025; ++i) deep = Multipart("multipart/mixed", {deep});
  ExpectOnly(Convert(Message(deep)), finding::kLimitMimeDepth);
}

TEST(MailLimits, Parts) {
  std::string five = Message(Multipart(
      "multipart/mixed", {Text("us-ascii", "1"), Text("us-ascii", "2"), Text("us-ascii", "3"), Text("us-ascii", "4")}));
  ExpectOnly(Convert(five, Limits(0, 4, 0)), finding::kLimitMimeParts);
  EXPECT_EQ(Convert(five, Limits(0, 5, 0)).text, "1\n\n2\n\n3\n\n4\n");
}

TEST(MailLimits, HeaderSize) {
  std::string long_header =
      Message(Text("us-ascii", "x"), std::string(kHeaders) + "X-Long: " + std::string(400, 'a') + "\r\n");
  ExpectOnly(Convert(long_header, Limits(0, 0, 400)), finding::kLimitHeaderSize);
  EXPECT_EQ(Convert(long_header, Limits(0, 0, 600)).text, "x\n");
  // A part's own header block.
  std::string long_part = Message(Multipart(
      "multipart/mixed", {Entity("Content-Type: text/plain\r\nX-Long: " + std::string(400, 'a') + "\r\n", "x")}));
  ExpectOnly(Convert(long_part, Limits(0, 0, 300)), finding::kLimitHeaderSize);
  // A To header of thousands of encoded words.
  ExpectOnly(Convert(test::ReadCorpusFile("mail/malformed/mimekit_stack-overflow.eml"), Limits(0, 0, 64 * 1024)),
             finding::kLimitHeaderSize);
}

TEST(MailLimits, OutputSize) {
  Converted c = Convert(Message(Text("us-ascii", std::string(100, 'x'))), {}, 50);
  ExpectOnly(c, finding::kLimitOutput);
  EXPECT_EQ(c.reasons[0], "body text of 101 bytes exceeds the output limit of 50 bytes");
}

TEST(Mail, NotAMessageIsAParseFailure) {
  EXPECT_THROW(Convert(test::ReadCorpusFile("mail/outlook-msg/poi_quick.msg")), ConvertError);
}

// --- Every corpus message ----------------------------------------------------------

// Every record is one the daemon accepts, and every name and reason readable.
void ExpectAcceptable(const std::string& path, const std::vector<Record>& records) {
  static const std::set<std::string_view> kCodes = {
      finding::kMailMalformed,     finding::kMailCharsetFallback, finding::kMailHtmlConverted,
      finding::kMailDeceptiveLink, finding::kMailUuencoded,       finding::kLimitMimeDepth,
      finding::kLimitMimeParts,    finding::kLimitHeaderSize,     finding::kLimitOutput};
  RecordValidator validator(0, RecordLimits{}, kTextRecords | kChildRecords | kMailHeaderRecords);
  size_t texts = 0;
  for (const Record& r : records) {
    EXPECT_EQ(validator.Check(r), std::nullopt) << path;
    if (r.has_text()) ++texts;
    if (r.has_child()) {
      EXPECT_TRUE(IsValidUtf8(r.child().name()) && !r.child().name().empty()) << path;
      EXPECT_TRUE(IsValidUtf8(r.child().declared_type())) << path;
    }
    if (r.has_finding()) {
      EXPECT_TRUE(kCodes.contains(r.finding().code())) << path << ": " << r.finding().code();
      EXPECT_TRUE(IsValidUtf8(r.finding().reason()) && IsValidUtf8(r.finding().subject())) << path;
      EXPECT_LE(r.finding().reason().size(), 1024u) << path;
    }
  }
  EXPECT_LE(texts, 1u) << path;
}

TEST(MailCorpus, EveryFileConvertsToAcceptableRecords) {
  size_t files = 0, messages = 0;
  for (const auto& entry : std::filesystem::recursive_directory_iterator(std::string(MUGAI_CORPUS_DIR) + "/mail")) {
    if (!entry.is_regular_file()) continue;
    ++files;
    const std::string path = entry.path().string();
    test::Recorder recorder;
    const std::string content = test::ReadFile(entry.path());
    ConvertInput input{"message.eml", content, 1 << 24};
    try {
      MailConverter().Convert(input, recorder);
      ++messages;
    } catch (const ConvertError&) {
      EXPECT_EQ(recorder.records.size(), 0u) << path;
      continue;
    }
    ExpectAcceptable(path, recorder.records);
  }
  EXPECT_GE(files, 140u);
  EXPECT_GE(messages, 120u);
}

// --- Through the real, sandboxed worker --------------------------------------------

TEST(MailWorker, ConvertsInTheSandbox) {
  WorkerPoolOptions options;
  options.executable = MUGAI_BIN_DIR "/mugai-worker";
  options.size = 1;
  WorkerPool pool(options);
  pool.Start();
  EXPECT_EQ(test::MissingLayers(pool.protections()), "");
  auto run = [&pool](std::string content) {
    v1::worker::Job job;
    job.set_converter("mail");
    job.set_name("message.eml");
    job.set_content(std::move(content));
    job.set_max_output_bytes(1 << 20);
    *job.mutable_mail() = Limits(20, 1000, 64 * 1024);
    JobResult result =
        pool.Run(job, Clock::now() + std::chrono::seconds(30), kTextRecords | kChildRecords | kMailHeaderRecords);
    EXPECT_EQ(result.status, JobStatus::kOk) << result.detail;
    return Summarize(result.records);
  };
  Converted japanese = run(test::ReadCorpusFile("mail/japanese/deco_outlook_rtf-html_jp-txt-zip.eml"));
  EXPECT_EQ(japanese.ChildNames(), (Names{"テスト.txt", "テスト.zip"}));
  EXPECT_EQ(japanese.findings, Names{"mail.html_converted"});
  Converted iso = run(test::ReadCorpusFile("mail/japanese/mimekit_japanese.eml"));
  EXPECT_EQ(iso.Header("Subject"), "日本語メールテスト (testing Japanese emails)");
  Converted tnef = run(Tnef(test::ReadCorpusFile("mail/tnef/mimekit_unicode-mapi-attr-name.tnef")));
  EXPECT_EQ(tnef.children.size(), 4u);
  // libytnef reports what it cannot read on stdout.
  Converted broken = run(Tnef(test::ReadFile(MUGAI_TESTFILES_DIR "/clam.tnef")));
  EXPECT_EQ(broken.findings, Names{"mail.malformed winmail.dat"});
  Converted mislabelled = run(Message(Text("iso-8859-1", "\x89\xEF\x8B\x63\x82\xCD\x96\xBE\x93\xFA\x81\x42\r\n")));
  EXPECT_EQ(mislabelled.text, "会議は明日。\n");
  EXPECT_EQ(pool.restarts(), 0u);
}

}  // namespace
}  // namespace mugai
