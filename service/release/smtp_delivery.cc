// ReleaseDelivery by SMTP through libcurl: one connection per delivery
// (releases are rare and each is approved by a person), so calls share
// nothing and need no lock.
#include <curl/curl.h>

#include <cstring>
#include <mutex>

#include "service/release/crlf_source.h"
#include "service/release/release_delivery.h"

namespace mugai {
namespace {

struct CurlEasyDeleter {
  void operator()(CURL* handle) const { curl_easy_cleanup(handle); }
};
struct CurlSlistDeleter {
  void operator()(curl_slist* list) const { curl_slist_free_all(list); }
};
struct CurlUrlDeleter {
  void operator()(CURLU* url) const { curl_url_cleanup(url); }
};
struct CurlStringDeleter {
  void operator()(char* text) const { curl_free(text); }
};
using CurlEasy = std::unique_ptr<CURL, CurlEasyDeleter>;
using CurlSlist = std::unique_ptr<curl_slist, CurlSlistDeleter>;
using CurlString = std::unique_ptr<char, CurlStringDeleter>;

void InitCurl() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) throw ConfigError("[release]: libcurl did not initialize");
  });
}

// Parses `url` and returns its scheme ("smtp" or "smtps"); throws
// ConfigError for anything else a delivery URL must not be.
std::string CheckUrl(const std::string& url) {
  const std::string what = "[release] smtp_url \"" + url + "\"";
  std::unique_ptr<CURLU, CurlUrlDeleter> parsed(curl_url());
  if (!parsed) throw ConfigError("[release]: out of memory parsing smtp_url");
  if (CURLUcode rc = curl_url_set(parsed.get(), CURLUPART_URL, url.c_str(), 0); rc != CURLUE_OK) {
    throw ConfigError(what + ": " + curl_url_strerror(rc));
  }
  auto part = [&](CURLUPart which) -> std::string {
    char* text = nullptr;
    if (curl_url_get(parsed.get(), which, &text, 0) != CURLUE_OK) return "";
    return CurlString(text).get();
  };
  // Credentials would sit in a file every replica reads; the MTA knows this
  // gateway by its address or its client certificate. (Checked first: the
  // other errors repeat the URL.)
  if (!part(CURLUPART_USER).empty() || !part(CURLUPART_PASSWORD).empty()) {
    throw ConfigError("[release] smtp_url must not carry a user or password (use smtp_cert_file and smtp_key_file)");
  }
  std::string scheme = part(CURLUPART_SCHEME);
  if (scheme != "smtp" && scheme != "smtps") throw ConfigError(what + ": the scheme must be smtp:// or smtps://");
  if (part(CURLUPART_HOST).empty()) throw ConfigError(what + ": no host");
  if (!part(CURLUPART_QUERY).empty() || !part(CURLUPART_FRAGMENT).empty()) {
    throw ConfigError(what + ": no query or fragment");
  }
  return scheme;
}

// Why `mailbox` cannot go on a MAIL FROM or RCPT TO line, or "" when it
// can: a line break would start a command of its own, and '<' '>' would
// end the path libcurl puts around it.
std::string UnsafeMailbox(std::string_view mailbox) {
  for (unsigned char c : mailbox) {
    if (c < 0x20 || c == 0x7f) return "a control character";
    if (c == '<' || c == '>') return "'<' or '>'";
  }
  return "";
}

// What one SMTP transaction leaves behind. Declared before the handle so
// that it outlives it: libcurl still calls back while it says QUIT in
// curl_easy_cleanup.
struct Transaction {
  explicit Transaction(std::string_view message) : source(message) {}

  static size_t ReadMessage(char* buffer, size_t size, size_t count, void* self) {
    return static_cast<Transaction*>(self)->source.Read(buffer, size * count);
  }
  // libcurl hands every server reply line to the header callback.
  static size_t KeepReply(char* buffer, size_t size, size_t count, void* self) {
    std::string_view line(buffer, size * count);
    while (!line.empty() && (line.back() == '\n' || line.back() == '\r')) line.remove_suffix(1);
    if (!line.empty()) static_cast<Transaction*>(self)->last_reply = line;
    return size * count;
  }

  CrlfSource source;
  std::string last_reply;
  char error[CURL_ERROR_SIZE] = {};
};

class SmtpDelivery final : public ReleaseDelivery {
 public:
  explicit SmtpDelivery(const ReleaseConfig& config) : config_(config) {
    const bool implicit_tls = CheckUrl(config.smtp_url) == "smtps";
    if (config.smtp_cert_file.empty() != config.smtp_key_file.empty()) {
      throw ConfigError("[release] smtp_cert_file and smtp_key_file go together");
    }
    if (!implicit_tls && config.smtp_ca_file.empty() && !config.smtp_cert_file.empty()) {
      throw ConfigError("[release] smtp_cert_file needs TLS: set smtp_ca_file (STARTTLS) or use smtps://");
    }
    // Unreadable files fail here, at startup, not at the first release.
    for (const std::string* file : {&config.smtp_ca_file, &config.smtp_cert_file, &config.smtp_key_file}) {
      if (!file->empty()) ReadConfiguredFile(*file);
    }
    InitCurl();
  }

  Result DeliverMail(const std::string& message, std::string_view sender,
                     const std::vector<std::string>& recipients) override {
    if (recipients.empty()) return {false, "no envelope recipients"};
    if (std::string why = UnsafeMailbox(sender); !why.empty()) {
      return {false, "refused: the envelope sender contains " + why};
    }
    CurlSlist rcpt;
    for (const std::string& recipient : recipients) {
      if (recipient.empty()) return {false, "refused: an empty envelope recipient"};
      if (std::string why = UnsafeMailbox(recipient); !why.empty()) {
        return {false, "refused: an envelope recipient contains " + why};
      }
      curl_slist* appended = curl_slist_append(rcpt.get(), recipient.c_str());
      if (!appended) return {false, "out of memory building the recipient list"};
      static_cast<void>(rcpt.release());
      rcpt.reset(appended);
    }

    const std::string from(sender);
    Transaction transaction(message);
    CurlEasy curl(curl_easy_init());
    if (!curl) return {false, "libcurl could not make a handle"};
    CURL* h = curl.get();
    bool set = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, transaction.error) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_URL, config_.smtp_url.c_str()) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "smtp,smtps") == CURLE_OK &&
               // Threads: no SIGALRM for timeouts.
               curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_TIMEOUT, static_cast<long>(config_.timeout_seconds)) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_MAIL_FROM, from.c_str()) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_MAIL_RCPT, rcpt.get()) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_UPLOAD, 1L) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_READFUNCTION, &Transaction::ReadMessage) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_READDATA, &transaction) == CURLE_OK &&
               // Announced with SIZE, so an MTA refuses a too large message before DATA.
               curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, static_cast<curl_off_t>(transaction.source.size())) ==
                   CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, &Transaction::KeepReply) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_HEADERDATA, &transaction) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L) == CURLE_OK &&
               curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L) == CURLE_OK;
    // smtp:// with a CA: STARTTLS, required. smtps:// is TLS from the start.
    if (set && !config_.smtp_ca_file.empty()) {
      set = curl_easy_setopt(h, CURLOPT_CAINFO, config_.smtp_ca_file.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_USE_SSL, static_cast<long>(CURLUSESSL_ALL)) == CURLE_OK;
    }
    if (set && !config_.smtp_cert_file.empty()) {
      set = curl_easy_setopt(h, CURLOPT_SSLCERT, config_.smtp_cert_file.c_str()) == CURLE_OK &&
            curl_easy_setopt(h, CURLOPT_SSLKEY, config_.smtp_key_file.c_str()) == CURLE_OK;
    }
    if (!set) return {false, "libcurl refused an option (built without SMTP or TLS?)"};

    const CURLcode rc = curl_easy_perform(h);
    if (rc == CURLE_OK) return {true, transaction.last_reply};
    std::string detail = transaction.error[0] ? transaction.error : curl_easy_strerror(rc);
    if (!transaction.last_reply.empty()) detail += " (last reply: " + transaction.last_reply + ")";
    return {false, detail};
  }

 private:
  const ReleaseConfig config_;
};

}  // namespace

std::unique_ptr<ReleaseDelivery> MakeReleaseDelivery(const ReleaseConfig& config) {
  if (config.smtp_url.empty()) return nullptr;
  return std::make_unique<SmtpDelivery>(config);
}

}  // namespace mugai
