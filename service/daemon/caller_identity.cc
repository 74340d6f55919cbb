#include "service/daemon/caller_identity.h"

#include <grpc/grpc_security_constants.h>
#include <openssl/crypto.h>

#include <algorithm>
#include <optional>
#include <set>
#include <sstream>

#include "sanitizers/core/ascii.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "service/config/config.h"

namespace mugai {

void WarnIfOthersCanRead(const std::filesystem::path& path, std::string_view what) {
  namespace fs = std::filesystem;
  std::error_code ec;
  const fs::perms perms = fs::status(path, ec).permissions();
  if (!ec && (perms & (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none) {
    LogWarn(std::string(what) + " " + path.string() + " is accessible to group or others; make it mode 0600");
  }
}

std::vector<CallerIdentities::Token> CallerIdentities::ReadTokensFile(const std::string& path,
                                                                      std::string_view setting) {
  const std::string where = std::string(setting) + " " + path;
  std::istringstream lines(ReadConfiguredFile(path));
  WarnIfOthersCanRead(path, setting);
  std::vector<Token> tokens;
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    std::string_view text = Trim(line, " \t\r");
    if (text.empty() || text.front() == '#') continue;
    std::istringstream fields{std::string(text)};
    std::string identity, token, extra;
    fields >> identity >> token;
    if (token.empty() || fields >> extra) {
      throw ConfigError(where + ":" + std::to_string(number) + ": expected \"IDENTITY TOKEN\"");
    }
    if (token.size() < kMinTokenLength) {
      throw ConfigError(where + ":" + std::to_string(number) + ": the token of \"" + identity +
                        "\" is shorter than " + std::to_string(kMinTokenLength) + " characters");
    }
    tokens.push_back({std::move(identity), std::move(token)});
  }
  return tokens;
}

CallerIdentities::CallerIdentities(std::string listener, std::string setting, bool client_certificates,
                                   std::vector<Token> tokens, std::string fixed_identity)
    : listener_(std::move(listener)),
      setting_(std::move(setting)),
      client_certificates_(client_certificates),
      fixed_identity_(std::move(fixed_identity)) {
  std::set<std::string> seen;
  for (Token& token : tokens) {
    std::string digest = Sha256Hex(token.token);
    if (!seen.insert(digest).second) throw ConfigError(setting_ + ": one token is given to two identities");
    tokens_.push_back({std::move(token.identity), std::move(digest)});
  }
}

std::string CallerIdentities::TokenIdentity(std::string_view token) const {
  const std::string digest = Sha256Hex(token);
  const TokenDigest* match = nullptr;
  for (const TokenDigest& candidate : tokens_) {
    // Every token is compared, whichever matches.
    if (CRYPTO_memcmp(candidate.sha256.data(), digest.data(), digest.size()) == 0) match = &candidate;
  }
  return match ? match->identity : std::string();
}

CallerIdentity CallerIdentities::Identify(const grpc::ServerContext& context,
                                          const std::function<bool(const std::string&)>& preferred) const {
  CallerIdentity unidentified;
  if (!client_certificates_ && tokens_.empty()) {
    if (!fixed_identity_.empty()) return {fixed_identity_, ""};
    unidentified.problem = "the " + listener_ + " listener needs a client certificate or " + setting_;
    return unidentified;
  }

  std::string certified;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (client_certificates_ && auth && auth->IsPeerAuthenticated()) {
    std::vector<std::string> names;
    for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
      for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
        names.emplace_back(value.data(), value.size());
      }
    }
    auto chosen = names.begin();
    if (preferred) chosen = std::find_if(names.begin(), names.end(), preferred);
    if (chosen == names.end()) chosen = names.begin();
    if (chosen != names.end()) certified = *chosen;
  }

  std::optional<std::string> bearer;
  const auto& metadata = context.client_metadata();
  auto [begin, end] = metadata.equal_range("authorization");
  for (auto it = begin; it != end; ++it) {
    if (bearer) {
      unidentified.problem = "more than one authorization header";
      return unidentified;
    }
    std::string_view value(it->second.data(), it->second.size());
    constexpr std::string_view kScheme = "bearer ";
    if (value.size() <= kScheme.size() || !EqualsIgnoringAsciiCase(value.substr(0, kScheme.size()), kScheme)) {
      unidentified.problem = "the authorization header is not \"Bearer TOKEN\"";
      return unidentified;
    }
    bearer = std::string(Trim(value.substr(kScheme.size()), " \t"));
  }

  if (!bearer) {
    if (!certified.empty()) return {std::move(certified), ""};
    unidentified.problem = "no client certificate and no bearer token";
    return unidentified;
  }
  std::string identity = TokenIdentity(*bearer);
  if (identity.empty()) {
    unidentified.problem = "the bearer token matches no " + listener_ + " token";
    return unidentified;
  }
  if (!certified.empty() && identity != certified) {
    unidentified.problem = "the bearer token is \"" + identity + "\"'s, the client certificate \"" + certified + "\"'s";
    return unidentified;
  }
  return {std::move(identity), ""};
}

std::string CallerIdentities::Describe() const {
  if (!client_certificates_ && tokens_.empty()) {
    return fixed_identity_.empty() ? "nobody is identified (no client CA, no " + setting_ + "): every call is refused"
                                   : "every caller is \"" + fixed_identity_ + "\" (no client CA, no " + setting_ + ")";
  }
  std::string sources;
  if (client_certificates_) sources = "client certificates (CN or SAN)";
  if (!tokens_.empty()) {
    sources += (sources.empty() ? "" : ", or ") + std::string("bearer tokens for ") +
               std::to_string(tokens_.size()) + (tokens_.size() == 1 ? " identity" : " identities");
  }
  return sources;
}

}  // namespace mugai
