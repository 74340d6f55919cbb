#include "service/config/config.h"

#include <toml++/toml.h>

#include <fstream>
#include <functional>
#include <limits>
#include <map>
#include <initializer_list>
#include <sstream>

namespace mugai {
namespace {

std::string Where(const std::string& path, const toml::node& node) {
  return path + ":" + std::to_string(node.source().begin.line);
}

// Reads one table against a fixed set of keys, each with its own setter.
class TableReader {
 public:
  TableReader(const std::string& path, const toml::table& table, std::string prefix)
      : path_(path), table_(table), prefix_(std::move(prefix)) {}

  void String(const char* key, std::string* out) {
    Expect(key, [&](const toml::node& node) {
      auto value = node.value<std::string>();
      if (!value) Fail(node, key, "must be a string");
      *out = *value;
    });
  }

  void Bool(const char* key, bool* out) {
    Expect(key, [&](const toml::node& node) {
      auto value = node.value_exact<bool>();
      if (!value) Fail(node, key, "must be true or false");
      *out = *value;
    });
  }

  template <typename T>
  void Number(const char* key, T* out, int64_t min, int64_t max) {
    Expect(key, [&](const toml::node& node) {
      // Exact: value<int64_t>() would truncate 3.8 to 3, and a float
      // outside int64_t's range is undefined behaviour in toml++'s cast.
      auto value = node.value_exact<int64_t>();
      if (!value || *value < min || *value > max) {
        Fail(node, key, "must be an integer from " + std::to_string(min) + " to " + std::to_string(max));
      }
      *out = static_cast<T>(*value);
    });
  }

  // A table of arbitrary keys, each a list of strings.
  void StringLists(const char* key, std::map<std::string, std::vector<std::string>>* out) {
    Expect(key, [&](const toml::node& node) {
      const toml::table* sub = node.as_table();
      if (!sub) Fail(node, key, "must be a table");
      for (const auto& [name, value] : *sub) {
        const toml::array* list = value.as_array();
        std::vector<std::string>& strings = (*out)[std::string(name.str())];
        if (!list) Fail(value, key, "." + std::string(name.str()) + " must be a list of strings");
        for (const toml::node& element : *list) {
          auto text = element.value<std::string>();
          if (!text) Fail(element, key, "." + std::string(name.str()) + " must be a list of strings");
          strings.push_back(*text);
        }
      }
    });
  }

  void Table(const char* key, const std::function<void(TableReader&)>& read) {
    Expect(key, [&](const toml::node& node) {
      const toml::table* sub = node.as_table();
      if (!sub) Fail(node, key, "must be a table");
      TableReader reader(path_, *sub, prefix_ + key + ".");
      read(reader);
      reader.RejectUnknown();
    });
  }

  void RejectUnknown() const {
    for (const auto& [key, node] : table_) {
      if (!known_.count(std::string(key.str()))) {
        throw ConfigError(Where(path_, node) + ": unknown key \"" + prefix_ + std::string(key.str()) + "\"");
      }
    }
  }

 private:
  void Expect(const char* key, const std::function<void(const toml::node&)>& read) {
    known_.emplace(key, true);
    if (const toml::node* node = table_.get(key)) read(*node);
  }

  [[noreturn]] void Fail(const toml::node& node, std::string_view key, const std::string& what) const {
    throw ConfigError(Where(path_, node) + ": \"" + prefix_ + std::string(key) + "\" " + what);
  }

  const std::string& path_;
  const toml::table& table_;
  std::string prefix_;
  std::map<std::string, bool> known_;
};

// A key whose value is one of `choices`, named `dotted` in errors: the
// index of the value read, or `current` when the key is absent.
size_t Choice(TableReader& t, const std::string& path, std::string_view dotted,
              std::initializer_list<std::string_view> choices, size_t current) {
  const std::string_view* choice = choices.begin();
  std::string value(choice[current]);
  t.String(std::string(dotted.substr(dotted.find('.') + 1)).c_str(), &value);
  for (size_t i = 0; i < choices.size(); ++i) {
    if (choice[i] == value) return i;
  }
  std::string allowed;
  for (size_t i = 0; i < choices.size(); ++i) {
    allowed += (i == 0 ? "\"" : i + 1 == choices.size() ? " or \"" : ", \"") + std::string(choice[i]) + "\"";
  }
  throw ConfigError(path + ": \"" + std::string(dotted) + "\" must be " + allowed);
}

}  // namespace

Config LoadConfig(const std::string& path) {
  toml::table root;
  try {
    root = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    std::ostringstream message;
    message << path << ":" << e.source().begin.line << ": " << e.description();
    throw ConfigError(message.str());
  }
  constexpr int64_t kMaxU32 = std::numeric_limits<uint32_t>::max();
  Config config;
  TableReader reader(path, root, "");
  reader.String("data_dir", &config.data_dir);
  reader.String("signatures", &config.signatures);
  reader.Table("listeners", [&](TableReader& t) {
    t.String("ingress", &config.ingress);
    t.String("egress", &config.egress);
    t.String("admin", &config.admin);
    t.String("health", &config.health);
    t.String("metrics", &config.metrics);
    for (auto [name, tls] : {std::pair{"ingress", &config.ingress_tls}, std::pair{"egress", &config.egress_tls},
                             std::pair{"admin", &config.admin_tls}}) {
      // Captured by name: clang 14 cannot capture a structured binding.
      t.Table((std::string(name) + "_tls").c_str(), [&, tls = tls](TableReader& u) {
        u.String("cert_file", &tls->cert_file);
        u.String("key_file", &tls->key_file);
        u.String("client_ca_file", &tls->client_ca_file);
      });
    }
  });
  reader.Table("workers", [&](TableReader& t) {
    t.Number("count", &config.workers, 0, 256);
    t.Number("max_jobs", &config.worker_max_jobs, 1, kMaxU32);
    t.String("executable", &config.worker_executable);
    t.Number("memory_bytes", &config.worker_memory_bytes, int64_t{64} << 20, int64_t{64} << 30);
    t.Bool("sandbox", &config.worker_sandbox);
  });
  reader.Table("office", [&](TableReader& t) {
    t.Number("workers", &config.office_workers, 0, 64);
    t.String("executable", &config.office_executable);
    t.Number("memory_bytes", &config.office_memory_bytes, int64_t{256} << 20, int64_t{64} << 30);
  });
  reader.Table("scanner", [&](TableReader& t) {
    t.Number("threads", &config.scanner_threads, 0, 256);
    t.Number("signature_check_seconds", &config.signature_check_seconds, 1, 86400);
    t.String("executable", &config.scanner_executable);
  });
  reader.Table("limits", [&](TableReader& t) {
    // The vault keeps originals in the database, whose values stop at 1 GB
    // (and PostgreSQL's text results at half that, hex-encoded).
    t.Number("max_file_bytes", &config.limits.max_file_bytes, 1, int64_t{400} << 20);
    t.Number("max_text_bytes", &config.limits.max_text_bytes, 1, int64_t{1} << 30);
    int64_t item_seconds = config.limits.item_time.count() / 1000;
    t.Number("item_seconds", &item_seconds, 1, 3600);
    config.limits.item_time = std::chrono::seconds(item_seconds);
  });
  reader.Table("documents", [&](TableReader& t) {
    FlattenOptions& d = config.documents;
    t.Number("dpi", &d.dpi, 36, 600);
    t.Number("max_pages", &d.max_pages, 1, 100'000);
    t.Number("max_page_pixels", &d.max_page_pixels, 1, int64_t{1} << 31);
    t.Number("max_page_side", &d.max_page_side, 1, 32767);
    t.Number("max_total_pixels", &d.max_total_pixels, 1, int64_t{1} << 40);
    t.Number("render_workers", &d.workers, 1, 64);
    t.Number("palette_colors", &d.encoding.palette_colors, 2, 256);
    t.Number("gray_palette_colors", &d.encoding.gray_palette_colors, 2, 256);
    t.Number("jpeg_quality", &d.encoding.jpeg_quality, 1, 100);
  });
  reader.Table("archives", [&](TableReader& t) {
    ArchiveLimits& a = config.archives;
    t.Number("max_depth", &a.max_depth, 1, 64);
    t.Number("max_members", &a.max_members, 1, 10'000);
    t.Number("max_expanded_bytes", &a.max_expanded_bytes, 1, int64_t{64} << 30);
    t.Number("max_ratio", &a.max_ratio, 1, 100'000);
    t.Number("ratio_free_bytes", &a.ratio_free_bytes, 0, int64_t{64} << 30);
    a.hold_blocked_members =
        Choice(t, path, "archives.blocked_members", {"remove", "quarantine"}, a.hold_blocked_members) == 1;
  });
  reader.Table("mail", [&](TableReader& t) {
    MailPolicy& m = config.mail;
    // In LinkPolicy's order.
    m.links = static_cast<LinkPolicy>(
        Choice(t, path, "mail.links", {"keep", "defang", "remove"}, static_cast<size_t>(m.links)));
    m.keep_inline_images = Choice(t, path, "mail.inline_images", {"remove", "attach"}, m.keep_inline_images) == 1;
    m.strip_infected = Choice(t, path, "mail.infected", {"quarantine", "strip"}, m.strip_infected) == 1;
    m.always_keep_original = Choice(t, path, "mail.keep_original", {"changed", "always"}, m.always_keep_original) == 1;
    t.Number("max_depth", &m.max_depth, 1, 100);
    t.Number("max_parts", &m.max_parts, 1, 10'000);
    t.Number("max_header_bytes", &m.max_header_bytes, 1024, int64_t{16} << 20);
  });
  reader.Table("milter", [&](TableReader& t) {
    MilterConfig& m = config.milter;
    t.String("listen", &m.listen);
    t.String("server", &m.server);
    t.Number("timeout_seconds", &m.timeout_seconds, 1, 3600);
    t.Number("max_message_bytes", &m.max_message_bytes, 1024, int64_t{4} << 30);
    t.Number("max_concurrency", &m.max_concurrency, 1, 4096);
    m.reject_quarantined = Choice(t, path, "milter.quarantined", {"notice", "reject"}, m.reject_quarantined) == 1;
    t.String("notice_from", &m.notice_from);
    t.String("tls_ca_file", &m.tls_ca_file);
    t.String("tls_cert_file", &m.tls_cert_file);
    t.String("tls_key_file", &m.tls_key_file);
  });
  reader.Table("store", [&](TableReader& t) {
    StoreOptions& s = config.store;
    s.backend = static_cast<StoreOptions::Backend>(
        Choice(t, path, "store.backend", {"sqlite", "postgresql"}, static_cast<size_t>(s.backend)));
    t.String("postgresql", &s.postgres);
    t.Number("postgresql_connections", &s.postgres_connections, 1, 256);
  });
  reader.Table("vault", [&](TableReader& t) {
    StoreOptions& s = config.store;
    std::string key_file = s.key_file.string();
    t.String("key_file", &key_file);
    s.key_file = key_file;
    t.Number("retention_days", &s.retention_days, 1, 36500);
    t.Table("retention_days_by_outcome", [&](TableReader& u) {
      for (const char* outcome : {"delivered", "delivered_with_removals", "quarantined", "rejected"}) {
        unsigned days = 0;  // absent: the default
        u.Number(outcome, &days, 1, 36500);
        if (days != 0) s.retention_days_by_outcome[outcome] = days;
      }
    });
    t.Number("purge_interval_seconds", &config.purge_interval_seconds, 1, 86400);
  });
  reader.Table("exchange", [&](TableReader& t) {
    t.Number("inbox_retention_days", &config.store.inbox_retention_days, 1, 36500);
    t.Bool("keep_acknowledged", &config.store.keep_acknowledged);
    t.String("ingress_tokens_file", &config.exchange.ingress_tokens_file);
    t.String("egress_tokens_file", &config.exchange.egress_tokens_file);
  });
  reader.Table("admin", [&](TableReader& t) {
    AdminConfig& a = config.admin_access;
    t.Bool("two_person_rule", &a.two_person_rule);
    t.String("tokens_file", &a.tokens_file);
    t.StringLists("roles", &a.roles);
  });
  reader.Table("release", [&](TableReader& t) {
    ReleaseConfig& r = config.release;
    t.String("smtp_url", &r.smtp_url);
    t.String("smtp_ca_file", &r.smtp_ca_file);
    t.String("smtp_cert_file", &r.smtp_cert_file);
    t.String("smtp_key_file", &r.smtp_key_file);
    t.Number("timeout_seconds", &r.timeout_seconds, 1, 3600);
  });
  reader.Number("shutdown_grace_seconds", &config.shutdown_grace_seconds, 0, 3600);
  reader.RejectUnknown();
  return config;
}

std::string ReadConfiguredFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw ConfigError("cannot read " + path);
  std::ostringstream contents;
  contents << in.rdbuf();
  return contents.str();
}

}  // namespace mugai
