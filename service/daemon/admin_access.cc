#include "service/daemon/admin_access.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>
#include <sys/stat.h>

#include <algorithm>
#include <cerrno>

#include "sanitizers/core/ascii.h"
#include "sanitizers/core/log.h"
#include "sanitizers/core/unique_fd.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

constexpr std::pair<std::string_view, AdminRole> kRoleNames[] = {
    {"viewer", AdminRole::kViewer}, {"operator", AdminRole::kOperator}, {"approver", AdminRole::kApprover}};
constexpr uint8_t kEveryRole = 7;
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
  if (token.size() < CallerIdentities::kMinTokenLength || token.find_first_of(" \t\r\n") != std::string::npos) {
    throw ConfigError(path.string() + " does not hold an admin token; remove it and mugaid makes a new one");
  }
  return token;
}

std::map<std::string, uint8_t> ParseRoles(const AdminConfig& config) {
  std::map<std::string, uint8_t> roles;
  for (const auto& [identity, names] : config.roles) {
    uint8_t& bits = roles[identity];
    for (const std::string& name : names) {
      const auto* known = std::find_if(std::begin(kRoleNames), std::end(kRoleNames),
                                       [&](const auto& entry) { return entry.first == name; });
      if (known == std::end(kRoleNames)) {
        throw ConfigError("[admin] roles: \"" + identity + "\" has the unknown role \"" + name +
                          "\" (the roles are viewer, operator, approver)");
      }
      bits |= static_cast<uint8_t>(known->second);
    }
  }
  return roles;
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

AdminAccess::AdminAccess(const AdminConfig& config, const fs::path& data_dir, bool client_certificates)
    : roles_(ParseRoles(config)),
      default_token_file_(config.tokens_file.empty() && !client_certificates ? data_dir / "admin.token" : fs::path()),
      identities_("admin", "[admin] tokens_file", client_certificates, LoadTokens(config)) {}

std::vector<CallerIdentities::Token> AdminAccess::LoadTokens(const AdminConfig& config) {
  if (!config.tokens_file.empty()) {
    std::vector<CallerIdentities::Token> tokens =
        CallerIdentities::ReadTokensFile(config.tokens_file, "[admin] tokens_file");
    for (const CallerIdentities::Token& token : tokens) {
      if (!roles_.count(token.identity)) {
        LogWarn("[admin] tokens_file " + config.tokens_file + ": \"" + token.identity +
                "\" has no roles in [admin] roles; its calls are refused");
      }
    }
    return tokens;
  }
  if (default_token_file_.empty()) return {};
  roles_[kLocalAdmin] = kEveryRole;
  return {{kLocalAdmin, DefaultToken(default_token_file_)}};
}

AdminCaller AdminAccess::Identify(const grpc::ServerContext& context) const {
  CallerIdentity caller = identities_.Identify(context, [&](const std::string& name) { return roles_.count(name); });
  AdminCaller admin;
  admin.problem = std::move(caller.problem);
  if (caller.identity.empty()) return admin;
  auto found = roles_.find(caller.identity);
  if (found != roles_.end()) admin.roles = found->second;
  admin.identity = std::move(caller.identity);
  return admin;
}

}  // namespace mugai
