// Who is calling a listener: one rule for ingress, egress and admin.
//
// A caller is the identity of its verified TLS client certificate (when the
// listener has a client CA: the certificate's CN, or one of its SANs) or
// else of its bearer token ("authorization: Bearer TOKEN", from the
// listener's tokens file). A caller that presents both must be the same
// identity in both. A listener with neither a client CA nor tokens either
// calls everyone by one fixed identity (ingress: "anonymous") or identifies
// nobody (egress: every call is refused).
#pragma once

#include <grpcpp/server_context.h>

#include <filesystem>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace mugai {

// Warns (naming the file as `what`) when group or others may access `path`:
// it holds secrets.
void WarnIfOthersCanRead(const std::filesystem::path& path, std::string_view what);

// The caller of one call.
struct CallerIdentity {
  std::string identity;  // "" when the caller could not be identified
  std::string problem;   // why, when identity is ""
};

class CallerIdentities {
 public:
  struct Token {
    std::string identity;
    std::string token;
  };
  // Shorter tokens could be guessed over the network.
  static constexpr size_t kMinTokenLength = 16;

  // The "IDENTITY TOKEN" lines of `path` ('#' starts a comment line), each
  // token at least kMinTokenLength characters. Warns when others can read the file.
  // Throws ConfigError naming `setting` (e.g. "[admin] tokens_file"), the
  // file and the line.
  static std::vector<Token> ReadTokensFile(const std::string& path, std::string_view setting);

  // `listener` ("egress") and `setting` (its tokens file's configuration
  // key) name them in messages. `client_certificates`: the listener
  // verifies client certificates. `fixed_identity`: every caller's identity
  // when the listener has neither client certificates nor tokens; "" to
  // refuse them all. Throws ConfigError when one token is given to two
  // identities.
  CallerIdentities(std::string listener, std::string setting, bool client_certificates, std::vector<Token> tokens,
                   std::string fixed_identity = "");

  // The caller of the call `context` belongs to. Among a certificate's
  // names (CN, then SANs) the first that `preferred` accepts is its
  // identity; without `preferred`, or when it accepts none, the first.
  // Thread-safe.
  CallerIdentity Identify(const grpc::ServerContext& context,
                          const std::function<bool(const std::string&)>& preferred = nullptr) const;

  // How this listener identifies its callers, for the startup log.
  std::string Describe() const;

 private:
  // The identity whose token is `token`, or "" — comparing with every
  // token in constant time.
  std::string TokenIdentity(std::string_view token) const;

  const std::string listener_, setting_;
  const bool client_certificates_;
  struct TokenDigest {
    std::string identity;
    std::string sha256;  // compared instead of the token, so lengths leak nothing
  };
  std::vector<TokenDigest> tokens_;
  const std::string fixed_identity_;
};

}  // namespace mugai
