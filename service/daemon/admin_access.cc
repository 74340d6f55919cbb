#include "service/daemon/admin_access.h"

#include <fcntl.h>
#include <grpc/grpc_security_constants.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>
#include <optional>
#include <set>
#include <sstream>

#include "sanitizers/core/ascii.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/core/unique_fd.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

constexpr std::pair<std::string_view, AdminRole> kRoleNames[] = {
    {"viewer", AdminRole::kViewer}, {"operator", AdminRole::kOperator}, {"approver", AdminRole::kApprover}};
constexpr uint8_t kEveryRole = 7;
// Shorter tokens could be guessed over the network.
constexpr size_t kMinTokenLength = 16;

void WarnIfOthersCanRead(const fs::path& path, const std::string& what) {
  std::error_code ec;
  fs::perms perms = fs::status(path, ec).permissions();
  if (!ec && (perms & (fs::perms::group_all | fs::perms::others_all)) != fs::perms::none) {
    LogWarn(what + " " + path.string() + " is accessible to group or others; make it mode 0600");
  }
}

// "IDENTITY TOKEN" lines; '#' starts a comment line.
std::vector<std::pair<std::string, std::string>> ReadTokensFile(const std::string& path) {
  std::istringstream lines(ReadConfiguredFile(path));
  std::vector<std::pair<std::string, std::string>> tokens;
  std::string line;
  for (int number = 1; std::getline(lines, line); ++number) {
    std::string_view text = Trim(line, " \t\r");
    if (text.empty() || text.front() == '#') continue;
    std::istringstream fields{std::string(text)};
    std::string identity, token, extra;
    fields >> identity >> token;
    if (token.empty() || fields >> extra) {
      throw ConfigError(path + ":" + std::to_string(number) + ": expected \"IDENTITY TOKEN\"");
    }
    if (token.size() < kMinTokenLength) {
      throw ConfigError(path + ":" + std::to_string(number) + ": the token of \"" + identity +
                        "\" is shorter than " + std::to_string(kMinTokenLength) + " characters");
    }
    tokens.emplace_back(std::move(identity), std::move(token));
  }
  return tokens;
}

std::string RandomHexToken() {
  unsigned char random[32];
  if (RAND_bytes(random, sizeof random) != 1) {
    throw ConfigError("cannot make an admin token: RAND_bytes failed: " +
                      std::string(ERR_error_string(ERR_get_error(), nullptr)));
  }
  char hex[2 * sizeof random + 1];
  size_t length = 0;
  if (OPENSSL_buf2hexstr_ex(hex, sizeof hex, &length, random, sizeof random, '\0') != 1) {
    throw ConfigError("cannot make an admin token: OPENSSL_buf2hexstr_ex failed");
  }
  return AsciiLower(std::string_view(hex, sizeof hex - 1));
}

// The token in `path`, made (mode 0600, never replacing a file) when there
// is none.
std::string DefaultToken(const fs::path& path) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600));
  if (fd.valid()) {
    const std::string token = RandomHexToken();
    const std::string contents = token + "\n";
    for (size_t written = 0; written < contents.size();) {
      ssize_t n = ::write(fd.get(), contents.data() + written, contents.size() - written);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) throw ConfigError(ErrnoText("cannot write " + path.string()));
      written += static_cast<size_t>(n);
    }
    if (::fsync(fd.get()) != 0) throw ConfigError(ErrnoText("cannot write " + path.string()));
    return token;
  }
  if (errno != EEXIST) throw ConfigError(ErrnoText("cannot create " + path.string()));
  WarnIfOthersCanRead(path, "the admin token file");
  const std::string token(Trim(ReadConfiguredFile(path.string()), " \t\r\n"));
  if (token.size() < kMinTokenLength || token.find_first_of(" \t\r\n") != std::string::npos) {
    throw ConfigError(path.string() + " does not hold an admin token; remove it and mugaid makes a new one");
  }
  return token;
}

}  // namespace

bool AdminCaller::Allows(AdminNeed need) const {
  if (identity.empty()) return false;
  switch (need) {
    case AdminNeed::kIdentity:
      return true;
    case AdminNeed::kViewer:
      return roles != 0;
    case AdminNeed::kOperator:
      return roles & static_cast<uint8_t>(AdminRole::kOperator);
    case AdminNeed::kApprover:
      return roles & static_cast<uint8_t>(AdminRole::kApprover);
  }
  return false;
}

std::vector<std::string> AdminCaller::RoleNames() const {
  std::vector<std::string> names;
  for (const auto& [name, role] : kRoleNames) {
    if (roles & static_cast<uint8_t>(role)) names.emplace_back(name);
  }
  return names;
}

AdminAccess::AdminAccess(const AdminConfig& config, const fs::path& data_dir, bool client_certificates) {
  for (const auto& [identity, names] : config.roles) {
    uint8_t& roles = roles_[identity];
    for (const std::string& name : names) {
      const auto* known = std::find_if(std::begin(kRoleNames), std::end(kRoleNames),
                                       [&](const auto& entry) { return entry.first == name; });
      if (known == std::end(kRoleNames)) {
        throw ConfigError("[admin] roles: \"" + identity + "\" has the unknown role \"" + name +
                          "\" (the roles are viewer, operator, approver)");
      }
      roles |= static_cast<uint8_t>(known->second);
    }
  }
  std::vector<std::pair<std::string, std::string>> tokens;
  if (!config.tokens_file.empty()) {
    tokens = ReadTokensFile(config.tokens_file);
    WarnIfOthersCanRead(config.tokens_file, "[admin] tokens_file");
    for (const auto& [identity, token] : tokens) {
      if (!roles_.count(identity)) {
        LogWarn("[admin] tokens_file " + config.tokens_file + ": \"" + identity +
                "\" has no roles in [admin] roles; its calls are refused");
      }
    }
  } else if (!client_certificates) {
    default_token_file_ = data_dir / "admin.token";
    tokens.emplace_back(kLocalAdmin, DefaultToken(default_token_file_));
    roles_[kLocalAdmin] = kEveryRole;
  }
  std::set<std::string> seen;
  for (auto& [identity, token] : tokens) {
    std::string digest = Sha256Hex(token);
    if (!seen.insert(digest).second) {
      throw ConfigError("[admin] tokens_file " + config.tokens_file + ": one token is given to two identities");
    }
    tokens_.push_back({std::move(identity), std::move(digest)});
  }
}

AdminCaller AdminAccess::WithRoles(std::string identity) const {
  AdminCaller caller;
  auto found = roles_.find(identity);
  if (found != roles_.end()) caller.roles = found->second;
  caller.identity = std::move(identity);
  return caller;
}

std::string AdminAccess::TokenIdentity(std::string_view token) const {
  const std::string digest = Sha256Hex(token);
  const Token* match = nullptr;
  for (const Token& candidate : tokens_) {
    // Every token is compared, whichever matches.
    if (CRYPTO_memcmp(candidate.sha256.data(), digest.data(), digest.size()) == 0) match = &candidate;
  }
  return match ? match->identity : std::string();
}

AdminCaller AdminAccess::Identify(const grpc::ServerContext& context) const {
  std::string certified;
  std::shared_ptr<const grpc::AuthContext> auth = context.auth_context();
  if (auth && auth->IsPeerAuthenticated()) {
    // The certificate's CN, unless only one of its SANs has roles here.
    std::vector<std::string> names;
    for (const char* property : {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME}) {
      for (const grpc::string_ref& value : auth->FindPropertyValues(property)) {
        names.emplace_back(value.data(), value.size());
      }
    }
    auto configured = std::find_if(names.begin(), names.end(), [&](const std::string& n) { return roles_.count(n); });
    if (configured != names.end()) {
      certified = *configured;
    } else if (!names.empty()) {
      certified = names.front();
    }
  }

  std::optional<std::string> bearer;
  const auto& metadata = context.client_metadata();
  auto [begin, end] = metadata.equal_range("authorization");
  AdminCaller unidentified;
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
    if (!certified.empty()) return WithRoles(std::move(certified));
    unidentified.problem = "no client certificate and no bearer token";
    return unidentified;
  }
  std::string identity = TokenIdentity(*bearer);
  if (identity.empty()) {
    unidentified.problem = "the bearer token matches no admin token";
    return unidentified;
  }
  if (!certified.empty() && identity != certified) {
    unidentified.problem = "the bearer token is \"" + identity + "\"'s, the client certificate \"" + certified + "\"'s";
    return unidentified;
  }
  return WithRoles(std::move(identity));
}

}  // namespace mugai
