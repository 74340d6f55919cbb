#include "sanitizers/mail/message_writer.h"

#include <gmime/gmime.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "sanitizers/core/glib_handles.h"

namespace mugai {
namespace {

using Mailboxes = std::vector<std::pair<std::string, std::string>>;  // name, address

class MessageWriterTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() { InitMessageWriter(); }
};

GObjectPtr<GMimeMessage> Parse(const std::string& bytes) {
  GObjectPtr<GMimeStream> stream(g_mime_stream_mem_new_with_buffer(bytes.data(), bytes.size()));
  GObjectPtr<GMimeParser> parser(g_mime_parser_new_with_stream(stream.get()));
  GObjectPtr<GMimeMessage> message(g_mime_parser_construct_message(parser.get(), nullptr));
  EXPECT_NE(message, nullptr) << bytes;
  return message;
}

std::string Decoded(GMimeObject* object) {
  GMimeDataWrapper* content = g_mime_part_get_content(GMIME_PART(object));
  GObjectPtr<GMimeStream> out(g_mime_stream_mem_new());
  g_mime_data_wrapper_write_to_stream(content, out.get());
  GByteArray* bytes = g_mime_stream_mem_get_byte_array(GMIME_STREAM_MEM(out.get()));
  return std::string(reinterpret_cast<const char*>(bytes->data), bytes->len);
}

Mailboxes MailboxesOf(GMimeMessage* message, GMimeAddressType type) {
  Mailboxes result;
  InternetAddressList* list = g_mime_message_get_addresses(message, type);
  for (int i = 0; i < internet_address_list_length(list); ++i) {
    InternetAddress* address = internet_address_list_get_address(list, i);
    const char* name = internet_address_get_name(address);
    result.emplace_back(name ? name : "", internet_address_mailbox_get_addr(INTERNET_ADDRESS_MAILBOX(address)));
  }
  return result;
}

std::string Header(GMimeMessage* message, const char* name) {
  const char* value = g_mime_object_get_header(GMIME_OBJECT(message), name);
  return value ? value : "";
}

bool HasHeader(GMimeMessage* message, const char* name) {
  return g_mime_object_get_header(GMIME_OBJECT(message), name) != nullptr;
}

std::string MediaType(GMimeObject* object) {
  GMimeContentType* type = g_mime_object_get_content_type(object);
  return std::string(g_mime_content_type_get_media_type(type)) + "/" + g_mime_content_type_get_media_subtype(type);
}

std::string Disposition(GMimeObject* object) {
  const char* disposition = g_mime_object_get_disposition(object);
  return disposition ? disposition : "";
}

std::vector<GMimeObject*> Parts(GMimeMessage* message) {
  GMimeObject* top = g_mime_message_get_mime_part(message);
  if (!GMIME_IS_MULTIPART(top)) return {top};
  std::vector<GMimeObject*> parts;
  for (int i = 0; i < g_mime_multipart_get_count(GMIME_MULTIPART(top)); ++i) {
    parts.push_back(g_mime_multipart_get_part(GMIME_MULTIPART(top), i));
  }
  return parts;
}

std::string HeaderSection(const std::string& bytes) { return bytes.substr(0, bytes.find("\n\n")); }

bool IsAscii(std::string_view text) {
  return std::all_of(text.begin(), text.end(), [](unsigned char c) { return c < 0x80; });
}

// The raw fields named `name`, each with its folded continuation lines.
std::vector<std::string> RawFields(const std::string& bytes, std::string_view name) {
  std::vector<std::string> fields;
  std::string headers = HeaderSection(bytes) + "\n";
  bool in_field = false;
  for (size_t pos = 0; pos < headers.size();) {
    size_t end = headers.find('\n', pos);
    std::string line = headers.substr(pos, end - pos);
    if (in_field && (line[0] == ' ' || line[0] == '\t')) {
      fields.back() += "\n" + line;
    } else {
      in_field = g_ascii_strncasecmp(line.c_str(), std::string(name).c_str(), name.size()) == 0 &&
                 line.size() > name.size() && line[name.size()] == ':';
      if (in_field) fields.push_back(line);
    }
    pos = end + 1;
  }
  return fields;
}

void ExpectWireSafe(const std::string& bytes) {
  EXPECT_EQ(bytes.find('\r'), std::string::npos);
  size_t longest = 0;
  for (size_t pos = 0; pos < bytes.size();) {
    size_t end = std::min(bytes.find('\n', pos), bytes.size());
    longest = std::max(longest, end - pos);
    pos = end + 1;
  }
  EXPECT_LE(longest, 998u);
  EXPECT_TRUE(IsAscii(HeaderSection(bytes)));
}

OutgoingMessage SimpleMessage() {
  OutgoingMessage m;
  m.from = {{"山田 太郎", "taro@example.jp"}};
  m.to = {{"", "hanako@example.jp"}};
  m.subject = "件名";
  m.body = "本文です。\n";
  return m;
}

TEST_F(MessageWriterTest, WithoutNoticeOrAttachmentsTheMessageIsOneTextPart) {
  OutgoingMessage m = SimpleMessage();
  std::string bytes = WriteMessage(m);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  GMimeObject* top = g_mime_message_get_mime_part(message.get());
  ASSERT_TRUE(GMIME_IS_TEXT_PART(top));
  EXPECT_EQ(MediaType(top), "text/plain");
  EXPECT_STREQ(g_mime_object_get_content_type_parameter(top, "charset"), "utf-8");
  EXPECT_EQ(Decoded(top), m.body);
  EXPECT_EQ(Header(message.get(), "MIME-Version"), "1.0");
  ExpectWireSafe(bytes);
}

TEST_F(MessageWriterTest, NoticeBodyThenAttachmentsInOrder) {
  OutgoingMessage m = SimpleMessage();
  m.notice = "添付ファイルを変換しました。\nAttachments were converted.\n";
  m.attachments = {{"a.pdf", "application/pdf", "%PDF-1.4 a"}, {"b.png", "image/png", "\x89PNG b"}};
  GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
  GMimeObject* top = g_mime_message_get_mime_part(message.get());
  ASSERT_TRUE(GMIME_IS_MULTIPART(top));
  EXPECT_EQ(MediaType(top), "multipart/mixed");
  std::vector<GMimeObject*> parts = Parts(message.get());
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_EQ(Decoded(parts[0]), m.notice);
  EXPECT_EQ(Disposition(parts[0]), "inline");
  EXPECT_EQ(g_mime_part_get_filename(GMIME_PART(parts[0])), nullptr);
  EXPECT_EQ(Decoded(parts[1]), m.body);
  EXPECT_EQ(Disposition(parts[1]), "inline");
  EXPECT_EQ(MediaType(parts[2]), "application/pdf");
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(parts[2])), "a.pdf");
  EXPECT_EQ(Disposition(parts[2]), "attachment");
  EXPECT_EQ(Decoded(parts[2]), "%PDF-1.4 a");
  EXPECT_EQ(MediaType(parts[3]), "image/png");
  EXPECT_EQ(Decoded(parts[3]), "\x89PNG b");
}

TEST_F(MessageWriterTest, NoticeAloneOrAttachmentsAloneMakeAMultipart) {
  OutgoingMessage notice_only = SimpleMessage();
  notice_only.notice = "お知らせ";
  std::vector<GMimeObject*> parts;
  GObjectPtr<GMimeMessage> first = Parse(WriteMessage(notice_only));
  parts = Parts(first.get());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(Decoded(parts[0]), "お知らせ");
  EXPECT_EQ(Decoded(parts[1]), notice_only.body);

  OutgoingMessage attachment_only = SimpleMessage();
  attachment_only.attachments = {{"x.txt", "text/plain; charset=utf-8", "x"}};
  GObjectPtr<GMimeMessage> second = Parse(WriteMessage(attachment_only));
  parts = Parts(second.get());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_EQ(Decoded(parts[0]), attachment_only.body);
  EXPECT_EQ(Disposition(parts[1]), "attachment");
}

TEST_F(MessageWriterTest, HeadersRoundTrip) {
  OutgoingMessage m;
  m.from = {{"山田 太郎", "taro@example.jp"}};
  m.to = {{"佐藤 花子", "hanako@example.jp"}, {"", "jiro@example.com"}};
  m.cc = {{"Ünïcode \"Q\" <x>, y", "cc@example.com"}};
  m.reply_to = {{"総務課", "soumu@city.example.lg.jp"}};
  m.subject = "【重要】来週の会議について（資料添付）";
  m.date = MessageDate{1700000000, 9 * 60};
  m.message_id = "<20231115.abc+1@mail.example.jp>";
  m.in_reply_to = "<parent@example.jp>";
  m.references = "<root@example.jp> <parent@example.jp>";
  m.sanitized_actions = "CHG_TEXT CNV_PDF";
  m.item_id = "0f1e2d3c";
  m.body = "x";
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  EXPECT_STREQ(g_mime_message_get_subject(message.get()), m.subject.c_str());
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM), (Mailboxes{{"山田 太郎", "taro@example.jp"}}));
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_TO),
            (Mailboxes{{"佐藤 花子", "hanako@example.jp"}, {"", "jiro@example.com"}}));
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_CC), (Mailboxes{{"Ünïcode \"Q\" <x>, y", "cc@example.com"}}));
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_REPLY_TO),
            (Mailboxes{{"総務課", "soumu@city.example.lg.jp"}}));
  EXPECT_TRUE(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_BCC).empty());
  GDateTime* date = g_mime_message_get_date(message.get());
  ASSERT_NE(date, nullptr);
  EXPECT_EQ(g_date_time_to_unix(date), 1700000000);
  EXPECT_EQ(g_date_time_get_utc_offset(date), int64_t{9} * 3600 * G_TIME_SPAN_SECOND);
  EXPECT_STREQ(g_mime_message_get_message_id(message.get()), "20231115.abc+1@mail.example.jp");
  EXPECT_EQ(Header(message.get(), "In-Reply-To"), "<parent@example.jp>");
  EXPECT_EQ(Header(message.get(), "References"), "<root@example.jp> <parent@example.jp>");
  EXPECT_EQ(Header(message.get(), "X-Mugai-Sanitized"), "CHG_TEXT CNV_PDF");
  EXPECT_EQ(Header(message.get(), "X-Mugai-Id"), "0f1e2d3c");
}

TEST_F(MessageWriterTest, SubjectAndNamesAreEncodedWordsInUtf8) {
  OutgoingMessage m = SimpleMessage();
  m.subject = "Café 会議";
  m.from = {{"Müller", "mueller@example.de"}};
  std::string bytes = WriteMessage(m);
  std::vector<std::string> subject = RawFields(bytes, "Subject");
  ASSERT_EQ(subject.size(), 1u);
  EXPECT_NE(subject[0].find("=?UTF-8?"), std::string::npos) << subject[0];
  std::vector<std::string> from = RawFields(bytes, "From");
  ASSERT_EQ(from.size(), 1u);
  // UTF-8, not the ISO-8859-1 GMime would pick for a Latin name by itself.
  EXPECT_NE(from[0].find("=?UTF-8?"), std::string::npos) << from[0];
  EXPECT_TRUE(IsAscii(HeaderSection(bytes)));
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  EXPECT_STREQ(g_mime_message_get_subject(message.get()), "Café 会議");
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM), (Mailboxes{{"Müller", "mueller@example.de"}}));
}

// Lines of at most 76 characters and encoded-words of at most 75 (RFC 2047).
void ExpectRfc2047Limits(const std::string& field) {
  std::string lines = field + "\n";
  for (size_t pos = 0; pos < lines.size();) {
    size_t end = lines.find('\n', pos);
    EXPECT_LE(end - pos, 76u) << field;
    pos = end + 1;
  }
  for (size_t pos = 0; (pos = field.find("=?", pos)) != std::string::npos;) {
    size_t text = field.find('?', field.find('?', pos + 2) + 1) + 1;
    size_t end = field.find("?=", text);
    ASSERT_NE(end, std::string::npos) << field;
    EXPECT_LE(end + 2 - pos, 75u) << field;
    pos = end + 2;
  }
}

std::string Repeat(std::string_view text, int times) {
  std::string repeated;
  for (int i = 0; i < times; ++i) repeated += text;
  return repeated;
}

// GMime 3.2.13 alone would write a 19-character Japanese subject as one
// 88-character encoded-word (RFC 2047 allows 75), and could not read back
// the words it makes of "a令和…" (its issue 133).
TEST_F(MessageWriterTest, SubjectsKeepRfc2047LimitsAndRoundTrip) {
  for (std::string subject :
       {std::string("【重要】来週の会議について（資料添付）"), std::string("Re: 見積書"),
        std::string("Re: 令和6年度 第2回 情報セキュリティ委員会の開催について（ご案内）"),
        std::string("絵文字😀と漢字😀") + std::string(40, 'x'), "a" + Repeat("令和6年度予算", 8),
        "ab" + Repeat("予算", 40), Repeat("令和6年度予算", 200), std::string("Café Straße 会議 資料"),
        std::string("=?utf-8?q?not_encoded?="), std::string(200, 'u'), std::string("Ωμέγα ") + Repeat("é", 50)}) {
    OutgoingMessage m = SimpleMessage();
    m.subject = subject;
    std::string bytes = WriteMessage(m);
    std::vector<std::string> fields = RawFields(bytes, "Subject");
    ASSERT_EQ(fields.size(), 1u);
    ExpectRfc2047Limits(fields[0]);
    GObjectPtr<GMimeMessage> message = Parse(bytes);
    EXPECT_STREQ(g_mime_message_get_subject(message.get()), subject.c_str());
  }
}

TEST_F(MessageWriterTest, DisplayNamesKeepRfc2047LimitsAndRoundTrip) {
  Mailboxes names = {{"株式会社サンプル 総務部 山田太郎", "a@example.jp"},
                     {"a" + Repeat("令和6年度予算", 10), "b@example.jp"},
                     {"Taro \"T\" Yamada\\", "c@example.jp"},
                     {"Yamada, Taro (総務課)", "d@example.jp"},
                     {"=?utf-8?q?x?=", "e@example.jp"},
                     {std::string(200, 'n'), "f@example.jp"},
                     {"日本語 English 混在 😀", "g@example.jp"}};
  OutgoingMessage m = SimpleMessage();
  m.from.clear();
  for (const auto& [name, address] : names) m.from.push_back({name, address});
  std::string bytes = WriteMessage(m);
  std::vector<std::string> fields = RawFields(bytes, "From");
  ASSERT_EQ(fields.size(), 1u);
  ExpectRfc2047Limits(fields[0]);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM), names);
}

// Texts of 1- to 4-byte characters in every order, against the B/Q choice.
TEST_F(MessageWriterTest, GeneratedHeaderTextsRoundTrip) {
  const std::vector<std::string> pieces = {"a", "Z", " ", "é",  "ß", "日", "本", "😀",  "6",
                                           "_", "=", "?", "\"", ",", "(",  "<",  "\\", "．"};
  std::mt19937 random(5);
  for (int round = 0; round < 300; ++round) {
    std::string text;
    size_t count = 1 + random() % 120;
    for (size_t i = 0; i < count; ++i) text += pieces[random() % pieces.size()];
    size_t first = text.find_first_not_of(' ');
    if (first == std::string::npos) continue;
    text = text.substr(first, text.find_last_not_of(' ') + 1 - first);
    OutgoingMessage m = SimpleMessage();
    m.subject = text;
    m.from = {{text, "a@example.jp"}};
    std::string bytes = WriteMessage(m);
    for (const char* field : {"Subject", "From"}) {
      std::vector<std::string> fields = RawFields(bytes, field);
      ASSERT_EQ(fields.size(), 1u);
      ExpectRfc2047Limits(fields[0]);
    }
    GObjectPtr<GMimeMessage> message = Parse(bytes);
    ASSERT_STREQ(g_mime_message_get_subject(message.get()), text.c_str()) << bytes;
    ASSERT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM), (Mailboxes{{text, "a@example.jp"}})) << bytes;
  }
}

TEST_F(MessageWriterTest, NonAsciiFileNamesAreRfc2231) {
  OutgoingMessage m = SimpleMessage();
  std::string long_name;
  for (int i = 0; i < 30; ++i) long_name += "令和6年度予算資料";
  long_name += ".pdf";
  m.attachments = {{"報告書.pdf", "application/pdf", "1"},
                   {long_name, "application/pdf", "2"},
                   {"plain name.txt", "text/plain; charset=utf-8", "3"}};
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  std::string lower(GMallocPtr<char>(g_ascii_strdown(bytes.c_str(), -1)).get());
  EXPECT_NE(lower.find("filename*=utf-8''%e5%a0%b1%e5%91%8a%e6%9b%b8.pdf"), std::string::npos) << bytes;
  EXPECT_NE(lower.find("filename*0*=utf-8''"), std::string::npos) << bytes;
  EXPECT_EQ(lower.find("filename=\"=?"), std::string::npos) << bytes;  // no RFC 2047 in parameters
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  std::vector<GMimeObject*> parts = Parts(message.get());
  ASSERT_EQ(parts.size(), 4u);
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(parts[1])), "報告書.pdf");
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(parts[2])), long_name.c_str());
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(parts[3])), "plain name.txt");
}

TEST_F(MessageWriterTest, TextsDecodeToTheExactUtf8) {
  std::string long_line(3000, 'a');
  std::string mixed_long_line;
  for (int i = 0; i < 400; ++i) mixed_long_line += "abc漢字";
  for (std::string text : {std::string("ASCII only.\nSecond line.\n"), std::string("日本語の本文。\n二行目\n"),
                           long_line + "\n", mixed_long_line, std::string("with\0nul", 8), std::string("."),
                           std::string("From the start\n.\n"), std::string()}) {
    OutgoingMessage m = SimpleMessage();
    m.body = text;
    m.notice = "notice: " + text;
    std::string bytes = WriteMessage(m);
    ExpectWireSafe(bytes);
    GObjectPtr<GMimeMessage> message = Parse(bytes);
    std::vector<GMimeObject*> parts = Parts(message.get());
    ASSERT_EQ(parts.size(), 2u);
    EXPECT_EQ(Decoded(parts[0]), m.notice);
    EXPECT_EQ(Decoded(parts[1]), text);
    // GMime leaves out "Content-Transfer-Encoding: 7bit", the default.
    const char* header = g_mime_object_get_header(parts[1], "Content-Transfer-Encoding");
    std::string encoding = header ? header : "7bit";
    EXPECT_TRUE(encoding == "7bit" || encoding == "quoted-printable" || encoding == "base64") << encoding;
  }
}

TEST_F(MessageWriterTest, TextLineEndsBecomeLf) {
  OutgoingMessage m = SimpleMessage();
  m.body = "一行目\r\n二行目\r三行目\n四行目\r";
  GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
  EXPECT_EQ(Decoded(g_mime_message_get_mime_part(message.get())), "一行目\n二行目\n三行目\n四行目\n");
}

TEST_F(MessageWriterTest, AttachmentBytesRoundTrip) {
  std::string every_byte;
  for (int i = 0; i < 256; ++i) every_byte += static_cast<char>(i);
  std::string random_bytes(1 << 20, '\0');
  std::mt19937 random(7);
  for (char& c : random_bytes) c = static_cast<char>(random());
  OutgoingMessage m = SimpleMessage();
  m.attachments = {{"every.bin", "application/octet-stream", every_byte},
                   {"nul.bin", "application/octet-stream", std::string("\0\0\xff\xff\r\n\r", 7)},
                   {"random.bin", "application/zip", random_bytes},
                   {"empty.txt", "text/plain; charset=utf-8", ""}};
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  std::vector<GMimeObject*> parts = Parts(message.get());
  ASSERT_EQ(parts.size(), 5u);
  for (size_t i = 0; i < m.attachments.size(); ++i) {
    EXPECT_EQ(Decoded(parts[i + 1]), m.attachments[i].bytes) << m.attachments[i].name;
    EXPECT_STREQ(g_mime_object_get_header(parts[i + 1], "Content-Transfer-Encoding"), "base64");
  }
}

TEST_F(MessageWriterTest, MediaTypes) {
  OutgoingMessage m = SimpleMessage();
  m.attachments = {{"a.txt", "text/plain; charset=utf-8", "a"}, {"b", "multipart/mixed; boundary=zz", "--zz\n"},
                   {"c", "message/rfc822", "From: x@y\n\nhi"},  {"d", "not a type", "d"},
                   {"e", "image/png\r\nX-Injected: 1", "e"},    {"f", "", "f"}};
  std::string bytes = WriteMessage(m);
  EXPECT_TRUE(RawFields(bytes, "X-Injected").empty());
  EXPECT_EQ(bytes.find("\nX-Injected"), std::string::npos);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  std::vector<GMimeObject*> parts = Parts(message.get());
  ASSERT_EQ(parts.size(), 7u);
  EXPECT_EQ(MediaType(parts[1]), "text/plain");
  EXPECT_STREQ(g_mime_object_get_content_type_parameter(parts[1], "charset"), "utf-8");
  for (size_t i = 2; i < parts.size(); ++i) {
    EXPECT_EQ(MediaType(parts[i]), "application/octet-stream") << m.attachments[i - 1].media_type;
    EXPECT_FALSE(GMIME_IS_MULTIPART(parts[i]));
    EXPECT_EQ(Decoded(parts[i]), m.attachments[i - 1].bytes);
  }
}

TEST_F(MessageWriterTest, ABadMessageIdIsReplacedByOneOfOurOwn) {
  for (std::string id : std::vector<std::string>{
           "", "no-brackets@example.jp", "<no-at>", "<a b@example.jp>", "<a@b\r\nBcc: x@y>", "<a(comment)@b>",
           "<\"quoted\"@b>", "<@b>", "<a@>", "<a@b@c>", "<日本@example.jp>", "<" + std::string(1000, 'a') + "@b>"}) {
    OutgoingMessage m = SimpleMessage();
    m.message_id = id;
    std::string bytes = WriteMessage(m);
    ExpectWireSafe(bytes);
    EXPECT_TRUE(RawFields(bytes, "Bcc").empty());
    GObjectPtr<GMimeMessage> message = Parse(bytes);
    std::string written = g_mime_message_get_message_id(message.get());
    EXPECT_NE("<" + written + ">", id);
    EXPECT_NE(written.find('@'), std::string::npos) << written;
    EXPECT_EQ(written.find_first_of(" ()\"<>"), std::string::npos) << written;
  }
}

TEST_F(MessageWriterTest, GeneratedMessageIdsDiffer) {
  OutgoingMessage m = SimpleMessage();
  GObjectPtr<GMimeMessage> first = Parse(WriteMessage(m));
  GObjectPtr<GMimeMessage> second = Parse(WriteMessage(m));
  EXPECT_STRNE(g_mime_message_get_message_id(first.get()), g_mime_message_get_message_id(second.get()));
}

TEST_F(MessageWriterTest, MessageIdListsAreWrittenWholeOrNotAtAll) {
  OutgoingMessage m = SimpleMessage();
  m.in_reply_to = "<good@example.jp> bad";
  m.references = "<a@example.jp>\r\n\t<b@example.jp>  <c@[192.0.2.1]>";
  GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
  EXPECT_FALSE(HasHeader(message.get(), "In-Reply-To"));
  EXPECT_EQ(Header(message.get(), "References"), "<a@example.jp> <b@example.jp> <c@[192.0.2.1]>");

  for (std::string bad : {"<a@b> <c d@e>", "<a@b>,<c@d>", "<a@b\nBcc: x@y>", "<a@b><c@d>", "<x@y> (comment)"}) {
    OutgoingMessage n = SimpleMessage();
    n.references = bad;
    n.in_reply_to = bad;
    std::string bytes = WriteMessage(n);
    EXPECT_TRUE(RawFields(bytes, "References").empty()) << bad;
    EXPECT_TRUE(RawFields(bytes, "In-Reply-To").empty()) << bad;
    EXPECT_TRUE(RawFields(bytes, "Bcc").empty()) << bad;
  }
}

TEST_F(MessageWriterTest, LongReferencesAreFoldedBetweenIds) {
  OutgoingMessage m = SimpleMessage();
  for (int i = 0; i < 100; ++i) m.references += "<message-" + std::to_string(i) + "@mail.example.jp> ";
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  GMimeReferences* refs = g_mime_references_parse(nullptr, Header(message.get(), "References").c_str());
  EXPECT_EQ(g_mime_references_length(refs), 100);
  EXPECT_STREQ(g_mime_references_get_message_id(refs, 99), "message-99@mail.example.jp");
  g_mime_references_free(refs);
}

TEST_F(MessageWriterTest, UnwritableAddressesAreLeftOut) {
  OutgoingMessage m = SimpleMessage();
  m.to = {{"space", "a b@example.jp"},
          {"newline", "a@example.jp\r\nBcc: victim@example.jp"},
          {"lf", "a@example.jp\n"},
          {"empty", ""},
          {"no at", "example.jp"},
          {"brackets", "<a@example.jp>"},
          {"quoted", "\"a b\"@example.jp"},
          {"non-ascii local", "山田@example.jp"},
          {"long", std::string(250, 'a') + "@example.jp"},
          {"tab", "a\t@example.jp"},
          {"ok", "ok@example.jp"},
          {"carrier", "taro..yamada.@docomo.ne.jp"},
          {"idn", "info@例え.jp"},
          {"literal", "root@[192.0.2.1]"},
          {"quoted", "\"a,b\"@example.jp"},
          {"quoted space", "\"a\\ b\"@example.jp"},
          {"dotless domain end", "a@example.jp."}};
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  EXPECT_TRUE(RawFields(bytes, "Bcc").empty());
  // Dots out of place are quoted, as strict parsers (GMime's among them)
  // drop the mailbox otherwise; a Unicode domain goes out as its A-label
  // (and GMime hands it back decoded).
  EXPECT_NE(bytes.find("<\"taro..yamada.\"@docomo.ne.jp>"), std::string::npos) << bytes;
  EXPECT_NE(bytes.find("<info@xn--r8jz45g.jp>"), std::string::npos) << bytes;
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_TO), (Mailboxes{{"ok", "ok@example.jp"},
                                                                          {"carrier", "\"taro..yamada.\"@docomo.ne.jp"},
                                                                          {"idn", "info@例え.jp"},
                                                                          {"literal", "root@[192.0.2.1]"},
                                                                          {"quoted", "\"a,b\"@example.jp"}}));
  EXPECT_TRUE(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_BCC).empty());
}

TEST_F(MessageWriterTest, HeaderInjectionIsImpossible) {
  OutgoingMessage m = SimpleMessage();
  m.subject = "Hello\r\nBcc: x@y\r\n\r\nbody";
  m.from = {{"Evil\r\nBcc: x@y", "evil@example.jp"}};
  m.sanitized_actions = "CHG_TEXT\r\nBcc: x@y";
  m.item_id = "id\nX-Other: 1";
  m.attachments = {{"a\r\nContent-Type: text/html.txt", "text/plain", "a"}};
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  EXPECT_TRUE(RawFields(bytes, "Bcc").empty());
  EXPECT_TRUE(RawFields(bytes, "X-Other").empty());
  EXPECT_EQ(bytes.find("\nBcc:"), std::string::npos);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  EXPECT_TRUE(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_BCC).empty());
  EXPECT_STREQ(g_mime_message_get_subject(message.get()), "Hello Bcc: x@y body");
  EXPECT_EQ(MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM), (Mailboxes{{"Evil Bcc: x@y", "evil@example.jp"}}));
  EXPECT_FALSE(HasHeader(message.get(), "X-Mugai-Sanitized"));
  EXPECT_FALSE(HasHeader(message.get(), "X-Mugai-Id"));
  std::vector<GMimeObject*> parts = Parts(message.get());
  ASSERT_EQ(parts.size(), 2u);
  EXPECT_STREQ(g_mime_part_get_filename(GMIME_PART(parts[1])), "a Content-Type: text/html.txt");
  EXPECT_EQ(MediaType(parts[1]), "text/plain");
}

TEST_F(MessageWriterTest, NonAsciiMugaiHeadersAreLeftOut) {
  OutgoingMessage m = SimpleMessage();
  m.sanitized_actions = "変換";
  m.item_id = "id\x7f";
  GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
  EXPECT_FALSE(HasHeader(message.get(), "X-Mugai-Sanitized"));
  EXPECT_FALSE(HasHeader(message.get(), "X-Mugai-Id"));
}

TEST_F(MessageWriterTest, LongValuesStayWithinTheLineLimit) {
  OutgoingMessage m = SimpleMessage();
  m.subject.clear();
  for (int i = 0; i < 300; ++i) m.subject += "長い件名";
  m.subject += std::string(2000, 'x') + " " + std::string(2000, 'y');
  m.from = {{std::string(1500, 'n') + "名前", "a@example.jp"}, {Repeat("Yamada Taro ", 150), "b@example.jp"}};
  m.sanitized_actions = std::string(1200, 'A');
  m.item_id = std::string(1200, 'b');
  m.message_id = "<" + std::string(880, 'm') + "@example.jp>";
  std::string bytes = WriteMessage(m);
  ExpectWireSafe(bytes);
  GObjectPtr<GMimeMessage> message = Parse(bytes);
  EXPECT_STREQ(g_mime_message_get_subject(message.get()), m.subject.c_str());
  EXPECT_EQ(
      MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM),
      (Mailboxes{{m.from[0].name, "a@example.jp"}, {Repeat("Yamada Taro ", 150).substr(0, 1799), "b@example.jp"}}));
  EXPECT_EQ("<" + std::string(g_mime_message_get_message_id(message.get())) + ">", m.message_id);
}

TEST_F(MessageWriterTest, EmptySubjectIsLeftOut) {
  OutgoingMessage m = SimpleMessage();
  m.subject.clear();
  EXPECT_TRUE(RawFields(WriteMessage(m), "Subject").empty());
}

TEST_F(MessageWriterTest, WithoutAUsableDateTheDateIsNow) {
  for (std::optional<MessageDate> date : std::vector<std::optional<MessageDate>>{
           std::nullopt, MessageDate{0, 24 * 60}, MessageDate{INT64_MAX, 0}, MessageDate{-100'000'000'000, 0}}) {
    OutgoingMessage m = SimpleMessage();
    m.date = date;
    int64_t before = g_get_real_time() / G_USEC_PER_SEC;
    GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
    int64_t after = g_get_real_time() / G_USEC_PER_SEC;
    GDateTime* written = g_mime_message_get_date(message.get());
    ASSERT_NE(written, nullptr);
    EXPECT_GE(g_date_time_to_unix(written), before);
    EXPECT_LE(g_date_time_to_unix(written), after);
  }
}

TEST_F(MessageWriterTest, NegativeOffsetsRoundTrip) {
  OutgoingMessage m = SimpleMessage();
  m.date = MessageDate{1700000000, -(3 * 60 + 30)};
  GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
  GDateTime* date = g_mime_message_get_date(message.get());
  ASSERT_NE(date, nullptr);
  EXPECT_EQ(g_date_time_to_unix(date), 1700000000);
  EXPECT_EQ(g_date_time_get_utc_offset(date), -int64_t{210} * 60 * G_TIME_SPAN_SECOND);
}

TEST_F(MessageWriterTest, InvalidUtf8IsACallerBug) {
  const std::string bad = "a\xff\xfe";
  std::vector<OutgoingMessage> messages(9, SimpleMessage());
  messages[0].subject = bad;
  messages[1].body = bad;
  messages[2].notice = bad;
  messages[3].from[0].name = bad;
  messages[4].to[0].address = bad;
  messages[5].attachments = {{bad, "text/plain", "x"}};
  messages[6].item_id = bad;
  messages[7].references = bad;
  messages[8].body = "\xe6\x97";  // truncated sequence
  for (const OutgoingMessage& m : messages) EXPECT_THROW(WriteMessage(m), std::invalid_argument);
  // Attachment bytes are bytes, not text.
  OutgoingMessage binary = SimpleMessage();
  binary.attachments = {{"x.bin", "application/octet-stream", bad}};
  EXPECT_NO_THROW(WriteMessage(binary));
}

TEST_F(MessageWriterTest, ConcurrentWriters) {
  constexpr int kThreads = 8;
  constexpr int kMessages = 40;
  std::vector<std::string> failures(kThreads);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([t, &failures] {
      for (int i = 0; i < kMessages; ++i) {
        std::string tag = std::to_string(t) + "-" + std::to_string(i);
        OutgoingMessage m = SimpleMessage();
        m.subject = "件名 " + tag;
        m.from = {{"送信者 " + tag, "sender" + tag + "@example.jp"}};
        m.notice = "お知らせ " + tag;
        m.body = "本文 " + tag + "\n";
        m.attachments = {{"添付 " + tag + ".bin", "application/octet-stream", std::string(1000 + i, char(t))}};
        GObjectPtr<GMimeMessage> message = Parse(WriteMessage(m));
        std::vector<GMimeObject*> parts = Parts(message.get());
        bool ok =
            g_mime_message_get_subject(message.get()) == m.subject && parts.size() == 3 &&
            MailboxesOf(message.get(), GMIME_ADDRESS_TYPE_FROM) == Mailboxes{{m.from[0].name, m.from[0].address}} &&
            Decoded(parts[0]) == m.notice && Decoded(parts[1]) == m.body &&
            Decoded(parts[2]) == m.attachments[0].bytes &&
            g_mime_part_get_filename(GMIME_PART(parts[2])) == m.attachments[0].name;
        if (!ok) failures[t] += tag + " ";
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  for (const std::string& failure : failures) EXPECT_EQ(failure, "");
}

}  // namespace
}  // namespace mugai
