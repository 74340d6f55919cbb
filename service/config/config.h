// mugaid's configuration: one TOML file, every key optional, safe defaults
// embedded. Unknown keys and out-of-range values are errors (with the file
// and line), because a typo in a security limit must not pass silently.
// Command-line flags override the file (see service/daemon/main.cc).
#pragma once

#include <map>
#include <stdexcept>
#include <string>
#include <vector>

#include "sanitizers/pipeline/file_sanitizer.h"
#include "sanitizers/pipeline/mail_sanitizer.h"
#include "service/store/item_store.h"

namespace mugai {

// mugai-milter's [milter] table: how the mail relay's filter reaches
// mugaid and what it does with each outcome. mugaid itself ignores it, so
// one file can configure both on one host.
struct MilterConfig {
  std::string listen = "unix:/run/mugai/milter.sock";  // libmilter's form: unix:PATH or inet:PORT@HOST
  std::string server = "unix:/run/mugai/ingress.sock";  // mugaid's ingress listener
  // Below the MTA's milter_content_timeout (Postfix: 300 s), so that the
  // MTA sees this filter's tempfail rather than its own timeout.
  unsigned timeout_seconds = 120;
  uint64_t max_message_bytes = 100u << 20;  // larger: rejected (552)
  unsigned max_concurrency = 32;            // messages sanitized at once; more: tempfail
  bool reject_quarantined = false;          // false: the recipients get a notice instead
  std::string notice_from = "postmaster@localhost";
  // TLS to mugaid: all empty for a unix socket or loopback. The CA alone
  // verifies mugaid; the certificate and key identify this milter.
  std::string tls_ca_file, tls_cert_file, tls_key_file;
};

// A listener's TLS: its certificate chain and key (PEM files), and the CA
// its clients' certificates must be signed by (mutual TLS). No certificate:
// plaintext, for unix sockets and loopback only.
struct ListenerTls {
  std::string cert_file, key_file, client_ca_file;
};

// The [admin] table: who may do what on the admin listener.
struct AdminConfig {
  // An approver cannot approve a release they asked for.
  bool two_person_rule = true;
  // Bearer tokens, one "IDENTITY TOKEN" per line. Empty: <data_dir>/admin.token,
  // made on first start for the identity "local-admin" with every role.
  std::string tokens_file;
  // Identity (a client certificate's CN or SAN, or a token's identity) to
  // roles: "viewer", "operator", "approver".
  std::map<std::string, std::vector<std::string>> roles;
};

// The [release] table: where an approved mail original goes.
struct ReleaseConfig {
  // smtp://host:port or smtps://host:port of the LGWAN-side MTA. Empty:
  // mail originals are released for download by an approver only.
  std::string smtp_url;
  std::string smtp_ca_file, smtp_cert_file, smtp_key_file;  // TLS to it, optional
  unsigned timeout_seconds = 60;
};

// The [exchange] table's listener side: bearer tokens ("IDENTITY TOKEN"
// lines) for callers of the ingress and egress listeners that have no
// client certificate (a listener without a client CA). Empty: on ingress,
// such callers submit as "anonymous"; on egress they are refused.
struct ExchangeConfig {
  std::string ingress_tokens_file, egress_tokens_file;
};

struct Config {
  std::string data_dir = "/var/lib/mugai";
  std::string signatures;  // empty: the system ClamAV database, else the test signatures

  std::string ingress = "unix:/run/mugai/ingress.sock";
  std::string egress = "unix:/run/mugai/egress.sock";
  std::string admin = "unix:/run/mugai/admin.sock";
  ListenerTls ingress_tls, egress_tls, admin_tls;
  // grpc.health.v1 and Status only, plaintext, so a unix socket or loopback
  // only (for probes that cannot present a certificate). Empty: none.
  std::string health;
  // Prometheus text (GET /metrics), plaintext HTTP, so a loopback IP and
  // port only ("127.0.0.1:9464"). Empty: none.
  std::string metrics;

  unsigned workers = 0;  // 0: one per CPU
  unsigned worker_max_jobs = 2000;
  std::string worker_executable;   // empty: mugai-worker beside mugaid
  uint64_t worker_memory_bytes = uint64_t{1} << 30;
  bool worker_sandbox = true;      // false only to measure what it costs
  // LibreOffice workers (mugai-office-worker) for Office documents; 0: none,
  // and Office documents are blocked.
  unsigned office_workers = 1;
  std::string office_executable;  // empty: mugai-office-worker beside mugaid
  uint64_t office_memory_bytes = uint64_t{2} << 30;
  unsigned scanner_threads = 0;    // 0: one per CPU
  unsigned signature_check_seconds = 10;
  std::string scanner_executable;  // empty: mugai-scanner beside mugaid

  PipelineLimits limits;
  FlattenOptions documents;
  ArchiveLimits archives;
  MailPolicy mail;
  MilterConfig milter;
  StoreOptions store;  // [store] and [vault]; store.data_dir is data_dir
  unsigned purge_interval_seconds = 3600;  // [vault] how often retention is enforced
  ExchangeConfig exchange;  // and [exchange] inbox_* in store
  AdminConfig admin_access;  // [admin] (`admin` above is the listener address)
  ReleaseConfig release;
  unsigned shutdown_grace_seconds = 30;  // in-flight work may finish within this
};

class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Reads `path` over the defaults. Throws ConfigError.
Config LoadConfig(const std::string& path);

// The contents of a file the configuration names (a certificate, a key).
// Throws ConfigError naming it when it cannot be read.
std::string ReadConfiguredFile(const std::string& path);

}  // namespace mugai
