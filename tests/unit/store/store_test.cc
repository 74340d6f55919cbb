// The item store on its real backends.
//
// Backend: SQLite in a fresh temporary data directory by default. When
// MUGAI_TEST_POSTGRES holds a libpq connection string in key=value form
// ("host=/tmp/pg dbname=mugai_test"), every test runs on PostgreSQL
// instead: it drops and recreates its own schema, mugai_store_test_<pid>
// (one per process, so ctest -j can run tests side by side), connects with
// search_path set to it, and drops it at the end, so each test starts from
// an empty database and reruns are clean. The user needs CREATE on the
// database. Tests about SQLite's files skip themselves on PostgreSQL.
#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <mutex>
#include <set>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sanitizers/core/sha256.h"
#include "service/store/item_store.h"
#include "service/store/sql_database.h"
#include "service/store/vault_cipher.h"

// Queries are written as designated initializers ({.sender = "x"}), whose
// other fields keep their defaults by design; GCC 12 warns about those.
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"

namespace mugai {
namespace {

namespace fs = std::filesystem;
using std::chrono::hours;
using std::chrono::system_clock;
using Refusal = ItemStore::Refusal;

const char* PostgresConninfo() {
  const char* conninfo = std::getenv("MUGAI_TEST_POSTGRES");
  return conninfo != nullptr && *conninfo != '\0' ? conninfo : nullptr;
}

std::string PostgresSchema() { return "mugai_store_test_" + std::to_string(::getpid()); }

std::string ReadFile(const fs::path& file) {
  std::ifstream in(file, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

void WriteFile(const fs::path& file, std::string_view content, fs::perms perms = fs::perms::owner_read |
                                                                                   fs::perms::owner_write) {
  std::ofstream(file, std::ios::binary | std::ios::trunc) << content;
  fs::permissions(file, perms);
}

v1::Report MakeReport(const std::string& outcome, std::string_view original, const std::string& name = "invoice.pdf") {
  v1::Report report;
  report.set_outcome(outcome);
  v1::ItemReport* item = report.mutable_item();
  item->set_claimed_name(name);
  item->set_detected_type("application/pdf");
  item->set_sha256(Sha256Hex(original));
  item->set_size(original.size());
  item->set_outcome(outcome);
  return report;
}

void AddFinding(v1::ItemReport* item, const std::string& code) {
  v1::Finding* finding = item->add_findings();
  finding->set_code(code);
  finding->set_reason("reason for " + code);
}

v1::ItemSummary MakeSummary(const std::string& sender, std::vector<std::string> recipients,
                            const std::string& subject) {
  v1::ItemSummary summary;
  summary.set_kind("mail");
  summary.set_sender(sender);
  for (std::string& recipient : recipients) summary.add_recipients(std::move(recipient));
  summary.set_subject(subject);
  v1::ItemSummary::HeaderField* header = summary.add_headers();
  header->set_name("Subject");
  header->set_value(subject);
  summary.set_preview("preview of " + subject);
  return summary;
}

// A submitted file's report: `original` turned into `derivatives`.
v1::Report MakeFileReport(const std::string& outcome, const std::vector<std::string>& derivatives,
                          const std::string& original = "the submitted original") {
  v1::Report report = MakeReport(outcome, original, "../form\u202Excod.docx");
  for (size_t i = 0; i < derivatives.size(); ++i) {
    v1::Derivative* derivative = report.mutable_item()->add_derivatives();
    derivative->set_name("form-" + std::to_string(i) + ".pdf");
    derivative->set_media_type("application/pdf");
    derivative->set_sha256(Sha256Hex(derivatives[i]));
    derivative->set_size(derivatives[i].size());
  }
  return report;
}

v1::ItemSummary FileSummary(const std::string& sender, const std::string& recipient) {
  v1::ItemSummary summary;
  summary.set_kind("file");
  summary.set_sender(sender);
  summary.add_recipients(recipient);
  return summary;
}

std::vector<std::string> EntryIds(const std::vector<v1::InboxEntry>& entries) {
  std::vector<std::string> ids;
  for (const v1::InboxEntry& entry : entries) ids.push_back(entry.id());
  return ids;
}

// True when `s` has the shape of `pattern`: '9' stands for a decimal digit,
// 'f' for a lowercase hex digit, anything else for itself. (Not std::regex:
// GCC 12 warns inside it under the sanitizers, which -Werror turns fatal.)
bool HasShape(std::string_view s, std::string_view pattern) {
  if (s.size() != pattern.size()) return false;
  for (size_t i = 0; i < s.size(); ++i) {
    bool digit = s[i] >= '0' && s[i] <= '9';
    bool hex = digit || (s[i] >= 'a' && s[i] <= 'f');
    if (pattern[i] == '9' ? !digit : pattern[i] == 'f' ? !hex : s[i] != pattern[i]) return false;
  }
  return true;
}

std::vector<std::string> Ids(const std::vector<v1::VaultItem>& items) {
  std::vector<std::string> ids;
  for (const v1::VaultItem& item : items) ids.push_back(item.id());
  return ids;
}

std::vector<std::string> Actions(const std::vector<v1::AuditEntry>& entries) {
  std::vector<std::string> actions;
  for (const v1::AuditEntry& entry : entries) actions.push_back(entry.action());
  return actions;
}

// An id and time in the past, so tests control received_at.
void SetStamp(v1::Report* report, const std::string& day, int serial) {
  char id[64];
  std::snprintf(id, sizeof id, "%sT000000Z-%012d", day.c_str(), serial);
  report->set_item_id(id);
  report->set_received_at(day.substr(0, 4) + "-" + day.substr(4, 2) + "-" + day.substr(6, 2) + "T00:00:00Z");
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string temp = (fs::temp_directory_path() / "mugai-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(temp.data()), nullptr);
    root_ = temp;
    data_dir_ = root_ / "data";  // not there yet: OpenItemStore creates it
    options_.data_dir = data_dir_;
    if (postgres()) {
      std::string schema = PostgresSchema();
      ResetPostgresSchema("DROP SCHEMA IF EXISTS " + schema + " CASCADE", "CREATE SCHEMA " + schema);
      options_.backend = StoreOptions::Backend::kPostgres;
      options_.postgres = std::string(PostgresConninfo()) + " options=-csearch_path=" + schema;
      options_.postgres_connections = 4;
      options_.key_file = root_ / "vault.key";
      WriteFile(options_.key_file, std::string(64, 'a') + "\n");
    }
    store_ = OpenItemStore(options_);
    raw_ = postgres() ? OpenPostgresDatabase(options_.postgres, 1) : OpenSqliteDatabase(data_dir_ / "mugai.db");
  }
  void TearDown() override {
    store_.reset();
    raw_.reset();
    if (postgres()) ResetPostgresSchema("DROP SCHEMA IF EXISTS " + PostgresSchema() + " CASCADE", "");
    fs::remove_all(root_);
  }

  static bool postgres() { return PostgresConninfo() != nullptr; }

  static void ResetPostgresSchema(const std::string& drop, const std::string& create) {
    std::unique_ptr<SqlDatabase> admin = OpenPostgresDatabase(PostgresConninfo(), 1);
    admin->Transact([&](SqlSession& session) {
      session.Query(drop);
      if (!create.empty()) session.Query(create);
    });
  }

  // A statement on the store's database through a connection of its own,
  // as another process (or an attacker with access to it) would.
  SqlRows Sql(const std::string& sql, const std::vector<SqlValue>& params = {}) {
    SqlRows rows;
    raw_->Transact([&](SqlSession& session) { rows = session.Query(sql, params); });
    return rows;
  }
  int64_t Count(const std::string& table) { return Sql("SELECT count(*) FROM " + table).Int(0, 0); }

  void Reopen() {
    store_.reset();
    store_ = OpenItemStore(options_);
  }

  // Records an item holding `original`; returns its id.
  std::string Hold(const std::string& original, const std::string& outcome = "quarantined") {
    v1::Report report = MakeReport(outcome, original);
    store_->Record(&report, &original, MakeSummary("sender@example.jp", {"user@example.lg.jp"}, "subject"), nullptr);
    return report.item_id();
  }
  std::string RecordPlain(const std::string& content, const std::string& outcome = "delivered") {
    v1::Report report = MakeReport(outcome, content);
    store_->Record(&report, nullptr, v1::ItemSummary(), nullptr);
    return report.item_id();
  }

  std::string State(const std::string& id) { return store_->Get(id).value().state(); }

  // Records a submission of `sender` for `recipient`'s inbox, as SubmitFile
  // does; returns Record's answer.
  bool Submit(v1::Report* report, const std::vector<std::string>& derivatives, const std::string& recipient,
              const std::string& sender = "contractor.example.jp", const std::string& submit_key = "",
              const std::string* original = nullptr) {
    InboxDelivery inbox{recipient, "note from " + sender, submit_key, &derivatives};
    return store_->Record(report, original, FileSummary(sender, recipient), &inbox);
  }
  // A delivered submission of `derivatives`; returns its item id.
  std::string Deliver(const std::vector<std::string>& derivatives, const std::string& recipient = "tanaka") {
    v1::Report report = MakeFileReport("delivered", derivatives);
    EXPECT_TRUE(Submit(&report, derivatives, recipient));
    return report.item_id();
  }
  // Every cell of the inbox's content column, as stored.
  std::string InboxContent(const std::string& entry_id) {
    SqlRows rows = Sql("SELECT content FROM inbox WHERE id = $1", {entry_id});
    return rows.empty() || rows.IsNull(0, 0) ? "" : rows.Text(0, 0);
  }

  fs::path root_;
  fs::path data_dir_;
  StoreOptions options_;
  std::unique_ptr<ItemStore> store_;
  std::unique_ptr<SqlDatabase> raw_;
};

TEST_F(StoreTest, OpenCreatesPrivateDirectoryKeyAndWalDatabase) {
  if (postgres()) GTEST_SKIP() << "SQLite's files";
  struct stat st;
  ASSERT_EQ(::stat(data_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  ASSERT_EQ(::stat((data_dir_ / "vault.key").c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0600u);
  EXPECT_EQ(st.st_size, 32);
  EXPECT_EQ(Sql("PRAGMA journal_mode").Text(0, 0), "wal");
  EXPECT_EQ(Sql("PRAGMA user_version").Text(0, 0), "3");
  EXPECT_FALSE(fs::exists(data_dir_ / "blobs"));

  // The same key on the next start.
  std::string key = ReadFile(data_dir_ / "vault.key");
  Reopen();
  EXPECT_EQ(ReadFile(data_dir_ / "vault.key"), key);
}

TEST_F(StoreTest, OpenRefusesANewerSchema) {
  store_.reset();
  raw_->Transact([&](SqlSession& session) { raw_->SetSchemaVersion(session, 4); });
  try {
    OpenItemStore(options_);
    ADD_FAILURE() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("newer"), std::string::npos) << e.what();
  }
}

TEST_F(StoreTest, PostgresStoreNeedsAKeyFile) {
  StoreOptions options;
  options.backend = StoreOptions::Backend::kPostgres;
  options.postgres = "host=/nonexistent";
  try {
    OpenItemStore(options);
    ADD_FAILURE() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("key_file"), std::string::npos) << e.what();
  }
}

TEST_F(StoreTest, ItemWithoutOriginalIsOnlyLogged) {
  std::string id = RecordPlain("hello");
  EXPECT_TRUE(HasShape(id, "99999999T999999Z-ffffffffffff")) << id;
  std::optional<v1::VaultItem> item = store_->Get(id);
  ASSERT_TRUE(item.has_value());
  EXPECT_TRUE(HasShape(item->received_at(), "9999-99-99T99:99:99Z")) << item->received_at();
  // The id's time is the received time.
  std::string compact = item->received_at();
  std::erase(compact, '-');
  std::erase(compact, ':');
  EXPECT_EQ(id.substr(0, 16), compact);
  EXPECT_EQ(item->state(), "");
  EXPECT_EQ(item->outcome(), "delivered");
  EXPECT_EQ(item->report().item_id(), id);

  EXPECT_FALSE(store_->ReadOriginal(id).has_value());
  EXPECT_EQ(Count("blobs"), 0);
  EXPECT_EQ(Count("audit"), 0);
  EXPECT_TRUE(store_->Search({.state = "vault"}).empty());
  EXPECT_EQ(store_->Delete(id, "alice", "why").refusal, Refusal::kWrongState);
  EXPECT_EQ(store_->RequestRelease(id, "alice", "why").refusal, Refusal::kWrongState);
  EXPECT_EQ(store_->Delete("20260101T000000Z-000000000000", "alice", "why").refusal, Refusal::kNoSuchItem);
  EXPECT_FALSE(store_->Get("20260101T000000Z-000000000000").has_value());
}

TEST_F(StoreTest, HeldItemHasEverythingInGetAndLessInSearch) {
  std::string original = "%PDF-1.7 suspicious";
  v1::Report report = MakeReport("quarantined", original, "請求書.pdf");
  AddFinding(report.mutable_item(), "av.detected");
  v1::ItemSummary summary = MakeSummary("taro@example.jp", {"a@example.lg.jp", "b@example.lg.jp"}, "請求書です");
  store_->Record(&report, &original, summary, nullptr);
  ASSERT_FALSE(report.item_id().empty());

  std::optional<v1::VaultItem> got = store_->Get(report.item_id());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id(), report.item_id());
  EXPECT_EQ(got->received_at(), report.received_at());
  EXPECT_EQ(got->name(), "請求書.pdf");
  EXPECT_EQ(got->detected_type(), "application/pdf");
  EXPECT_EQ(got->sha256(), Sha256Hex(original));
  EXPECT_EQ(got->size(), original.size());
  EXPECT_EQ(got->outcome(), "quarantined");
  EXPECT_EQ(std::vector<std::string>(got->finding_codes().begin(), got->finding_codes().end()),
            std::vector<std::string>{"av.detected"});
  EXPECT_EQ(got->state(), "held");
  EXPECT_TRUE(HasShape(got->state_changed_at(), "9999-99-99T99:99:99Z")) << got->state_changed_at();
  EXPECT_EQ(got->summary().SerializeAsString(), summary.SerializeAsString());
  EXPECT_EQ(got->report().SerializeAsString(), report.SerializeAsString());
  EXPECT_FALSE(got->has_release());

  std::vector<v1::VaultItem> found = store_->Search({});
  ASSERT_EQ(found.size(), 1u);
  EXPECT_EQ(found[0].id(), report.item_id());
  EXPECT_EQ(found[0].state(), "held");
  EXPECT_EQ(found[0].summary().sender(), "taro@example.jp");
  EXPECT_EQ(found[0].summary().recipients_size(), 2);
  EXPECT_EQ(found[0].summary().recipients(1), "b@example.lg.jp");
  EXPECT_EQ(found[0].summary().subject(), "請求書です");
  EXPECT_EQ(found[0].summary().kind(), "mail");
  EXPECT_EQ(found[0].summary().headers_size(), 0);
  EXPECT_EQ(found[0].summary().preview(), "");
  EXPECT_FALSE(found[0].has_report());

  EXPECT_EQ(store_->ReadOriginal(report.item_id()), original);
  std::vector<v1::AuditEntry> audit = store_->ReadAudit(0, 0, "");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].seq(), 1u);
  EXPECT_EQ(audit[0].action(), "vault.hold");
  EXPECT_EQ(audit[0].actor(), "mugaid");
  EXPECT_EQ(audit[0].item_id(), report.item_id());
  EXPECT_EQ(audit[0].prev_hash(), std::string(64, '0'));
}

TEST_F(StoreTest, SearchesByEveryFilter) {
  struct Item {
    std::string day, outcome, sender, subject, code;
    std::vector<std::string> recipients;
    bool held;
  };
  const std::vector<Item> items = {
      {"20260101", "quarantined", "Alice@Example.JP", "100% sure", "av.detected", {"x@lg.jp", "Y@LG.JP"}, true},
      {"20260102", "delivered", "bob@example.jp", "1000 sure", "av.detected.heuristic", {"y@lg.jp"}, false},
      {"20260103", "delivered_with_removals", "carol@example.jp", "a_b", "html.script", {"z@lg.jp"}, true},
      {"20260104", "quarantined", "dave@example.jp", "axb", "archive.encrypted", {"w@lg.jp"}, true},
  };
  std::vector<std::string> ids;
  for (size_t i = 0; i < items.size(); ++i) {
    const Item& item = items[i];
    std::string content = "content " + std::to_string(i);
    v1::Report report = MakeReport(item.outcome, content);
    SetStamp(&report, item.day, static_cast<int>(i));
    AddFinding(report.mutable_item(), item.code);
    store_->Record(&report, item.held ? &content : nullptr, MakeSummary(item.sender, item.recipients, item.subject), nullptr);
    ids.push_back(report.item_id());
  }
  std::string deleted = ids[3];
  ASSERT_EQ(store_->Delete(deleted, "alice", "test").refusal, Refusal::kNone);

  auto search = [&](VaultQuery query) { return Ids(store_->Search(query)); };
  using V = std::vector<std::string>;
  EXPECT_EQ(search({}), (V{ids[3], ids[2], ids[1], ids[0]}));
  EXPECT_EQ(search({.received_from = "2026-01-02T00:00:00Z"}), (V{ids[3], ids[2], ids[1]}));
  EXPECT_EQ(search({.received_to = "2026-01-02T00:00:00Z"}), (V{ids[0]}));
  EXPECT_EQ(search({.received_from = "2026-01-02T00:00:00Z", .received_to = "2026-01-04T00:00:00Z"}),
            (V{ids[2], ids[1]}));
  EXPECT_EQ(search({.sender = "alice@example"}), (V{ids[0]}));  // ASCII case-insensitive
  EXPECT_EQ(search({.sender = "EXAMPLE.JP"}).size(), 4u);
  EXPECT_EQ(search({.recipient = "y@lg"}), (V{ids[1], ids[0]}));
  EXPECT_EQ(search({.subject = "100%"}), (V{ids[0]}));   // % is literal
  EXPECT_EQ(search({.subject = "a_b"}), (V{ids[2]}));    // _ is literal
  EXPECT_EQ(search({.subject = "\\"}), (V{}));
  EXPECT_EQ(search({.finding_code = "av.detected"}), (V{ids[0]}));  // exact, not a prefix
  EXPECT_EQ(search({.finding_code = "AV.DETECTED"}), (V{}));
  EXPECT_EQ(search({.finding_code = "detected"}), (V{}));
  EXPECT_EQ(search({.finding_code = "av.detected.heuristic"}), (V{ids[1]}));
  EXPECT_EQ(search({.outcome = "quarantined"}), (V{ids[3], ids[0]}));
  EXPECT_EQ(search({.outcome = "quarantine"}), (V{}));
  EXPECT_EQ(search({.state = "held"}), (V{ids[2], ids[0]}));
  EXPECT_EQ(search({.state = "deleted"}), (V{ids[3]}));
  EXPECT_EQ(search({.state = "vault"}), (V{ids[2], ids[0]}));
  EXPECT_EQ(search({.state = ""}).size(), 4u);
  EXPECT_EQ(search({.outcome = "quarantined", .state = "vault"}), (V{ids[0]}));
  EXPECT_EQ(search({.sender = "example", .outcome = "delivered", .before_id = ids[2]}), (V{ids[1]}));
  EXPECT_EQ(search({.limit = 2}), (V{ids[3], ids[2]}));
  EXPECT_EQ(search({.limit = 2, .before_id = ids[2]}), (V{ids[1], ids[0]}));
  // Values are bound, never spliced.
  EXPECT_EQ(search({.sender = "' OR 1=1 --"}), (V{}));
}

TEST_F(StoreTest, IdsAreUniqueAndSortableAndPagesAreCapped) {
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) ids.push_back(RecordPlain("item " + std::to_string(i), "quarantined"));
  // Strictly increasing in recording order: unique, and sorting is by time.
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]) << i;

  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  EXPECT_EQ(Ids(store_->Search({})), std::vector<std::string>(newest_first.begin(), newest_first.begin() + 100));

  std::string one_more = RecordPlain("one more", "quarantined");
  std::vector<std::string> capped = Ids(store_->Search({.limit = 5000}));
  ASSERT_EQ(capped.size(), 1000u);
  EXPECT_EQ(capped[0], one_more);
  EXPECT_EQ(std::vector<std::string>(capped.begin() + 1, capped.end()),
            std::vector<std::string>(newest_first.begin(), newest_first.begin() + 999));
}

TEST_F(StoreTest, PagesWithBeforeId) {
  std::vector<std::string> held;
  for (int i = 0; i < 25; ++i) {
    held.push_back(Hold("original " + std::to_string(i)));
    RecordPlain("clean " + std::to_string(i));
  }
  std::vector<std::string> paged;
  std::string before;
  std::vector<size_t> page_sizes;
  for (;;) {
    std::vector<std::string> page = Ids(store_->Search({.state = "vault", .limit = 10, .before_id = before}));
    if (page.empty()) break;
    page_sizes.push_back(page.size());
    paged.insert(paged.end(), page.begin(), page.end());
    before = page.back();
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{10, 10, 5}));
  EXPECT_EQ(paged, std::vector<std::string>(held.rbegin(), held.rend()));
}

TEST_F(StoreTest, TamperedSealedOriginalIsRefused) {
  std::string original = "the original bytes, sealed";
  std::string id = Hold(original);
  std::string other = "another original";
  std::string other_id = Hold(other);
  std::string sha256 = Sha256Hex(original);
  std::string sealed = Sql("SELECT sealed FROM blobs WHERE sha256 = $1", {sha256}).Text(0, 0);
  ASSERT_EQ(sealed.size(), original.size() + VaultCipher::kSealOverhead);

  std::string flipped = sealed;
  flipped[20] ^= 1;
  Sql("UPDATE blobs SET sealed = $1 WHERE sha256 = $2", {SqlBytes{flipped}, sha256});
  EXPECT_THROW(store_->ReadOriginal(id), StoreError);

  std::string truncated = sealed.substr(0, sealed.size() - 1);
  Sql("UPDATE blobs SET sealed = $1 WHERE sha256 = $2", {SqlBytes{truncated}, sha256});
  EXPECT_THROW(store_->ReadOriginal(id), StoreError);

  // Another original's sealed bytes, under this one's digest.
  std::string sealed_other = Sql("SELECT sealed FROM blobs WHERE sha256 = $1", {Sha256Hex(other)}).Text(0, 0);
  Sql("UPDATE blobs SET sealed = $1 WHERE sha256 = $2", {SqlBytes{sealed_other}, sha256});
  EXPECT_THROW(store_->ReadOriginal(id), StoreError);

  Sql("DELETE FROM blobs WHERE sha256 = $1", {sha256});
  EXPECT_THROW(store_->ReadOriginal(id), StoreError);

  Sql("UPDATE blobs SET sealed = $1 WHERE sha256 = $2", {SqlBytes{sealed}, Sha256Hex(other)});
  EXPECT_THROW(store_->ReadOriginal(other_id), StoreError);
}

TEST_F(StoreTest, AnotherKeyReadsNothingAndBreaksTheChain) {
  std::string original = "sealed under the first key";
  std::string id = Hold(original);
  store_.reset();
  options_.key_file = root_ / "other.key";
  WriteFile(options_.key_file, std::string(64, 'b'));
  Reopen();
  try {
    store_->ReadOriginal(id);
    ADD_FAILURE() << "read";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("another vault key"), std::string::npos) << e.what();
  }
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_FALSE(verification.ok());
  EXPECT_EQ(verification.first_bad_seq(), 1u);
}

TEST_F(StoreTest, OriginalIsEncryptedAtRest) {
  std::string original;
  for (int i = 0; original.size() < 8192; ++i) original += "秘密の原本 line " + std::to_string(i * 7919) + "\n";
  std::string id = Hold(original);
  EXPECT_EQ(store_->ReadOriginal(id), original);
  std::string needle = original.substr(4000, 16);
  if (postgres()) {
    std::string sealed = Sql("SELECT sealed FROM blobs").Text(0, 0);
    EXPECT_EQ(sealed.find(needle), std::string::npos);
    return;
  }
  store_.reset();  // the WAL may be checkpointed into the database file, or not: both are read
  std::string files;
  for (const fs::directory_entry& entry : fs::directory_iterator(data_dir_)) files += ReadFile(entry.path());
  ASSERT_GT(files.size(), original.size());
  EXPECT_EQ(files.find(original), std::string::npos);
  EXPECT_EQ(files.find(needle), std::string::npos);
}

TEST_F(StoreTest, IdenticalOriginalsAreKeptOnceUntilTheLastReferenceGoes) {
  std::string original = "same attachment, sent twice";
  std::string first = Hold(original);
  std::string second = Hold(original, "delivered_with_removals");
  ASSERT_NE(first, second);
  EXPECT_EQ(Count("blobs"), 1);

  EXPECT_EQ(store_->Delete(first, "alice", "not needed").refusal, Refusal::kNone);
  EXPECT_EQ(State(first), "deleted");
  EXPECT_FALSE(store_->ReadOriginal(first).has_value());
  EXPECT_EQ(Count("blobs"), 1);
  EXPECT_EQ(store_->ReadOriginal(second), original);

  EXPECT_EQ(store_->Delete(second, "alice", "not needed").refusal, Refusal::kNone);
  EXPECT_EQ(Count("blobs"), 0);
  EXPECT_FALSE(store_->ReadOriginal(second).has_value());
  EXPECT_EQ(store_->Delete(second, "alice", "again").refusal, Refusal::kWrongState);
  // The rows stay: the items table is the outcome log.
  EXPECT_EQ(Count("items"), 2);

  // The same original again gets a new blob.
  std::string third = Hold(original);
  EXPECT_EQ(store_->ReadOriginal(third), original);
}

TEST_F(StoreTest, ReleaseWithTheTwoPersonRule) {
  std::string original = "mail to release";
  std::string id = Hold(original);

  ItemStore::Change change = store_->RequestRelease(id, "alice", "the sender confirmed it");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "release_requested");
  EXPECT_EQ(change.item.release().requested_by(), "alice");
  EXPECT_EQ(change.item.release().request_reason(), "the sender confirmed it");
  EXPECT_FALSE(change.item.release().requested_at().empty());
  EXPECT_EQ(store_->RequestRelease(id, "alice", "twice").refusal, Refusal::kWrongState);
  EXPECT_EQ(store_->RecordDelivery(id, "mugaid", true, "250 ok").refusal, Refusal::kWrongState);

  change = store_->DecideRelease(id, "alice", true, "mine", true);
  EXPECT_EQ(change.refusal, Refusal::kSelfApproval);
  EXPECT_EQ(change.item.state(), "release_requested");
  EXPECT_EQ(State(id), "release_requested");

  change = store_->DecideRelease(id, "bob", true, "looks fine", true);
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "released");
  EXPECT_EQ(change.item.release().requested_by(), "alice");
  EXPECT_EQ(change.item.release().decided_by(), "bob");
  EXPECT_EQ(change.item.release().decision(), "approved");
  EXPECT_EQ(change.item.release().decision_reason(), "looks fine");
  EXPECT_FALSE(change.item.release().decided_at().empty());
  EXPECT_EQ(store_->DecideRelease(id, "carol", false, "late", true).refusal, Refusal::kWrongState);
  // Released, the original is still there for the delivery path.
  EXPECT_EQ(store_->ReadOriginal(id), original);

  change = store_->RecordDelivery(id, "mugaid", false, "connection refused");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "released");
  EXPECT_EQ(change.item.release().delivery(), "connection refused");
  EXPECT_EQ(change.item.release().delivered_at(), "");
  change = store_->RecordDelivery(id, "bob", true, "250 2.0.0 queued");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.release().delivery(), "250 2.0.0 queued");
  EXPECT_FALSE(change.item.release().delivered_at().empty());
  EXPECT_EQ(store_->Get(id)->release().SerializeAsString(), change.item.release().SerializeAsString());

  change = store_->Delete(id, "carol", "done");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "deleted");
  EXPECT_EQ(change.item.release().decided_by(), "bob");
  EXPECT_FALSE(store_->ReadOriginal(id).has_value());
  EXPECT_EQ(store_->RequestRelease(id, "alice", "again").refusal, Refusal::kWrongState);
  EXPECT_EQ(store_->RecordDelivery(id, "mugaid", true, "").refusal, Refusal::kWrongState);
  EXPECT_EQ(store_->RequestRelease("no-such-id", "alice", "x").refusal, Refusal::kNoSuchItem);
  EXPECT_EQ(store_->DecideRelease("no-such-id", "bob", true, "x", true).refusal, Refusal::kNoSuchItem);
  EXPECT_EQ(store_->RecordDelivery("no-such-id", "bob", true, "x").refusal, Refusal::kNoSuchItem);

  std::vector<v1::AuditEntry> audit = store_->ReadAudit(0, 0, id);
  EXPECT_EQ(Actions(audit), (std::vector<std::string>{"vault.hold", "release.request", "release.approve",
                                                      "release.delivery_failed", "release.delivered",
                                                      "vault.delete"}));
  EXPECT_EQ(audit[1].actor(), "alice");
  EXPECT_EQ(audit[1].detail(), "the sender confirmed it");
  EXPECT_EQ(audit[2].actor(), "bob");
  EXPECT_EQ(audit[5].detail(), "done");
  EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_F(StoreTest, DenyHoldsAgainAndOnePersonMayDecideWithoutTheRule) {
  std::string id = Hold("mail");
  ASSERT_EQ(store_->RequestRelease(id, "alice", "first").refusal, Refusal::kNone);
  ItemStore::Change change = store_->DecideRelease(id, "bob", false, "no", true);
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "held");
  EXPECT_EQ(change.item.release().decision(), "denied");
  EXPECT_EQ(store_->RecordDelivery(id, "mugaid", true, "").refusal, Refusal::kWrongState);

  change = store_->RequestRelease(id, "alice", "second");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  // A new request starts a new release.
  EXPECT_EQ(change.item.release().decision(), "");
  EXPECT_EQ(change.item.release().request_reason(), "second");
  change = store_->DecideRelease(id, "alice", true, "alone", false);
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "released");
  EXPECT_EQ(change.item.release().decided_by(), "alice");

  std::string other = Hold("other mail");
  ASSERT_EQ(store_->RequestRelease(other, "alice", "x").refusal, Refusal::kNone);
  change = store_->Delete(other, "bob", "withdrawn");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "deleted");
  EXPECT_EQ(Actions(store_->ReadAudit(0, 0, id)),
            (std::vector<std::string>{"vault.hold", "release.request", "release.deny", "release.request",
                                      "release.approve"}));
}

// What the metrics report as the vault's size: items whose original is
// kept, and the distinct sealed originals with their size.
TEST_F(StoreTest, UsageCountsKeptOriginalsOnce) {
  EXPECT_EQ(store_->Usage().items, 0u);
  EXPECT_EQ(store_->Usage().sealed_bytes, 0u);
  const std::string shared = "one original, two items";
  Hold(shared);
  Hold(shared, "delivered_with_removals");
  const std::string requested = Hold("requested");
  ASSERT_EQ(store_->RequestRelease(requested, "alice", "x").refusal, Refusal::kNone);
  const std::string deleted = Hold("deleted");
  ASSERT_EQ(store_->Delete(deleted, "alice", "x").refusal, Refusal::kNone);
  RecordPlain("no original", "delivered");

  const ItemStore::VaultUsage usage = store_->Usage();
  EXPECT_EQ(usage.items, 3u);      // the two sharing one original, the requested one
  EXPECT_EQ(usage.originals, Count("blobs"));
  EXPECT_GT(usage.sealed_bytes, shared.size() + std::string("requested").size());
}

TEST_F(StoreTest, PurgeExpiresByOutcomeRetentionAndIsIdempotent) {
  store_.reset();
  options_.retention_days = 30;
  options_.retention_days_by_outcome = {{"delivered_with_removals", 7}};
  Reopen();
  std::string shared = "shared original";
  std::string quarantined = Hold("quarantined original");
  std::string removals = Hold("removals original", "delivered_with_removals");
  std::string removals_shared = Hold(shared, "delivered_with_removals");
  std::string quarantined_shared = Hold(shared);
  std::string deleted = Hold("deleted original");
  ASSERT_EQ(store_->Delete(deleted, "alice", "x").refusal, Refusal::kNone);
  std::string requested = Hold("requested original", "delivered_with_removals");
  ASSERT_EQ(store_->RequestRelease(requested, "alice", "x").refusal, Refusal::kNone);
  std::string plain = RecordPlain("plain", "delivered_with_removals");
  EXPECT_EQ(Count("blobs"), 4);

  system_clock::time_point now = system_clock::now();
  ItemStore::PurgeResult result = store_->Purge(now + hours(24 * 6));
  EXPECT_EQ(result.expired, 0u);
  EXPECT_EQ(result.blobs_removed, 0u);

  result = store_->Purge(now + hours(24 * 8));
  EXPECT_EQ(result.expired, 3u);        // removals, removals_shared, requested
  EXPECT_EQ(result.blobs_removed, 2u);  // the shared one is still quarantined_shared's
  EXPECT_EQ(State(removals), "expired");
  EXPECT_EQ(State(removals_shared), "expired");
  EXPECT_EQ(State(requested), "expired");
  EXPECT_EQ(State(quarantined), "held");
  EXPECT_EQ(State(deleted), "deleted");
  EXPECT_EQ(State(plain), "");
  EXPECT_FALSE(store_->ReadOriginal(removals).has_value());
  EXPECT_EQ(store_->ReadOriginal(quarantined_shared), shared);
  EXPECT_EQ(Count("blobs"), 2);

  result = store_->Purge(now + hours(24 * 8));
  EXPECT_EQ(result.expired, 0u);
  EXPECT_EQ(result.blobs_removed, 0u);

  result = store_->Purge(now + hours(24 * 31));
  EXPECT_EQ(result.expired, 2u);
  EXPECT_EQ(result.blobs_removed, 2u);
  EXPECT_EQ(State(quarantined), "expired");
  EXPECT_EQ(State(deleted), "deleted");
  EXPECT_EQ(Count("blobs"), 0);
  EXPECT_EQ(Count("items"), 7);
  std::vector<v1::AuditEntry> expiry = store_->ReadAudit(0, 0, quarantined);
  ASSERT_EQ(expiry.size(), 2u);
  EXPECT_EQ(expiry[1].action(), "vault.expire");
  EXPECT_EQ(expiry[1].actor(), "mugaid");
  EXPECT_EQ(expiry[1].detail(), "retention of 30 days");
  EXPECT_EQ(store_->Delete(quarantined, "alice", "x").refusal, Refusal::kWrongState);
  EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_F(StoreTest, ConcurrentPurgesFromTwoStoresExpireEachItemOnce) {
  constexpr int kItems = 40;
  for (int i = 0; i < kItems; ++i) Hold("original " + std::to_string(i % 10));
  // A second store on the same database: another process.
  std::unique_ptr<ItemStore> other = OpenItemStore(options_);
  system_clock::time_point later = system_clock::now() + hours(24 * 31);
  ItemStore::PurgeResult results[2];
  std::thread a([&] { results[0] = store_->Purge(later); });
  std::thread b([&] { results[1] = other->Purge(later); });
  a.join();
  b.join();
  EXPECT_EQ(results[0].expired + results[1].expired, static_cast<uint64_t>(kItems));
  EXPECT_EQ(results[0].blobs_removed + results[1].blobs_removed, 10u);
  EXPECT_EQ(Count("blobs"), 0);
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_TRUE(verification.ok()) << verification.problem();
  EXPECT_EQ(verification.entries(), static_cast<uint64_t>(2 * kItems));
}

TEST_F(StoreTest, StatisticsCountByDayOutcomeAndFindingCode) {
  struct Item {
    std::string day, outcome;
    std::vector<std::string> codes;
  };
  const std::vector<Item> items = {
      {"20260101", "quarantined", {"av.detected"}},
      {"20260101", "quarantined", {"av.detected", "archive.encrypted"}},
      {"20260101", "delivered", {}},
      {"20260102", "delivered_with_removals", {"html.script"}},
      {"20260102", "delivered_with_removals", {"html.script"}},
      {"20260103", "delivered", {}},
  };
  for (size_t i = 0; i < items.size(); ++i) {
    v1::Report report = MakeReport(items[i].outcome, "x");
    SetStamp(&report, items[i].day, static_cast<int>(i));
    for (const std::string& code : items[i].codes) AddFinding(report.mutable_item(), code);
    store_->Record(&report, nullptr, v1::ItemSummary(), nullptr);
  }
  auto rows = [](const std::vector<v1::DailyCount>& counts) {
    std::vector<std::string> text;
    for (const v1::DailyCount& count : counts) {
      text.push_back(count.day() + " " + count.outcome() + " " + count.finding_code() + " " +
                     std::to_string(count.count()));
    }
    return text;
  };
  EXPECT_EQ(rows(store_->Statistics("2026-01-01T00:00:00Z", "2026-01-03T00:00:00Z")),
            (std::vector<std::string>{
                "2026-01-01 delivered  1",
                "2026-01-01 quarantined  2",
                "2026-01-01 quarantined archive.encrypted 1",
                "2026-01-01 quarantined av.detected 2",
                "2026-01-02 delivered_with_removals  2",
                "2026-01-02 delivered_with_removals html.script 2",
            }));
  EXPECT_EQ(rows(store_->Statistics("2026-01-03T00:00:00Z", "")),
            (std::vector<std::string>{"2026-01-03 delivered  1"}));
  EXPECT_EQ(store_->Statistics("", "").size(), 7u);
  EXPECT_TRUE(store_->Statistics("2027-01-01T00:00:00Z", "").empty());
}

class AuditChainTest : public StoreTest {
 protected:
  void SetUp() override {
    StoreTest::SetUp();
    for (int i = 1; i <= 5; ++i) {
      store_->Audit("alice", "call.read", "item-" + std::to_string(i % 2), "entry " + std::to_string(i));
    }
  }
  void ExpectBrokenAt(uint64_t seq) {
    v1::AuditVerification verification = store_->VerifyAudit();
    EXPECT_FALSE(verification.ok());
    EXPECT_EQ(verification.first_bad_seq(), seq) << verification.problem();
    EXPECT_FALSE(verification.problem().empty());
  }
};

TEST_F(AuditChainTest, VerifiesAndReads) {
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_TRUE(verification.ok()) << verification.problem();
  EXPECT_EQ(verification.entries(), 5u);
  std::vector<v1::AuditEntry> entries = store_->ReadAudit(0, 0, "");
  ASSERT_EQ(entries.size(), 5u);
  EXPECT_EQ(verification.head_hash(), entries[4].hash());
  for (size_t i = 0; i < entries.size(); ++i) {
    EXPECT_EQ(entries[i].seq(), i + 1);
    EXPECT_EQ(entries[i].detail(), "entry " + std::to_string(i + 1));
    EXPECT_TRUE(HasShape(entries[i].hash(), std::string(64, 'f'))) << entries[i].hash();
    if (i > 0) {
      EXPECT_EQ(entries[i].prev_hash(), entries[i - 1].hash());
    }
  }
  EXPECT_EQ(store_->ReadAudit(3, 0, "").size(), 2u);
  EXPECT_EQ(store_->ReadAudit(0, 2, "").size(), 2u);
  std::vector<v1::AuditEntry> odd = store_->ReadAudit(0, 0, "item-1");
  ASSERT_EQ(odd.size(), 3u);
  EXPECT_EQ(odd[1].seq(), 3u);
  EXPECT_EQ(store_->ReadAudit(1, 1, "item-1")[0].seq(), 3u);
}

TEST_F(AuditChainTest, EditedEntryFails) {
  Sql("UPDATE audit SET detail = 'nothing happened' WHERE seq = 3");
  ExpectBrokenAt(3);
}

TEST_F(AuditChainTest, EditedActorFailsEvenWithItsHashRecomputedWithoutTheKey) {
  Sql("UPDATE audit SET actor = 'mallory', hash = $1 WHERE seq = 4", {Sha256Hex("forged")});
  ExpectBrokenAt(4);
}

TEST_F(AuditChainTest, RemovedEntryFails) {
  Sql("DELETE FROM audit WHERE seq = 3");
  ExpectBrokenAt(3);
}

TEST_F(AuditChainTest, RemovedFirstEntryFails) {
  Sql("DELETE FROM audit WHERE seq = 1");
  ExpectBrokenAt(1);
}

TEST_F(AuditChainTest, SwappedEntriesFail) {
  // Entry 2's contents under seq 3 and the other way round.
  Sql("UPDATE audit SET seq = 100 WHERE seq = 2");
  Sql("UPDATE audit SET seq = 2 WHERE seq = 3");
  Sql("UPDATE audit SET seq = 3 WHERE seq = 100");
  ExpectBrokenAt(2);
}

TEST_F(AuditChainTest, RemovedLastEntryShowsInTheHeadHash) {
  std::string head = store_->VerifyAudit().head_hash();
  Sql("DELETE FROM audit WHERE seq = 5");
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_TRUE(verification.ok());
  EXPECT_EQ(verification.entries(), 4u);
  EXPECT_NE(verification.head_hash(), head);
}

TEST_F(AuditChainTest, VerifiesAcrossPages) {
  for (int i = 0; i < 1100; ++i) store_->Audit("bob", "call.export", "", std::to_string(i));
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_TRUE(verification.ok()) << verification.problem();
  EXPECT_EQ(verification.entries(), 1105u);
  Sql("UPDATE audit SET detail = 'x' WHERE seq = 1050");
  ExpectBrokenAt(1050);
}

TEST_F(StoreTest, ReopenedStoreSeesAllData) {
  std::string original = "persisted original";
  std::string id = Hold(original);
  std::string plain = RecordPlain("clean");
  Reopen();
  EXPECT_EQ(Ids(store_->Search({.state = "vault"})), std::vector<std::string>{id});
  std::optional<v1::VaultItem> got = store_->Get(id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->report().item_id(), id);
  EXPECT_EQ(store_->ReadOriginal(id), original);
  EXPECT_TRUE(store_->Get(plain).has_value());
  EXPECT_EQ(Count("items"), 2);
  // The chain continues across restarts.
  store_->Audit("alice", "call.read", id, "");
  EXPECT_EQ(store_->VerifyAudit().entries(), 2u);
}

TEST_F(StoreTest, FailedRecordLeavesNoRowBlobOrAuditEntry) {
  std::string original = "blob and audit entry written, row refused";
  v1::Report report = MakeReport("quarantined", original);
  SetStamp(&report, "20260101", 1);
  std::string taken = report.item_id();
  v1::Report first = MakeReport("delivered", "first");
  first.set_item_id(taken);
  first.set_received_at(report.received_at());
  store_->Record(&first, nullptr, v1::ItemSummary(), nullptr);

  EXPECT_THROW(store_->Record(&report, &original, v1::ItemSummary(), nullptr), StoreError);  // duplicate id
  EXPECT_EQ(report.outcome(), "quarantined");
  EXPECT_EQ(Count("items"), 1);
  EXPECT_EQ(Count("blobs"), 0);
  EXPECT_EQ(Count("audit"), 0);
}

TEST_F(StoreTest, MismatchedOriginalIsRefused) {
  std::string original = "these bytes";
  v1::Report report = MakeReport("quarantined", "other bytes");
  EXPECT_THROW(store_->Record(&report, &original, v1::ItemSummary(), nullptr), StoreError);
  EXPECT_TRUE(report.item_id().empty());
  EXPECT_EQ(Count("items"), 0);
  EXPECT_EQ(Count("blobs"), 0);
}

TEST_F(StoreTest, FindingCodesAreCollectedFromChildrenOnce) {
  std::string original = "archive";
  v1::Report report = MakeReport("quarantined", original);
  v1::ItemReport* root = report.mutable_item();
  AddFinding(root, "type.mismatch");
  v1::ItemReport* member = root->add_children();
  AddFinding(member, "av.detected");
  v1::ItemReport* nested = member->add_children();
  AddFinding(nested, "av.detected");
  AddFinding(nested, "archive.encrypted");
  AddFinding(root->add_children(), "type.mismatch");
  store_->Record(&report, &original, v1::ItemSummary(), nullptr);

  std::optional<v1::VaultItem> got = store_->Get(report.item_id());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::vector<std::string>(got->finding_codes().begin(), got->finding_codes().end()),
            (std::vector<std::string>{"type.mismatch", "av.detected", "archive.encrypted"}));
  EXPECT_EQ(Ids(store_->Search({.finding_code = "archive.encrypted"})), std::vector<std::string>{report.item_id()});
}

TEST_F(StoreTest, FindingCodeWithSpaceIsRefused) {
  v1::Report report = MakeReport("quarantined", "x");
  AddFinding(report.mutable_item(), "not a code");
  EXPECT_THROW(store_->Record(&report, nullptr, v1::ItemSummary(), nullptr), StoreError);
  EXPECT_EQ(Count("items"), 0);
}

TEST_F(StoreTest, ConcurrentRecordsAndStateChangesAllLand) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 12;
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> kept;  // id, original
  std::atomic<int> audit_entries{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string actor = "admin" + std::to_string(t);
      std::string approver = "admin" + std::to_string((t + 1) % kThreads);
      for (int i = 0; i < kPerThread; ++i) {
        // Few distinct originals, so threads share blobs.
        std::string original = "payload " + std::to_string((t * kPerThread + i) % 7);
        v1::Report report = MakeReport("quarantined", original);
        ASSERT_NO_THROW(store_->Record(&report, &original, v1::ItemSummary(), nullptr));
        std::string plain = "plain " + std::to_string(t) + " " + std::to_string(i);
        v1::Report logged = MakeReport("delivered", plain);
        ASSERT_NO_THROW(store_->Record(&logged, nullptr, v1::ItemSummary(), nullptr));
        const std::string& id = report.item_id();
        ++audit_entries;
        switch (i % 3) {
          case 0:  // released
            ASSERT_EQ(store_->RequestRelease(id, actor, "r").refusal, Refusal::kNone);
            ASSERT_EQ(store_->DecideRelease(id, approver, true, "ok", true).refusal, Refusal::kNone);
            audit_entries += 2;
            break;
          case 1:  // deleted
            ASSERT_EQ(store_->Delete(id, actor, "d").refusal, Refusal::kNone);
            audit_entries += 1;
            continue;
          default:  // held
            break;
        }
        std::lock_guard lock(mutex);
        kept.emplace_back(id, original);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  EXPECT_EQ(Count("items"), 2 * kThreads * kPerThread);
  std::vector<v1::VaultItem> vault = store_->Search({.state = "vault", .limit = 1000});
  ASSERT_EQ(vault.size(), kept.size());
  std::set<std::string> vault_ids;
  for (const v1::VaultItem& item : vault) vault_ids.insert(item.id());
  for (const auto& [id, original] : kept) {
    EXPECT_TRUE(vault_ids.count(id)) << id;
    EXPECT_EQ(store_->ReadOriginal(id), original);
  }
  EXPECT_EQ(store_->Search({.state = "released", .limit = 1000}).size(), static_cast<size_t>(kThreads * 4));
  EXPECT_EQ(store_->Search({.state = "deleted", .limit = 1000}).size(), static_cast<size_t>(kThreads * 4));
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_TRUE(verification.ok()) << verification.problem();
  EXPECT_EQ(verification.entries(), static_cast<uint64_t>(audit_entries.load()));
  // Every kept original has its blob, and no blob is left without an item.
  EXPECT_EQ(Count("blobs"), Sql("SELECT count(DISTINCT sha256) FROM items WHERE has_original = 1").Int(0, 0));
}

TEST_F(StoreTest, DeliveredSubmissionReachesOnlyItsRecipientsInbox) {
  std::vector<std::string> derivatives = {"first derivative", "second derivative"};
  v1::Report report = MakeFileReport("delivered_with_removals", derivatives);
  ASSERT_TRUE(Submit(&report, derivatives, "tanaka"));
  const std::string& id = report.item_id();

  std::vector<v1::InboxEntry> entries = store_->ListInbox("tanaka", "", 0);
  ASSERT_EQ(EntryIds(entries), (std::vector<std::string>{id + ".0", id + ".1"}));
  const v1::InboxEntry& first = entries[0];
  EXPECT_EQ(first.item_id(), id);
  EXPECT_EQ(first.name(), "form-0.pdf");
  EXPECT_EQ(first.media_type(), "application/pdf");
  EXPECT_EQ(first.sha256(), Sha256Hex(derivatives[0]));
  EXPECT_EQ(first.size(), derivatives[0].size());
  EXPECT_EQ(first.sender(), "contractor.example.jp");
  EXPECT_EQ(first.note(), "note from contractor.example.jp");
  EXPECT_EQ(first.submitted_at(), report.received_at());
  EXPECT_FALSE(first.released_original());
  EXPECT_EQ(first.fetched_at(), "");

  // Another LGWAN identity sees nothing, and cannot fetch or acknowledge.
  EXPECT_TRUE(store_->ListInbox("suzuki", "", 0).empty());
  EXPECT_FALSE(store_->FetchInbox("suzuki", id + ".0").has_value());
  EXPECT_FALSE(store_->AcknowledgeInbox("suzuki", id + ".0"));
  EXPECT_FALSE(store_->FetchInbox("", id + ".0").has_value());

  std::optional<ItemStore::InboxFile> fetched = store_->FetchInbox("tanaka", id + ".1");
  ASSERT_TRUE(fetched.has_value());
  EXPECT_EQ(fetched->bytes, derivatives[1]);
  std::string fetched_at = fetched->entry.fetched_at();
  EXPECT_TRUE(HasShape(fetched_at, "9999-99-99T99:99:99Z")) << fetched_at;
  EXPECT_EQ(store_->ListInbox("tanaka", "", 0)[1].fetched_at(), fetched_at);
  EXPECT_EQ(store_->FetchInbox("tanaka", id + ".1")->entry.fetched_at(), fetched_at);  // the first time

  EXPECT_TRUE(store_->AcknowledgeInbox("tanaka", id + ".1"));
  EXPECT_FALSE(store_->AcknowledgeInbox("tanaka", id + ".1"));
  EXPECT_FALSE(store_->FetchInbox("tanaka", id + ".1").has_value());
  EXPECT_EQ(EntryIds(store_->ListInbox("tanaka", "", 0)), (std::vector<std::string>{id + ".0"}));
  // Acknowledged without a fetch: the recipient says it has it.
  EXPECT_TRUE(store_->AcknowledgeInbox("tanaka", id + ".0"));
  EXPECT_TRUE(store_->ListInbox("tanaka", "", 0).empty());
  EXPECT_FALSE(store_->AcknowledgeInbox("tanaka", "no-such-entry"));

  std::vector<v1::AuditEntry> audit = store_->ReadAudit(0, 0, id);
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action(), "inbox.deliver");
  EXPECT_EQ(audit[0].detail(), "2 derivatives to the inbox of tanaka");
  EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_F(StoreTest, ItemsNotDeliveredMakeNoInboxEntries) {
  std::vector<std::string> derivatives = {"would-be derivative"};
  for (const char* outcome : {"quarantined", "rejected"}) {
    std::string original = std::string("original, ") + outcome;
    v1::Report report = MakeFileReport(outcome, derivatives, original);
    ASSERT_TRUE(Submit(&report, derivatives, "tanaka", "contractor.example.jp", "", &original));
  }
  // Delivered, but without the derivatives' bytes: a plain record.
  v1::Report report = MakeFileReport("delivered", derivatives);
  InboxDelivery without_bytes{"tanaka", "", "", nullptr};
  ASSERT_TRUE(store_->Record(&report, nullptr, FileSummary("contractor.example.jp", "tanaka"), &without_bytes));
  EXPECT_EQ(Count("items"), 3);
  EXPECT_EQ(Count("inbox"), 0);
  EXPECT_TRUE(store_->ListInbox("tanaka", "", 0).empty());
  EXPECT_EQ(Actions(store_->ReadAudit(0, 0, "")), (std::vector<std::string>{"vault.hold", "vault.hold"}));
}

TEST_F(StoreTest, DerivativeUnlikeItsReportIsRefusedAndNothingRecorded) {
  std::vector<std::string> derivatives = {"what the report describes"};
  v1::Report report = MakeFileReport("delivered", derivatives);
  std::vector<std::string> other = {"something else"};
  EXPECT_THROW(Submit(&report, other, "tanaka"), StoreError);
  std::vector<std::string> more = {derivatives[0], "extra"};
  EXPECT_THROW(Submit(&report, more, "tanaka"), StoreError);
  EXPECT_THROW(Submit(&report, derivatives, ""), StoreError);  // no recipient
  EXPECT_EQ(report.item_id(), "");
  EXPECT_EQ(Count("items"), 0);
  EXPECT_EQ(Count("inbox"), 0);
}

TEST_F(StoreTest, SubmitKeyRecordsASubmissionOnce) {
  std::vector<std::string> derivatives = {"derivative of the first try"};
  v1::Report first = MakeFileReport("delivered", derivatives);
  ASSERT_TRUE(Submit(&first, derivatives, "tanaka", "contractor.example.jp", "key-1"));

  // The retry, sanitized again (say, with another outcome): nothing new.
  std::vector<std::string> retried = {"derivative of the retry"};
  v1::Report second = MakeFileReport("delivered_with_removals", retried);
  EXPECT_FALSE(Submit(&second, retried, "tanaka", "contractor.example.jp", "key-1"));
  EXPECT_EQ(second.SerializeAsString(), first.SerializeAsString());
  EXPECT_EQ(Count("items"), 1);
  EXPECT_EQ(Count("inbox"), 1);
  EXPECT_EQ(Count("submissions"), 1);
  EXPECT_EQ(store_->ReadAudit(0, 0, "").size(), 1u);
  // Found before sanitizing, too, and only for its sender.
  std::optional<v1::Report> found = store_->FindSubmission("contractor.example.jp", "key-1");
  ASSERT_TRUE(found.has_value());
  EXPECT_EQ(found->SerializeAsString(), first.SerializeAsString());
  EXPECT_FALSE(store_->FindSubmission("other.example.jp", "key-1").has_value());
  EXPECT_FALSE(store_->FindSubmission("contractor.example.jp", "key-9").has_value());

  // The same key from another sender, and another key, are new submissions.
  v1::Report other_sender = MakeFileReport("delivered", retried);
  EXPECT_TRUE(Submit(&other_sender, retried, "tanaka", "other.example.jp", "key-1"));
  v1::Report other_key = MakeFileReport("delivered", retried);
  EXPECT_TRUE(Submit(&other_key, retried, "tanaka", "contractor.example.jp", "key-2"));
  EXPECT_NE(other_sender.item_id(), first.item_id());
  EXPECT_NE(other_key.item_id(), other_sender.item_id());
  EXPECT_EQ(store_->ListInbox("tanaka", "", 0).size(), 3u);

  // A key recorded with an item that was not delivered answers the same.
  std::string original = "quarantined original";
  v1::Report held = MakeFileReport("quarantined", {}, original);
  ASSERT_TRUE(Submit(&held, {}, "tanaka", "contractor.example.jp", "key-3", &original));
  v1::Report again = MakeFileReport("quarantined", {}, original);
  EXPECT_FALSE(Submit(&again, {}, "tanaka", "contractor.example.jp", "key-3", &original));
  EXPECT_EQ(again.item_id(), held.item_id());
  EXPECT_EQ(Count("items"), 4);
}

TEST_F(StoreTest, AcknowledgementDeletesTheBytesUnlessKept) {
  std::string id = Deliver({"deleted on acknowledgement"});
  ASSERT_NE(InboxContent(id + ".0"), "");
  ASSERT_TRUE(store_->AcknowledgeInbox("tanaka", id + ".0"));
  EXPECT_TRUE(Sql("SELECT content FROM inbox WHERE id = $1", {id + ".0"}).IsNull(0, 0));
  EXPECT_TRUE(HasShape(Sql("SELECT acknowledged_at FROM inbox WHERE id = $1", {id + ".0"}).Text(0, 0),
                       "9999-99-99T99:99:99Z"));

  store_.reset();
  options_.keep_acknowledged = true;
  Reopen();
  std::string kept = Deliver({"kept after acknowledgement"});
  ASSERT_TRUE(store_->AcknowledgeInbox("tanaka", kept + ".0"));
  EXPECT_NE(InboxContent(kept + ".0"), "");
  // Kept, but gone from the inbox all the same.
  EXPECT_FALSE(store_->AcknowledgeInbox("tanaka", kept + ".0"));
  EXPECT_FALSE(store_->FetchInbox("tanaka", kept + ".0").has_value());
  EXPECT_TRUE(store_->ListInbox("tanaka", "", 0).empty());
}

TEST_F(StoreTest, PurgeExpiresInboxEntriesPastTheirRetention) {
  store_.reset();
  options_.inbox_retention_days = 14;
  options_.keep_acknowledged = true;
  Reopen();
  std::vector<std::string> derivatives = {"old, unfetched", "old, acknowledged and kept"};
  v1::Report old_report = MakeFileReport("delivered", derivatives);
  SetStamp(&old_report, "20250101", 1);
  ASSERT_TRUE(Submit(&old_report, derivatives, "tanaka"));
  const std::string old = old_report.item_id();
  ASSERT_TRUE(store_->AcknowledgeInbox("tanaka", old + ".1"));
  std::string recent = Deliver({"recent"});

  ItemStore::PurgeResult result = store_->Purge(system_clock::now());
  EXPECT_EQ(result.inbox_expired, 2u);
  EXPECT_EQ(result.expired, 0u);
  EXPECT_EQ(InboxContent(old + ".0"), "");
  EXPECT_EQ(InboxContent(old + ".1"), "");
  EXPECT_NE(Sql("SELECT expired_at FROM inbox WHERE id = $1", {old + ".0"}).Text(0, 0), "");
  EXPECT_EQ(EntryIds(store_->ListInbox("tanaka", "", 0)), (std::vector<std::string>{recent + ".0"}));
  EXPECT_FALSE(store_->FetchInbox("tanaka", old + ".0").has_value());
  EXPECT_FALSE(store_->AcknowledgeInbox("tanaka", old + ".0"));
  EXPECT_EQ(store_->Purge(system_clock::now()).inbox_expired, 0u);

  EXPECT_EQ(store_->Purge(system_clock::now() + hours(24 * 13)).inbox_expired, 0u);
  EXPECT_EQ(store_->Purge(system_clock::now() + hours(24 * 15)).inbox_expired, 1u);
  EXPECT_TRUE(store_->ListInbox("tanaka", "", 0).empty());
  EXPECT_EQ(Count("inbox"), 3);  // the rows stay: the record of what crossed

  std::vector<v1::AuditEntry> audit = store_->ReadAudit(0, 0, old);
  ASSERT_EQ(Actions(audit), (std::vector<std::string>{"inbox.deliver", "inbox.expire", "inbox.expire"}));
  EXPECT_EQ(audit[1].actor(), "mugaid");
  EXPECT_NE(audit[1].detail().find("of tanaka: retention of 14 days"), std::string::npos) << audit[1].detail();
  EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_F(StoreTest, ReleaseToInboxDeliversAReleasedFileOriginalOnce) {
  std::string original = "the quarantined original";
  v1::Report report = MakeFileReport("quarantined", {}, original);
  ASSERT_TRUE(Submit(&report, {}, "tanaka", "contractor.example.jp", "", &original));
  const std::string id = report.item_id();

  EXPECT_EQ(store_->ReleaseToInbox(id, "bob").refusal, Refusal::kWrongState);  // held
  ASSERT_EQ(store_->RequestRelease(id, "alice", "needed").refusal, Refusal::kNone);
  EXPECT_EQ(store_->ReleaseToInbox(id, "bob").refusal, Refusal::kWrongState);  // only requested
  ASSERT_EQ(store_->DecideRelease(id, "bob", true, "ok", true).refusal, Refusal::kNone);
  EXPECT_EQ(store_->ReleaseToInbox("no-such-item", "bob").refusal, Refusal::kNoSuchItem);
  EXPECT_TRUE(store_->ListInbox("tanaka", "", 0).empty());

  ItemStore::Change change = store_->ReleaseToInbox(id, "bob");
  ASSERT_EQ(change.refusal, Refusal::kNone);
  EXPECT_EQ(change.item.state(), "released");
  EXPECT_EQ(change.item.release().delivery(), "in the LGWAN inbox of tanaka");
  EXPECT_NE(change.item.release().delivered_at(), "");
  EXPECT_EQ(store_->ReleaseToInbox(id, "bob").refusal, Refusal::kWrongState);  // delivered already

  std::vector<v1::InboxEntry> entries = store_->ListInbox("tanaka", "", 0);
  ASSERT_EQ(entries.size(), 1u);
  EXPECT_EQ(entries[0].id(), id + ".original");
  EXPECT_TRUE(entries[0].released_original());
  EXPECT_EQ(entries[0].name(), "formxcod.docx");  // made safe: no path, no bidi override
  EXPECT_EQ(entries[0].sha256(), Sha256Hex(original));
  EXPECT_EQ(entries[0].sender(), "contractor.example.jp");
  EXPECT_EQ(entries[0].note(), "original released from the vault by bob");
  EXPECT_TRUE(store_->ListInbox("suzuki", "", 0).empty());
  EXPECT_FALSE(store_->FetchInbox("suzuki", id + ".original").has_value());
  EXPECT_EQ(store_->FetchInbox("tanaka", id + ".original")->bytes, original);
  EXPECT_EQ(Actions(store_->ReadAudit(0, 0, id)),
            (std::vector<std::string>{"vault.hold", "release.request", "release.approve", "release.delivered"}));

  // The inbox has its own sealed copy: the vault's may go.
  ASSERT_EQ(store_->Delete(id, "alice", "done").refusal, Refusal::kNone);
  EXPECT_EQ(Count("blobs"), 0);
  EXPECT_EQ(store_->FetchInbox("tanaka", id + ".original")->bytes, original);
  EXPECT_TRUE(store_->VerifyAudit().ok());
}

TEST_F(StoreTest, ReleaseToInboxRefusesMailAndItemsWithoutRecipient) {
  std::string mail = Hold("a held message");  // kind "mail"
  std::string original = "file without a recipient";
  v1::Report report = MakeFileReport("quarantined", {}, original);
  v1::ItemSummary summary = FileSummary("contractor.example.jp", "");
  summary.clear_recipients();
  ASSERT_TRUE(store_->Record(&report, &original, summary, nullptr));
  for (const std::string& id : {mail, report.item_id()}) {
    ASSERT_EQ(store_->RequestRelease(id, "alice", "r").refusal, Refusal::kNone);
    ASSERT_EQ(store_->DecideRelease(id, "bob", true, "ok", true).refusal, Refusal::kNone);
    EXPECT_EQ(store_->ReleaseToInbox(id, "bob").refusal, Refusal::kWrongState) << id;
    EXPECT_EQ(store_->Get(id)->release().delivered_at(), "");
  }
  EXPECT_EQ(Count("inbox"), 0);
}

TEST_F(StoreTest, InboxContentIsEncryptedAtRest) {
  if (postgres()) GTEST_SKIP() << "reads SQLite's files";
  std::string derivative = "PLAINTEXT DERIVATIVE MARKER 4711";
  std::string id = Deliver({derivative});
  EXPECT_EQ(InboxContent(id + ".0").substr(0, 4), "MGV1");
  store_.reset();
  raw_.reset();
  std::string files;
  for (const fs::directory_entry& entry : fs::directory_iterator(data_dir_)) files += ReadFile(entry.path());
  EXPECT_EQ(files.find(derivative), std::string::npos);
  EXPECT_NE(files.find(Sha256Hex(derivative)), std::string::npos);  // the row is there
}

TEST_F(StoreTest, ListInboxPagesInOrderAfterAnId) {
  std::vector<std::string> many;
  for (int i = 0; i < 12; ++i) many.push_back("derivative " + std::to_string(i));
  std::string first = Deliver(many);
  std::string second = Deliver({"second item"});
  std::vector<std::string> expected;
  for (int i = 0; i < 12; ++i) expected.push_back(first + "." + std::to_string(i));  // .10 after .9
  expected.push_back(second + ".0");
  EXPECT_EQ(EntryIds(store_->ListInbox("tanaka", "", 0)), expected);

  std::vector<std::string> paged;
  std::string after;
  for (;;) {
    std::vector<v1::InboxEntry> page = store_->ListInbox("tanaka", after, 5);
    if (page.empty()) break;
    EXPECT_LE(page.size(), 5u);
    for (const v1::InboxEntry& entry : page) paged.push_back(entry.id());
    after = page.back().id();
  }
  EXPECT_EQ(paged, expected);
  EXPECT_EQ(EntryIds(store_->ListInbox("tanaka", first, 0)), (std::vector<std::string>{second + ".0"}));
  EXPECT_EQ(EntryIds(store_->ListInbox("tanaka", first + ".original", 2)),
            (std::vector<std::string>{first + ".0", first + ".1"}));
  EXPECT_TRUE(store_->ListInbox("tanaka", "~", 0).empty());
}

TEST_F(StoreTest, ConcurrentDeliveriesAndAcknowledgementsAllLand) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 10;
  std::vector<std::thread> threads;
  std::atomic<int> failures{0};
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      std::string recipient = "user" + std::to_string(t % 4);  // two threads per inbox
      for (int i = 0; i < kPerThread; ++i) {
        std::vector<std::string> derivatives = {"t" + std::to_string(t) + " i" + std::to_string(i) + " a",
                                                "t" + std::to_string(t) + " i" + std::to_string(i) + " b"};
        v1::Report report = MakeFileReport("delivered", derivatives, "original " + std::to_string(t * 100 + i));
        std::string key = "key-" + std::to_string(i);
        std::string sender = "sender" + std::to_string(t);
        try {
          if (!Submit(&report, derivatives, recipient, sender, key)) ++failures;
          if (Submit(&report, derivatives, recipient, sender, key)) ++failures;  // the retry
          std::optional<ItemStore::InboxFile> file = store_->FetchInbox(recipient, report.item_id() + ".0");
          if (!file || file->bytes != derivatives[0]) ++failures;
          if (!store_->AcknowledgeInbox(recipient, report.item_id() + ".0")) ++failures;
        } catch (const StoreError& e) {
          ADD_FAILURE() << e.what();
        }
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(failures.load(), 0);
  EXPECT_EQ(Count("items"), kThreads * kPerThread);
  EXPECT_EQ(Count("submissions"), kThreads * kPerThread);
  EXPECT_EQ(Count("inbox"), 2 * kThreads * kPerThread);
  for (int r = 0; r < 4; ++r) {
    std::vector<v1::InboxEntry> left = store_->ListInbox("user" + std::to_string(r), "", 1000);
    EXPECT_EQ(left.size(), static_cast<size_t>(2 * kPerThread));
    for (const v1::InboxEntry& entry : left) EXPECT_EQ(entry.id().substr(entry.id().size() - 2), ".1");
  }
  v1::AuditVerification verification = store_->VerifyAudit();
  EXPECT_TRUE(verification.ok()) << verification.problem();
  EXPECT_EQ(verification.entries(), static_cast<uint64_t>(kThreads * kPerThread));
}

TEST_F(StoreTest, MigratesASchema2DatabaseToTheInbox) {
  // A schema-2 database, made by the statements release 2 ran, with one
  // item in it.
  store_.reset();
  raw_.reset();
  if (postgres()) {
    ResetPostgresSchema("DROP SCHEMA IF EXISTS " + PostgresSchema() + " CASCADE", "CREATE SCHEMA " + PostgresSchema());
  } else {
    fs::remove(data_dir_ / "mugai.db");
    fs::remove(data_dir_ / "mugai.db-wal");
    fs::remove(data_dir_ / "mugai.db-shm");
  }
  std::unique_ptr<SqlDatabase> db =
      postgres() ? OpenPostgresDatabase(options_.postgres, 1) : OpenSqliteDatabase(data_dir_ / "mugai.db");
  const char* blob = postgres() ? "BYTEA" : "BLOB";
  v1::Report old = MakeReport("delivered", "from schema 2");
  SetStamp(&old, "20250101", 7);
  std::string serialized = old.SerializeAsString();
  db->Transact([&](SqlSession& session) {
    ASSERT_EQ(db->SchemaVersion(session), 0);
    session.Query(std::string("CREATE TABLE items (id TEXT PRIMARY KEY, received_at TEXT NOT NULL, name TEXT, "
                              "detected_type TEXT, sha256 TEXT NOT NULL, size BIGINT NOT NULL, outcome TEXT NOT NULL, "
                              "finding_codes TEXT NOT NULL, has_original INTEGER NOT NULL, report ") +
                  blob + " NOT NULL)");
    session.Query("CREATE INDEX items_by_outcome ON items (outcome, id)");
    session.Query("CREATE INDEX items_by_original ON items (sha256) WHERE has_original = 1");
    for (const char* column : {"state", "state_changed_at", "kind", "sender", "recipients", "subject"}) {
      session.Query(std::string("ALTER TABLE items ADD COLUMN ") + column + " TEXT NOT NULL DEFAULT ''");
    }
    session.Query(std::string("ALTER TABLE items ADD COLUMN summary ") + blob);
    session.Query(std::string("ALTER TABLE items ADD COLUMN release_info ") + blob);
    session.Query("CREATE INDEX items_by_state ON items (state, id)");
    session.Query("CREATE INDEX items_by_received_at ON items (received_at)");
    session.Query(std::string("CREATE TABLE blobs (sha256 TEXT PRIMARY KEY, sealed ") + blob + " NOT NULL)");
    session.Query(
        "CREATE TABLE audit (seq BIGINT PRIMARY KEY, at TEXT NOT NULL, actor TEXT NOT NULL, action TEXT NOT NULL, "
        "item_id TEXT NOT NULL, detail TEXT NOT NULL, prev_hash TEXT NOT NULL, hash TEXT NOT NULL)");
    session.Query("CREATE INDEX audit_by_item ON audit (item_id, seq)");
    session.Query(
        "INSERT INTO items (id, received_at, name, detected_type, sha256, size, outcome, finding_codes, has_original, "
        "report, kind) VALUES ($1, $2, 'old.pdf', 'application/pdf', $3, 13, 'delivered', '', 0, $4, 'file')",
        {old.item_id(), old.received_at(), old.item().sha256(), SqlBytes{serialized}});
    db->SetSchemaVersion(session, 2);
  });
  db.reset();

  Reopen();
  raw_ = postgres() ? OpenPostgresDatabase(options_.postgres, 1) : OpenSqliteDatabase(data_dir_ / "mugai.db");
  raw_->Transact([&](SqlSession& session) { EXPECT_EQ(raw_->SchemaVersion(session), 3); });
  EXPECT_EQ(store_->Get(old.item_id())->report().SerializeAsString(), serialized);
  EXPECT_EQ(Count("inbox"), 0);
  std::string id = Deliver({"after the migration"});
  EXPECT_EQ(store_->FetchInbox("tanaka", id + ".0")->bytes, "after the migration");
  Reopen();  // at the current version: nothing to do
  EXPECT_EQ(store_->ListInbox("tanaka", "", 0).size(), 1u);
}

TEST_F(StoreTest, LostVaultKeyIsNotReplaced) {
  if (postgres()) GTEST_SKIP() << "the data directory's key file is SQLite's";
  Hold("sealed under the lost key");
  store_.reset();
  fs::remove(data_dir_ / "vault.key");
  try {
    OpenItemStore(options_);
    ADD_FAILURE() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("restore"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(fs::exists(data_dir_ / "vault.key"));
}

// The schema and rows the first release (schema 1) wrote, with its
// originals in plaintext files under <data_dir>/blobs.
void MakeV1Database(const fs::path& data_dir, const std::string& original) {
  fs::create_directories(data_dir / "blobs" / "tmp");
  std::string sha256 = Sha256Hex(original);
  fs::create_directories(data_dir / "blobs" / sha256.substr(0, 2));
  WriteFile(data_dir / "blobs" / sha256.substr(0, 2) / sha256, original);
  v1::Report held = MakeReport("quarantined", original);
  SetStamp(&held, "20250101", 1);
  v1::Report plain = MakeReport("delivered", "plain");
  SetStamp(&plain, "20250101", 2);
  sqlite3* raw = nullptr;
  ASSERT_EQ(sqlite3_open((data_dir / "mugai.db").c_str(), &raw), SQLITE_OK);
  std::unique_ptr<sqlite3, decltype(&sqlite3_close)> db(raw, &sqlite3_close);
  ASSERT_EQ(sqlite3_exec(db.get(), R"sql(
CREATE TABLE items (
  id TEXT PRIMARY KEY,
  received_at TEXT NOT NULL,
  name TEXT,
  detected_type TEXT,
  sha256 TEXT NOT NULL,
  size INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  finding_codes TEXT NOT NULL,
  has_original INTEGER NOT NULL,
  report BLOB NOT NULL
);
CREATE INDEX items_by_outcome ON items (outcome, id);
CREATE INDEX items_by_original ON items (sha256) WHERE has_original = 1;
PRAGMA user_version = 1;
)sql",
                         nullptr, nullptr, nullptr),
            SQLITE_OK);
  for (const v1::Report* report : {&held, &plain}) {
    sqlite3_stmt* raw_stmt = nullptr;
    ASSERT_EQ(sqlite3_prepare_v2(db.get(),
                                 "INSERT INTO items VALUES (?1, ?2, 'v1.pdf', 'application/pdf', ?3, ?4, ?5, '', ?6, ?7)",
                                 -1, &raw_stmt, nullptr),
              SQLITE_OK);
    std::unique_ptr<sqlite3_stmt, decltype(&sqlite3_finalize)> stmt(raw_stmt, &sqlite3_finalize);
    std::string serialized = report->SerializeAsString();
    sqlite3_bind_text(stmt.get(), 1, report->item_id().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt.get(), 2, report->received_at().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_text(stmt.get(), 3, report->item().sha256().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int64(stmt.get(), 4, static_cast<int64_t>(report->item().size()));
    sqlite3_bind_text(stmt.get(), 5, report->outcome().c_str(), -1, SQLITE_TRANSIENT);
    sqlite3_bind_int(stmt.get(), 6, report == &held ? 1 : 0);
    sqlite3_bind_blob(stmt.get(), 7, serialized.data(), static_cast<int>(serialized.size()), SQLITE_TRANSIENT);
    ASSERT_EQ(sqlite3_step(stmt.get()), SQLITE_DONE);
  }
}

class TempDirTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string temp = (fs::temp_directory_path() / "mugai-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(temp.data()), nullptr);
    root_ = temp;
  }
  void TearDown() override { fs::remove_all(root_); }

  fs::path root_;
};

// SQLite only: PostgreSQL databases start at schema 2.
class MigrationTest : public TempDirTest {
 protected:
  void SetUp() override {
    TempDirTest::SetUp();
    options_.data_dir = root_ / "data";
    ASSERT_NE(::mkdir(options_.data_dir.c_str(), 0700), -1);
  }

  StoreOptions options_;
};

TEST_F(MigrationTest, SealsTheV1OriginalsIntoTheDatabase) {
  std::string original = "a v1 original, in plaintext on disk";
  ASSERT_NO_FATAL_FAILURE(MakeV1Database(options_.data_dir, original));
  std::unique_ptr<ItemStore> store = OpenItemStore(options_);
  EXPECT_FALSE(fs::exists(options_.data_dir / "blobs"));

  std::string held = "20250101T000000Z-000000000001";
  std::optional<v1::VaultItem> item = store->Get(held);
  ASSERT_TRUE(item.has_value());
  EXPECT_EQ(item->state(), "held");
  EXPECT_EQ(item->state_changed_at(), "2025-01-01T00:00:00Z");
  EXPECT_EQ(item->name(), "v1.pdf");
  EXPECT_EQ(item->report().item_id(), held);
  EXPECT_EQ(store->ReadOriginal(held), original);
  EXPECT_EQ(store->Get("20250101T000000Z-000000000002")->state(), "");
  std::vector<v1::AuditEntry> audit = store->ReadAudit(0, 0, "");
  ASSERT_EQ(audit.size(), 1u);
  EXPECT_EQ(audit[0].action(), "vault.hold");
  EXPECT_EQ(audit[0].item_id(), held);
  EXPECT_TRUE(store->VerifyAudit().ok());

  // The state machine works on migrated items.
  EXPECT_EQ(store->Delete(held, "alice", "old").refusal, ItemStore::Refusal::kNone);
  EXPECT_FALSE(store->ReadOriginal(held).has_value());
  std::string files;
  for (const fs::directory_entry& entry : fs::directory_iterator(options_.data_dir)) files += ReadFile(entry.path());
  store.reset();
  EXPECT_EQ(files.find(original), std::string::npos);
}

TEST_F(MigrationTest, RefusesAV1DatabaseWhoseOriginalIsMissing) {
  std::string original = "lost";
  ASSERT_NO_FATAL_FAILURE(MakeV1Database(options_.data_dir, original));
  std::string sha256 = Sha256Hex(original);
  fs::remove(options_.data_dir / "blobs" / sha256.substr(0, 2) / sha256);
  try {
    OpenItemStore(options_);
    ADD_FAILURE() << "opened";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("missing"), std::string::npos) << e.what();
  }
  // Nothing changed: the next start (with the file restored) can migrate.
  std::unique_ptr<SqlDatabase> db = OpenSqliteDatabase(options_.data_dir / "mugai.db");
  db->Transact([&](SqlSession& session) { EXPECT_EQ(db->SchemaVersion(session), 1); });
  EXPECT_TRUE(fs::exists(options_.data_dir / "blobs"));
}

class VaultKeyTest : public TempDirTest {
 protected:
  std::string Load(std::string_view content, fs::perms perms = fs::perms::owner_read | fs::perms::owner_write) {
    fs::path file = root_ / "key";
    fs::remove(file);
    WriteFile(file, content, perms);
    return LoadVaultKey(file);
  }
};

TEST_F(VaultKeyTest, ReadsRawAndHexKeys) {
  std::string raw(32, '\0');
  for (size_t i = 0; i < raw.size(); ++i) raw[i] = static_cast<char>(i * 9 + 1);
  EXPECT_EQ(Load(raw), raw);
  std::string hex = "000102030405060708090a0b0c0d0e0f101112131415161718191A1B1C1D1E1F";
  std::string expected;
  for (int i = 0; i < 32; ++i) expected.push_back(static_cast<char>(i));
  EXPECT_EQ(Load(hex), expected);
  EXPECT_EQ(Load(hex + "\n"), expected);
  EXPECT_EQ(Load(hex, fs::perms::owner_read | fs::perms::group_read), expected);  // warned
}

TEST_F(VaultKeyTest, RefusesAnythingElse) {
  EXPECT_THROW(Load(""), StoreError);
  EXPECT_THROW(Load(std::string(31, 'k')), StoreError);
  EXPECT_THROW(Load(std::string(33, 'k')), StoreError);
  EXPECT_THROW(Load(std::string(63, 'a')), StoreError);
  EXPECT_THROW(Load(std::string(63, 'a') + "\n"), StoreError);
  EXPECT_THROW(Load(std::string(64, 'a') + "\n\n"), StoreError);
  EXPECT_THROW(Load(std::string(64, 'a') + " "), StoreError);
  EXPECT_THROW(Load(std::string(63, 'a') + "g"), StoreError);
  EXPECT_THROW(Load(std::string(1000, 'a')), StoreError);
  EXPECT_THROW(LoadVaultKey(root_ / "absent"), StoreError);
  try {
    Load(std::string(64, 'a'), fs::perms::owner_read | fs::perms::others_read);
    ADD_FAILURE() << "loaded";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("every user"), std::string::npos) << e.what();
  }
}

TEST(VaultCipherTest, SealsAndOpens) {
  VaultCipher cipher(std::string(32, 'k'));
  std::string original = "original bytes";
  std::string sha256 = Sha256Hex(original);
  std::string sealed = cipher.Seal(sha256, original);
  EXPECT_EQ(sealed.substr(0, 4), "MGV1");
  EXPECT_EQ(sealed.size(), original.size() + VaultCipher::kSealOverhead);
  EXPECT_NE(cipher.Seal(sha256, original), sealed);  // a fresh nonce each time
  EXPECT_EQ(cipher.Open(sha256, sealed), original);
  EXPECT_EQ(cipher.Open(Sha256Hex(""), cipher.Seal(Sha256Hex(""), "")), "");

  EXPECT_THROW(cipher.Open(Sha256Hex("other"), sealed), StoreError);  // the digest is authenticated
  EXPECT_THROW(cipher.Open(sha256, sealed.substr(0, 10)), StoreError);
  std::string unknown = sealed;
  unknown[3] = '9';
  EXPECT_THROW(cipher.Open(sha256, unknown), StoreError);
  // Sealed under the right key, but for content that is not the digest's.
  EXPECT_THROW(cipher.Open(sha256, cipher.Seal(sha256, "not the original")), StoreError);
  EXPECT_THROW(VaultCipher(std::string(32, 'j')).Open(sha256, sealed), StoreError);
  EXPECT_THROW(VaultCipher(std::string(31, 'k')), StoreError);

  EXPECT_EQ(cipher.AuditHash("m"), VaultCipher(std::string(32, 'k')).AuditHash("m"));
  EXPECT_NE(cipher.AuditHash("m"), VaultCipher(std::string(32, 'j')).AuditHash("m"));
}

}  // namespace
}  // namespace mugai
