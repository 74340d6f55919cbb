#include "service/config/config.h"

#include <gtest/gtest.h>
#include <stdlib.h>

#include <fstream>

namespace mugai {
namespace {

std::string WriteConfig(const std::string& text) {
  char path[] = "/tmp/mugai-config-XXXXXX";
  int fd = mkstemp(path);
  close(fd);
  std::ofstream(path) << text;
  return path;
}

TEST(Config, SampleFileStatesTheBuiltInDefaults) {
  Config sample = LoadConfig(MUGAI_SAMPLES_DIR "/mugai.toml");
  Config defaults;
  EXPECT_EQ(sample.data_dir, defaults.data_dir);
  EXPECT_EQ(sample.signatures, defaults.signatures);
  EXPECT_EQ(sample.ingress, defaults.ingress);
  EXPECT_EQ(sample.egress, defaults.egress);
  EXPECT_EQ(sample.admin, defaults.admin);
  EXPECT_EQ(sample.health, defaults.health);
  EXPECT_EQ(sample.metrics, defaults.metrics);
  EXPECT_EQ(sample.workers, defaults.workers);
  EXPECT_EQ(sample.worker_max_jobs, defaults.worker_max_jobs);
  EXPECT_EQ(sample.worker_memory_bytes, defaults.worker_memory_bytes);
  EXPECT_EQ(sample.worker_sandbox, defaults.worker_sandbox);
  EXPECT_EQ(sample.scanner_threads, defaults.scanner_threads);
  EXPECT_EQ(sample.office_workers, defaults.office_workers);
  EXPECT_EQ(sample.office_executable, defaults.office_executable);
  EXPECT_EQ(sample.office_memory_bytes, defaults.office_memory_bytes);
  EXPECT_EQ(sample.signature_check_seconds, defaults.signature_check_seconds);
  EXPECT_EQ(sample.limits.max_file_bytes, defaults.limits.max_file_bytes);
  EXPECT_EQ(sample.limits.max_text_bytes, defaults.limits.max_text_bytes);
  EXPECT_EQ(sample.limits.item_time, defaults.limits.item_time);
  EXPECT_EQ(sample.shutdown_grace_seconds, defaults.shutdown_grace_seconds);
  EXPECT_EQ(sample.store.backend, defaults.store.backend);
  EXPECT_EQ(sample.store.postgres, defaults.store.postgres);
  EXPECT_EQ(sample.store.postgres_connections, defaults.store.postgres_connections);
  EXPECT_EQ(sample.store.key_file, defaults.store.key_file);
  EXPECT_EQ(sample.store.retention_days, defaults.store.retention_days);
  EXPECT_EQ(sample.store.retention_days_by_outcome, defaults.store.retention_days_by_outcome);
  EXPECT_EQ(sample.purge_interval_seconds, defaults.purge_interval_seconds);
  EXPECT_EQ(sample.store.inbox_retention_days, defaults.store.inbox_retention_days);
  EXPECT_EQ(sample.store.keep_acknowledged, defaults.store.keep_acknowledged);
  EXPECT_EQ(sample.exchange.ingress_tokens_file, defaults.exchange.ingress_tokens_file);
  EXPECT_EQ(sample.exchange.egress_tokens_file, defaults.exchange.egress_tokens_file);
  EXPECT_EQ(sample.admin_access.two_person_rule, defaults.admin_access.two_person_rule);
  EXPECT_EQ(sample.admin_access.tokens_file, defaults.admin_access.tokens_file);
  EXPECT_EQ(sample.admin_access.roles, defaults.admin_access.roles);
  EXPECT_EQ(sample.release.smtp_url, defaults.release.smtp_url);
  EXPECT_EQ(sample.release.smtp_ca_file, defaults.release.smtp_ca_file);
  EXPECT_EQ(sample.release.timeout_seconds, defaults.release.timeout_seconds);
  const FlattenOptions &d = sample.documents, &e = defaults.documents;
  EXPECT_EQ(d.dpi, e.dpi);
  EXPECT_EQ(d.max_pages, e.max_pages);
  EXPECT_EQ(d.max_page_pixels, e.max_page_pixels);
  EXPECT_EQ(d.max_page_side, e.max_page_side);
  EXPECT_EQ(d.max_total_pixels, e.max_total_pixels);
  EXPECT_EQ(d.workers, e.workers);
  EXPECT_EQ(d.encoding.palette_colors, e.encoding.palette_colors);
  EXPECT_EQ(d.encoding.gray_palette_colors, e.encoding.gray_palette_colors);
  EXPECT_EQ(d.encoding.jpeg_quality, e.encoding.jpeg_quality);
  const ArchiveLimits &a = sample.archives, &b = defaults.archives;
  EXPECT_EQ(a.max_depth, b.max_depth);
  EXPECT_EQ(a.max_members, b.max_members);
  EXPECT_EQ(a.max_expanded_bytes, b.max_expanded_bytes);
  EXPECT_EQ(a.max_ratio, b.max_ratio);
  EXPECT_EQ(a.ratio_free_bytes, b.ratio_free_bytes);
  EXPECT_EQ(a.hold_blocked_members, b.hold_blocked_members);
  const MailPolicy &m = sample.mail, &n = defaults.mail;
  EXPECT_EQ(m.links, n.links);
  EXPECT_EQ(m.keep_inline_images, n.keep_inline_images);
  EXPECT_EQ(m.strip_infected, n.strip_infected);
  EXPECT_EQ(m.always_keep_original, n.always_keep_original);
  EXPECT_EQ(m.max_depth, n.max_depth);
  EXPECT_EQ(m.max_parts, n.max_parts);
  EXPECT_EQ(m.max_header_bytes, n.max_header_bytes);
  for (auto [a, b] : {std::pair{&sample.ingress_tls, &defaults.ingress_tls},
                      std::pair{&sample.egress_tls, &defaults.egress_tls},
                      std::pair{&sample.admin_tls, &defaults.admin_tls}}) {
    EXPECT_EQ(a->cert_file, b->cert_file);
    EXPECT_EQ(a->key_file, b->key_file);
    EXPECT_EQ(a->client_ca_file, b->client_ca_file);
  }
  const MilterConfig &r = sample.milter, &q = defaults.milter;
  EXPECT_EQ(r.listen, q.listen);
  EXPECT_EQ(r.server, q.server);
  EXPECT_EQ(r.timeout_seconds, q.timeout_seconds);
  EXPECT_EQ(r.max_message_bytes, q.max_message_bytes);
  EXPECT_EQ(r.max_concurrency, q.max_concurrency);
  EXPECT_EQ(r.reject_quarantined, q.reject_quarantined);
  EXPECT_EQ(r.notice_from, q.notice_from);
  EXPECT_EQ(r.tls_ca_file, q.tls_ca_file);
}

TEST(Config, ListenerTls) {
  Config c = LoadConfig(WriteConfig("[listeners]\ningress = \"127.0.0.1:7443\"\n[listeners.ingress_tls]\n"
                                    "cert_file = \"/etc/mugai/ingress.crt\"\nkey_file = \"/etc/mugai/ingress.key\"\n"
                                    "client_ca_file = \"/etc/mugai/ca.crt\"\n"));
  EXPECT_EQ(c.ingress, "127.0.0.1:7443");
  EXPECT_EQ(c.ingress_tls.cert_file, "/etc/mugai/ingress.crt");
  EXPECT_EQ(c.ingress_tls.key_file, "/etc/mugai/ingress.key");
  EXPECT_EQ(c.ingress_tls.client_ca_file, "/etc/mugai/ca.crt");
  EXPECT_TRUE(c.admin_tls.cert_file.empty());
  EXPECT_TRUE(c.health.empty()) << "no health listener unless asked for";
  EXPECT_EQ(LoadConfig(WriteConfig("[listeners]\nhealth = \"127.0.0.1:7010\"\n")).health, "127.0.0.1:7010");
  EXPECT_TRUE(c.metrics.empty()) << "no metrics endpoint unless asked for";
  EXPECT_EQ(LoadConfig(WriteConfig("[listeners]\nmetrics = \"127.0.0.1:9464\"\n")).metrics, "127.0.0.1:9464");
  EXPECT_THROW(LoadConfig(WriteConfig("[listeners.health_tls]\ncert_file = \"x\"\n")), ConfigError)
      << "the health listener is plaintext only";
  EXPECT_THROW(LoadConfig(WriteConfig("[listeners.egress_tls]\ncert = \"x\"\n")), ConfigError);
  EXPECT_THROW(ReadConfiguredFile("/nonexistent/mugai.crt"), ConfigError);
}

TEST(Config, Milter) {
  Config c = LoadConfig(WriteConfig("[milter]\nlisten = \"inet:10025@127.0.0.1\"\nquarantined = \"reject\"\n"
                                    "timeout_seconds = 60\n"));
  EXPECT_EQ(c.milter.listen, "inet:10025@127.0.0.1");
  EXPECT_TRUE(c.milter.reject_quarantined);
  EXPECT_EQ(c.milter.timeout_seconds, 60u);
  EXPECT_THROW(LoadConfig(WriteConfig("[milter]\nquarantined = \"accept\"\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[milter]\ntimeout_seconds = 0\n")), ConfigError);
}

TEST(Config, MailPolicy) {
  Config c = LoadConfig(WriteConfig("[mail]\nlinks = \"remove\"\ninline_images = \"attach\"\n"
                                    "infected = \"strip\"\nkeep_original = \"always\"\nmax_parts = 5\n"));
  EXPECT_EQ(c.mail.links, LinkPolicy::kRemove);
  EXPECT_TRUE(c.mail.keep_inline_images);
  EXPECT_TRUE(c.mail.strip_infected);
  EXPECT_TRUE(c.mail.always_keep_original);
  EXPECT_EQ(c.mail.max_parts, 5u);
  EXPECT_EQ(LoadConfig(WriteConfig("[mail]\nlinks = \"keep\"\n")).mail.links, LinkPolicy::kKeep);
  try {
    LoadConfig(WriteConfig("[mail]\nlinks = \"open\"\n"));
    FAIL() << "an unknown link policy was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("\"mail.links\" must be \"keep\", \"defang\" or \"remove\""), std::string::npos)
        << e.what();
  }
  EXPECT_THROW(LoadConfig(WriteConfig("[mail]\ninfected = \"deliver\"\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[mail]\nmax_depth = 0\n")), ConfigError);
}

TEST(Config, ArchiveLimits) {
  Config c = LoadConfig(WriteConfig("[archives]\nmax_depth = 3\nmax_members = 10\nblocked_members = \"quarantine\"\n"));
  EXPECT_EQ(c.archives.max_depth, 3u);
  EXPECT_EQ(c.archives.max_members, 10u);
  EXPECT_TRUE(c.archives.hold_blocked_members);
  EXPECT_THROW(LoadConfig(WriteConfig("[archives]\nblocked_members = \"deliver\"\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[archives]\nmax_depth = 0\n")), ConfigError);
  // Every member is in the report, which must fit in one gRPC message.
  EXPECT_THROW(LoadConfig(WriteConfig("[archives]\nmax_members = 10001\n")), ConfigError);
}

TEST(Config, DocumentLimits) {
  Config c = LoadConfig(WriteConfig("[documents]\ndpi = 200\nmax_pages = 50\nrender_workers = 1\n"));
  EXPECT_EQ(c.documents.dpi, 200);
  EXPECT_EQ(c.documents.max_pages, 50u);
  EXPECT_EQ(c.documents.workers, 1u);
  EXPECT_THROW(LoadConfig(WriteConfig("[documents]\ndpi = 0\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[documents]\nmax_pages = 0\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[documents]\njpeg_quality = 101\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[documents]\npages = 3\n")), ConfigError);
}

TEST(Config, ValuesOverrideDefaults) {
  Config c = LoadConfig(WriteConfig("data_dir = \"/srv/m\"\n[limits]\nitem_seconds = 5\n"
                                    "max_file_bytes = 1000\n[workers]\ncount = 3\n"));
  EXPECT_EQ(c.data_dir, "/srv/m");
  EXPECT_EQ(c.limits.item_time, std::chrono::seconds(5));
  EXPECT_EQ(c.limits.max_file_bytes, 1000u);
  EXPECT_EQ(c.workers, 3u);
}

TEST(Config, StoreVaultAdminAndReleaseTables) {
  Config c = LoadConfig(WriteConfig(
      "[store]\nbackend = \"postgresql\"\npostgresql = \"host=db dbname=mugai\"\npostgresql_connections = 8\n"
      "[vault]\nkey_file = \"/etc/mugai/vault.key\"\nretention_days = 14\npurge_interval_seconds = 60\n"
      "[vault.retention_days_by_outcome]\nquarantined = 90\n"
      "[admin]\ntwo_person_rule = false\ntokens_file = \"/etc/mugai/tokens\"\n"
      "[admin.roles]\n\"kakari\" = [\"operator\"]\n\"kacho\" = [\"viewer\", \"approver\"]\n"
      "[release]\nsmtp_url = \"smtp://lgwan-mta:25\"\ntimeout_seconds = 10\n"
      "[exchange]\ninbox_retention_days = 7\nkeep_acknowledged = true\negress_tokens_file = \"/etc/mugai/lgwan\"\n"));
  EXPECT_EQ(c.store.inbox_retention_days, 7u);
  EXPECT_TRUE(c.store.keep_acknowledged);
  EXPECT_EQ(c.exchange.egress_tokens_file, "/etc/mugai/lgwan");
  EXPECT_EQ(c.exchange.ingress_tokens_file, "");
  EXPECT_EQ(c.store.backend, StoreOptions::Backend::kPostgres);
  EXPECT_EQ(c.store.postgres, "host=db dbname=mugai");
  EXPECT_EQ(c.store.postgres_connections, 8u);
  EXPECT_EQ(c.store.key_file, "/etc/mugai/vault.key");
  EXPECT_EQ(c.store.retention_days, 14u);
  EXPECT_EQ(c.store.retention_days_by_outcome, (std::map<std::string, unsigned>{{"quarantined", 90}}));
  EXPECT_EQ(c.purge_interval_seconds, 60u);
  EXPECT_FALSE(c.admin_access.two_person_rule);
  EXPECT_EQ(c.admin_access.tokens_file, "/etc/mugai/tokens");
  EXPECT_EQ(c.admin_access.roles["kakari"], std::vector<std::string>{"operator"});
  EXPECT_EQ(c.admin_access.roles["kacho"], (std::vector<std::string>{"viewer", "approver"}));
  EXPECT_EQ(c.release.smtp_url, "smtp://lgwan-mta:25");
  EXPECT_EQ(c.release.timeout_seconds, 10u);
  EXPECT_THROW(LoadConfig(WriteConfig("[store]\nbackend = \"mysql\"\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[vault.retention_days_by_outcome]\nheld = 3\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[vault]\nretention_days = 0\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[admin.roles]\nkacho = \"approver\"\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[admin.roles]\nkacho = [1]\n")), ConfigError);
}

TEST(Config, UnknownKeyIsAnErrorWithItsLine) {
  try {
    LoadConfig(WriteConfig("[limits]\nmax_file_byte = 10\n"));
    FAIL() << "accepted a misspelt key";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(":2: unknown key \"limits.max_file_byte\""), std::string::npos)
        << e.what();
  }
}

TEST(Config, OutOfRangeAndWrongTypesAreErrors) {
  EXPECT_THROW(LoadConfig(WriteConfig("[limits]\nitem_seconds = 0\n")), ConfigError);
  // Not truncated to 3, and no float cast beyond int64 (found by fuzz_config).
  EXPECT_THROW(LoadConfig(WriteConfig("[limits]\nitem_seconds = 3.8\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[limits]\nmax_file_bytes = 10485E76\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[limits]\nitem_seconds = \"30\"\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("[workers]\ncount = -1\n")), ConfigError);
  EXPECT_THROW(LoadConfig(WriteConfig("listeners = 3\n")), ConfigError);
}

TEST(Config, SyntaxErrorNamesTheFile) {
  std::string path = WriteConfig("data_dir = \n");
  try {
    LoadConfig(path);
    FAIL();
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(path + ":1:"), std::string::npos) << e.what();
  }
}

TEST(Config, MissingFileIsAnError) { EXPECT_THROW(LoadConfig("/nonexistent/mugai.toml"), ConfigError); }

}  // namespace
}  // namespace mugai
