// The SMTP release delivery's refusals, which need no network: the URL it
// is configured with, envelopes that would inject SMTP commands, no
// recipients; and the CRLF conversion of the message it sends.
#include <gtest/gtest.h>

#include <string>

#include "service/release/crlf_source.h"
#include "service/release/release_delivery.h"

namespace mugai {
namespace {

// Nothing listens on TCP port 1 of loopback: a refusal that connected
// anyway would say "Couldn't connect", not what the test expects.
constexpr char kClosedPort[] = "smtp://127.0.0.1:1";

ReleaseConfig WithUrl(std::string url) {
  ReleaseConfig config;
  config.smtp_url = std::move(url);
  config.timeout_seconds = 5;
  return config;
}

std::string ConfigErrorOf(const ReleaseConfig& config) {
  try {
    MakeReleaseDelivery(config);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "";
}

TEST(ReleaseDelivery, NoUrlIsNoDelivery) { EXPECT_EQ(MakeReleaseDelivery(ReleaseConfig{}), nullptr); }

TEST(ReleaseDelivery, AcceptsSmtpAndSmtpsUrls) {
  for (const char* url : {"smtp://mta.lgwan.example:25", "smtps://mta.lgwan.example:465", "SMTP://127.0.0.1:2525",
                          "smtp://[::1]:25", "smtp://mta.lgwan.example:25/gateway.city.lg.jp"}) {
    EXPECT_NE(MakeReleaseDelivery(WithUrl(url)), nullptr) << url;
  }
}

TEST(ReleaseDelivery, RefusesEveryOtherUrl) {
  for (const char* url : {"http://mta.example/", "https://mta.example/", "file:///etc/passwd", "ftp://mta.example/",
                          "imap://mta.example/", "mta.example:25", "smtp://", "smtp://mta.example:25/?x=1",
                          "smtp://mta.example:25/#f", "smtp://mta.example:99999"}) {
    EXPECT_NE(ConfigErrorOf(WithUrl(url)), "") << url;
  }
  EXPECT_NE(ConfigErrorOf(WithUrl("gopher://mta.example/")).find("smtp:// or smtps://"), std::string::npos);
}

TEST(ReleaseDelivery, RefusesCredentialsInTheUrlWithoutEchoingThem) {
  const std::string error = ConfigErrorOf(WithUrl("smtp://gateway:s3cret@mta.example:25"));
  EXPECT_NE(error.find("user or password"), std::string::npos) << error;
  EXPECT_EQ(error.find("s3cret"), std::string::npos) << error;
}

TEST(ReleaseDelivery, TlsFilesMustMakeSense) {
  ReleaseConfig config = WithUrl("smtp://mta.example:25");
  config.smtp_cert_file = "/etc/hostname";
  EXPECT_NE(ConfigErrorOf(config).find("go together"), std::string::npos);
  config.smtp_key_file = "/etc/hostname";
  EXPECT_NE(ConfigErrorOf(config).find("needs TLS"), std::string::npos) << "a client certificate over plaintext";
  config.smtp_ca_file = "/etc/hostname";
  EXPECT_EQ(ConfigErrorOf(config), "");
  config.smtp_ca_file = "/nonexistent/ca.pem";
  EXPECT_NE(ConfigErrorOf(config).find("/nonexistent/ca.pem"), std::string::npos);
  config = WithUrl("smtps://mta.example:465");
  config.smtp_cert_file = config.smtp_key_file = "/etc/hostname";
  EXPECT_EQ(ConfigErrorOf(config), "") << "smtps:// is TLS with the system CAs";
}

TEST(ReleaseDelivery, NoRecipientsIsAFailureWithoutConnecting) {
  auto delivery = MakeReleaseDelivery(WithUrl(kClosedPort));
  ReleaseDelivery::Result result = delivery->DeliverMail("Subject: x\r\n\r\nbody\r\n", "a@example.jp", {});
  EXPECT_FALSE(result.delivered);
  EXPECT_EQ(result.detail, "no envelope recipients");
}

TEST(ReleaseDelivery, RefusesEnvelopesThatWouldInjectSmtpCommands) {
  auto delivery = MakeReleaseDelivery(WithUrl(kClosedPort));
  const std::string message = "Subject: x\r\n\r\nbody\r\n";
  const std::string injections[] = {"a@example.jp\r\nRCPT TO:<evil@example.com>", "a@example.jp\nDATA",
                                    "a@example.jp\rX", "a@example.jp> SIZE=1", "<a@example.jp", "a@example.jp>",
                                    std::string("a@exam\0ple.jp", 13), "a\t@example.jp"};
  for (const std::string& bad : injections) {
    ReleaseDelivery::Result as_sender = delivery->DeliverMail(message, bad, {"user@city.example.lg.jp"});
    EXPECT_FALSE(as_sender.delivered);
    EXPECT_NE(as_sender.detail.find("refused: the envelope sender contains"), std::string::npos) << as_sender.detail;
    ReleaseDelivery::Result as_recipient =
        delivery->DeliverMail(message, "a@example.jp", {"user@city.example.lg.jp", bad});
    EXPECT_FALSE(as_recipient.delivered);
    EXPECT_NE(as_recipient.detail.find("refused: an envelope recipient contains"), std::string::npos)
        << as_recipient.detail;
  }
  ReleaseDelivery::Result empty = delivery->DeliverMail(message, "a@example.jp", {""});
  EXPECT_FALSE(empty.delivered);
  EXPECT_EQ(empty.detail, "refused: an empty envelope recipient");
}

TEST(ReleaseDelivery, AnUnreachableMtaIsAFailureNamingIt) {
  auto delivery = MakeReleaseDelivery(WithUrl(kClosedPort));
  ReleaseDelivery::Result result =
      delivery->DeliverMail("Subject: x\r\n\r\nbody\r\n", "", {"user@city.example.lg.jp"});
  EXPECT_FALSE(result.delivered);
  EXPECT_NE(result.detail.find("127.0.0.1"), std::string::npos) << result.detail;
}

std::string ReadAll(CrlfSource& source, size_t piece) {
  std::string out;
  char buffer[64];
  while (size_t n = source.Read(buffer, piece)) out.append(buffer, n);
  return out;
}

TEST(CrlfSource, BareLfBecomesCrlfAndNothingElseChanges) {
  const std::string cases[][2] = {
      {"", ""},
      {"a\nb\n", "a\r\nb\r\n"},
      {"a\r\nb\r\n", "a\r\nb\r\n"},
      {"\n\nx", "\r\n\r\nx"},
      {"mixed\r\nlf\nbare\rcr\r\r\n", "mixed\r\nlf\r\nbare\rcr\r\r\n"},
      {std::string("nul\0byte\n", 9), std::string("nul\0byte\r\n", 10)},
      {"\xe6\x97\xa5\xe6\x9c\xac\n.\n", "\xe6\x97\xa5\xe6\x9c\xac\r\n.\r\n"},
  };
  for (const auto& [in, want] : cases) {
    for (size_t piece : {1, 2, 3, 64}) {
      CrlfSource source(in);
      EXPECT_EQ(source.size(), want.size()) << in;
      EXPECT_EQ(ReadAll(source, piece), want) << "pieces of " << piece;
    }
  }
}

}  // namespace
}  // namespace mugai
