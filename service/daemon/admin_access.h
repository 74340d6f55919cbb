// Who is calling the admin listener, and what their roles let them do.
//
// A caller is identified as on every listener (caller_identity.h): by its
// verified TLS client certificate (the certificate's CN, or a SAN that the
// configuration gives roles) or else by a bearer token from [admin]
// tokens_file. With neither a tokens file nor a client CA, one token is
// made on first start in <data_dir>/admin.token for the identity
// "local-admin", which then has every role: the embedded default, reachable
// only by whoever can read that file.
//
// The role rules are proto/mugai/v1/admin.proto's header comment.
#pragma once

#include <grpcpp/server_context.h>

#include <cstdint>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "service/config/config.h"
#include "service/daemon/caller_identity.h"

namespace mugai {

enum class AdminRole : uint8_t { kViewer = 1, kOperator = 2, kApprover = 4 };

// What a call needs of its caller.
enum class AdminNeed {
  kIdentity,  // any identified caller, even one without roles (WhoAmI)
  kViewer,    // any role
  kOperator,
  kApprover,
};

// The identity making one call and its roles.
struct AdminCaller {
  std::string identity;  // "" when the caller could not be identified
  std::string problem;   // why, when identity is ""
  uint8_t roles = 0;     // AdminRole bits

  bool Allows(AdminNeed need) const;
  // Role names, in the order viewer, operator, approver.
  std::vector<std::string> RoleNames() const;
};

// The identity the default token file is made for.
inline constexpr char kLocalAdmin[] = "local-admin";

class AdminAccess {
 public:
  // Checks every role name in `config.roles`, reads config.tokens_file or
  // makes (or reads) the default token file when neither it nor a client CA
  // (`client_certificates`) is configured. Throws ConfigError naming the
  // file, line or role that is wrong.
  AdminAccess(const AdminConfig& config, const std::filesystem::path& data_dir, bool client_certificates);

  // The caller of the call `context` belongs to. Thread-safe.
  AdminCaller Identify(const grpc::ServerContext& context) const;

  // The token file made for "local-admin", or "" when it is not in use.
  const std::filesystem::path& default_token_file() const { return default_token_file_; }
  const CallerIdentities& identities() const { return identities_; }

 private:
  // The tokens of config.tokens_file, or the default token (which gets
  // every role).
  std::vector<CallerIdentities::Token> LoadTokens(const AdminConfig& config);

  std::map<std::string, uint8_t> roles_;
  const std::filesystem::path default_token_file_;
  const CallerIdentities identities_;
};

}  // namespace mugai
