// Where an approved original goes once the vault releases it. A mail
// original is handed to the LGWAN-side MTA by SMTP (libcurl), with the
// envelope it arrived with; the MTA's answer is recorded with the release.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "service/config/config.h"

namespace mugai {

class ReleaseDelivery {
 public:
  virtual ~ReleaseDelivery() = default;

  struct Result {
    bool delivered = false;
    std::string detail;  // the MTA's last reply, or why it failed
  };
  // Sends `message` as is. Thread-safe; blocks for at most the configured
  // timeout. Never throws: a failure is a Result.
  virtual Result DeliverMail(const std::string& message, std::string_view sender,
                             const std::vector<std::string>& recipients) = 0;
};

// The configured SMTP delivery, or nullptr when [release] smtp_url is empty.
// Throws ConfigError for an unusable configuration (a bad URL, an unreadable
// certificate).
std::unique_ptr<ReleaseDelivery> MakeReleaseDelivery(const ReleaseConfig& config);

}  // namespace mugai
