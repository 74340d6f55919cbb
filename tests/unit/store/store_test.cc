#include <sqlite3.h>
#include <stdlib.h>
#include <sys/stat.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "sanitizers/core/sha256.h"
#include "service/store/blob_store.h"
#include "service/store/item_store.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

v1::Report MakeReport(const std::string& outcome, std::string_view original,
                      const std::string& name = "invoice.pdf") {
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

// Runs one statement on the store's database through a separate connection,
// as another process (or an attacker with disk access) would; returns the
// first column of the first row, if any.
std::string Sql(const fs::path& db_file, const std::string& sql) {
  sqlite3* db = nullptr;
  EXPECT_EQ(sqlite3_open(db_file.c_str(), &db), SQLITE_OK);
  sqlite3_stmt* stmt = nullptr;
  std::string result;
  EXPECT_EQ(sqlite3_prepare_v2(db, sql.c_str(), -1, &stmt, nullptr), SQLITE_OK) << sqlite3_errmsg(db);
  int rc = sqlite3_step(stmt);
  EXPECT_TRUE(rc == SQLITE_ROW || rc == SQLITE_DONE) << sqlite3_errmsg(db);
  if (rc == SQLITE_ROW && sqlite3_column_text(stmt, 0) != nullptr) {
    result = reinterpret_cast<const char*>(sqlite3_column_text(stmt, 0));
  }
  sqlite3_finalize(stmt);
  sqlite3_close(db);
  return result;
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

std::vector<std::string> Ids(const std::vector<v1::QuarantineItem>& items) {
  std::vector<std::string> ids;
  for (const v1::QuarantineItem& item : items) ids.push_back(item.id());
  return ids;
}

class StoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    std::string temp = (fs::temp_directory_path() / "mugai-store-XXXXXX").string();
    ASSERT_NE(::mkdtemp(temp.data()), nullptr);
    root_ = temp;
    data_dir_ = root_ / "data";  // not there yet: Open creates it
    store_ = ItemStore::Open(data_dir_);
  }
  void TearDown() override {
    store_.reset();
    fs::remove_all(root_);
  }

  fs::path BlobPath(std::string_view original) const {
    std::string sha256 = Sha256Hex(original);
    return data_dir_ / "blobs" / sha256.substr(0, 2) / sha256;
  }

  // Records a quarantined item holding `original`; returns its id.
  std::string Quarantine(const std::string& original) {
    v1::Report report = MakeReport("quarantined", original);
    store_->Record(&report, &original);
    return report.item_id();
  }

  fs::path root_;
  fs::path data_dir_;
  std::unique_ptr<ItemStore> store_;
};

TEST_F(StoreTest, OpenCreatesPrivateDirectoryAndVersionedWalDatabase) {
  struct stat st;
  ASSERT_EQ(::stat(data_dir_.c_str(), &st), 0);
  EXPECT_EQ(st.st_mode & 0777, 0700u);
  fs::path db = data_dir_ / "mugai.db";
  EXPECT_EQ(Sql(db, "PRAGMA journal_mode"), "wal");
  EXPECT_EQ(Sql(db, "PRAGMA user_version"), "1");
  EXPECT_TRUE(fs::is_directory(data_dir_ / "blobs" / "tmp"));
}

TEST_F(StoreTest, OpenRefusesANewerSchema) {
  store_.reset();
  Sql(data_dir_ / "mugai.db", "PRAGMA user_version = 2");
  EXPECT_THROW(ItemStore::Open(data_dir_), StoreError);
}

TEST_F(StoreTest, DeliveredItemIsRecordedWithoutBlobAndNotQuarantined) {
  std::string content = "hello";
  v1::Report report = MakeReport("delivered", content);
  store_->Record(&report, nullptr);

  EXPECT_TRUE(HasShape(report.item_id(), "99999999T999999Z-ffffffffffff")) << report.item_id();
  EXPECT_TRUE(HasShape(report.received_at(), "9999-99-99T99:99:99Z")) << report.received_at();
  // The id's time is the received time.
  std::string compact = report.received_at();
  std::erase(compact, '-');
  std::erase(compact, ':');
  EXPECT_EQ(report.item_id().substr(0, 16), compact);

  EXPECT_EQ(Sql(data_dir_ / "mugai.db", "SELECT outcome FROM items"), "delivered");
  EXPECT_TRUE(store_->ListQuarantined(0, "").empty());
  EXPECT_FALSE(store_->GetQuarantined(report.item_id()).has_value());
  EXPECT_FALSE(store_->ReadOriginal(report.item_id()).has_value());
  EXPECT_FALSE(store_->DeleteQuarantined(report.item_id()));
  EXPECT_FALSE(fs::exists(BlobPath(content)));
}

TEST_F(StoreTest, QuarantinedItemIsListedWithReportAndOriginal) {
  std::string original = "%PDF-1.7 suspicious";
  v1::Report report = MakeReport("quarantined", original, "請求書.pdf");
  AddFinding(report.mutable_item(), "av.detected");
  store_->Record(&report, &original);
  ASSERT_FALSE(report.item_id().empty());
  EXPECT_TRUE(fs::is_regular_file(BlobPath(original)));

  std::vector<v1::QuarantineItem> listed = store_->ListQuarantined(0, "");
  ASSERT_EQ(listed.size(), 1u);
  const v1::QuarantineItem& summary = listed[0];
  EXPECT_EQ(summary.id(), report.item_id());
  EXPECT_EQ(summary.received_at(), report.received_at());
  EXPECT_EQ(summary.name(), "請求書.pdf");
  EXPECT_EQ(summary.detected_type(), "application/pdf");
  EXPECT_EQ(summary.sha256(), Sha256Hex(original));
  EXPECT_EQ(summary.size(), original.size());
  EXPECT_EQ(summary.outcome(), "quarantined");
  EXPECT_EQ(std::vector<std::string>(summary.finding_codes().begin(), summary.finding_codes().end()),
            std::vector<std::string>{"av.detected"});
  EXPECT_FALSE(summary.has_report());

  std::optional<v1::QuarantineItem> got = store_->GetQuarantined(report.item_id());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->id(), report.item_id());
  EXPECT_EQ(got->report().item_id(), report.item_id());
  EXPECT_EQ(got->report().received_at(), report.received_at());
  EXPECT_EQ(got->report().SerializeAsString(), report.SerializeAsString());

  EXPECT_EQ(store_->ReadOriginal(report.item_id()), original);
}

TEST_F(StoreTest, OriginalOfDeliveredItemIsKeptButNotQuarantined) {
  std::string original = "<html><script>x()</script></html>";
  v1::Report report = MakeReport("delivered_with_removals", original);
  store_->Record(&report, &original);
  EXPECT_TRUE(store_->ListQuarantined(0, "").empty());
  EXPECT_EQ(store_->ReadOriginal(report.item_id()), original);
  EXPECT_FALSE(store_->DeleteQuarantined(report.item_id()));
  EXPECT_TRUE(fs::exists(BlobPath(original)));
}

TEST_F(StoreTest, IdsAreUniqueAndSortableInATightLoop) {
  std::vector<std::string> ids;
  for (int i = 0; i < 1000; ++i) {
    v1::Report report = MakeReport("quarantined", "item " + std::to_string(i));
    store_->Record(&report, nullptr);
    ids.push_back(report.item_id());
  }
  // Strictly increasing in recording order: unique, and sorting is by time.
  for (size_t i = 1; i < ids.size(); ++i) ASSERT_LT(ids[i - 1], ids[i]) << i;

  std::vector<std::string> newest_first(ids.rbegin(), ids.rend());
  std::vector<std::string> default_page = Ids(store_->ListQuarantined(0, ""));
  EXPECT_EQ(default_page, std::vector<std::string>(newest_first.begin(), newest_first.begin() + 100));

  v1::Report one_more = MakeReport("quarantined", "one more");
  store_->Record(&one_more, nullptr);
  std::vector<std::string> capped = Ids(store_->ListQuarantined(5000, ""));
  ASSERT_EQ(capped.size(), 1000u);
  EXPECT_EQ(capped[0], one_more.item_id());
  EXPECT_EQ(std::vector<std::string>(capped.begin() + 1, capped.end()),
            std::vector<std::string>(newest_first.begin(), newest_first.begin() + 999));
}

TEST_F(StoreTest, PagesWithBeforeId) {
  std::vector<std::string> quarantined;
  for (int i = 0; i < 25; ++i) {
    quarantined.push_back(Quarantine("original " + std::to_string(i)));
    v1::Report delivered = MakeReport("delivered", "clean " + std::to_string(i));
    store_->Record(&delivered, nullptr);
  }
  std::vector<std::string> paged;
  std::string before;
  std::vector<size_t> page_sizes;
  for (;;) {
    std::vector<std::string> page = Ids(store_->ListQuarantined(10, before));
    if (page.empty()) break;
    page_sizes.push_back(page.size());
    paged.insert(paged.end(), page.begin(), page.end());
    before = page.back();
  }
  EXPECT_EQ(page_sizes, (std::vector<size_t>{10, 10, 5}));
  EXPECT_EQ(paged, std::vector<std::string>(quarantined.rbegin(), quarantined.rend()));
}

TEST_F(StoreTest, SharedOriginalIsRemovedWithItsLastItem) {
  std::string original = "same attachment, sent twice";
  std::string first = Quarantine(original);
  std::string second = Quarantine(original);
  ASSERT_NE(first, second);

  EXPECT_TRUE(store_->DeleteQuarantined(first));
  EXPECT_FALSE(store_->GetQuarantined(first).has_value());
  EXPECT_TRUE(fs::exists(BlobPath(original)));
  EXPECT_EQ(store_->ReadOriginal(second), original);

  EXPECT_TRUE(store_->DeleteQuarantined(second));
  EXPECT_FALSE(fs::exists(BlobPath(original)));
  EXPECT_FALSE(store_->ReadOriginal(second).has_value());
  EXPECT_TRUE(store_->ListQuarantined(0, "").empty());
  EXPECT_FALSE(store_->DeleteQuarantined(second));
}

TEST_F(StoreTest, DeleteOfUnknownIdIsFalse) {
  Quarantine("kept");
  EXPECT_FALSE(store_->DeleteQuarantined("20260101T000000Z-000000000000"));
  EXPECT_FALSE(store_->DeleteQuarantined(""));
  EXPECT_EQ(store_->ListQuarantined(0, "").size(), 1u);
}

TEST_F(StoreTest, TamperedBlobIsDetectedAndRepairedByTheNextRecord) {
  std::string original = "the original bytes";
  std::string id = Quarantine(original);
  {
    std::ofstream out(BlobPath(original), std::ios::binary | std::ios::trunc);
    out << "the tampered bytes";
  }
  EXPECT_THROW(store_->ReadOriginal(id), StoreError);

  // Recording the same original again must not trust the damaged copy.
  std::string again = Quarantine(original);
  EXPECT_EQ(store_->ReadOriginal(id), original);
  EXPECT_EQ(store_->ReadOriginal(again), original);
}

TEST_F(StoreTest, ReopenedStoreSeesAllData) {
  std::string original = "persisted original";
  std::string id = Quarantine(original);
  v1::Report delivered = MakeReport("delivered", "clean");
  store_->Record(&delivered, nullptr);
  store_.reset();

  store_ = ItemStore::Open(data_dir_);
  EXPECT_EQ(Ids(store_->ListQuarantined(0, "")), std::vector<std::string>{id});
  std::optional<v1::QuarantineItem> got = store_->GetQuarantined(id);
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(got->report().item_id(), id);
  EXPECT_EQ(store_->ReadOriginal(id), original);
  EXPECT_EQ(Sql(data_dir_ / "mugai.db", "SELECT count(*) FROM items"), "2");
}

TEST_F(StoreTest, ConcurrentRecordsAllLand) {
  constexpr int kThreads = 8;
  constexpr int kPerThread = 25;
  std::mutex mutex;
  std::vector<std::pair<std::string, std::string>> recorded;  // id, original
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      for (int i = 0; i < kPerThread; ++i) {
        // Few distinct originals, so threads share blobs.
        std::string original = "payload " + std::to_string((t * kPerThread + i) % 7);
        v1::Report report = MakeReport("quarantined", original);
        EXPECT_NO_THROW(store_->Record(&report, &original));
        std::lock_guard lock(mutex);
        recorded.emplace_back(report.item_id(), original);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();

  std::vector<v1::QuarantineItem> listed = store_->ListQuarantined(1000, "");
  ASSERT_EQ(listed.size(), static_cast<size_t>(kThreads * kPerThread));
  std::set<std::string> listed_ids;
  for (const v1::QuarantineItem& item : listed) listed_ids.insert(item.id());
  EXPECT_EQ(listed_ids.size(), listed.size());
  for (const auto& [id, original] : recorded) {
    EXPECT_TRUE(listed_ids.count(id)) << id;
    EXPECT_EQ(store_->ReadOriginal(id), original);
  }
}

TEST_F(StoreTest, FailedBlobWriteLeavesNoRecord) {
  // Root ignores file modes, so the blob's fan-out directory is blocked by a
  // regular file instead.
  std::string original = "cannot be stored";
  fs::path blocker = BlobPath(original).parent_path();
  std::ofstream(blocker).put('x');
  v1::Report report = MakeReport("quarantined", original);
  EXPECT_THROW(store_->Record(&report, &original), StoreError);
  EXPECT_TRUE(report.item_id().empty());
  EXPECT_TRUE(store_->ListQuarantined(0, "").empty());
  EXPECT_EQ(Sql(data_dir_ / "mugai.db", "SELECT count(*) FROM items"), "0");

  fs::remove(blocker);
  store_->Record(&report, &original);
  EXPECT_EQ(store_->ReadOriginal(report.item_id()), original);
}

TEST_F(StoreTest, FailedInsertLeavesNoRecord) {
  Sql(data_dir_ / "mugai.db",
      "CREATE TRIGGER fail BEFORE INSERT ON items BEGIN SELECT RAISE(ABORT, 'injected'); END");
  std::string original = "blob written, row refused";
  v1::Report report = MakeReport("quarantined", original);
  try {
    store_->Record(&report, &original);
    ADD_FAILURE() << "Record succeeded";
  } catch (const StoreError& e) {
    EXPECT_NE(std::string(e.what()).find("injected"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(report.item_id().empty());
  EXPECT_EQ(Sql(data_dir_ / "mugai.db", "SELECT count(*) FROM items"), "0");
}

TEST_F(StoreTest, MismatchedOriginalIsRefused) {
  std::string original = "these bytes";
  v1::Report report = MakeReport("quarantined", "other bytes");
  EXPECT_THROW(store_->Record(&report, &original), StoreError);
  EXPECT_FALSE(fs::exists(BlobPath(original)));
  EXPECT_TRUE(store_->ListQuarantined(0, "").empty());
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
  store_->Record(&report, &original);

  std::optional<v1::QuarantineItem> got = store_->GetQuarantined(report.item_id());
  ASSERT_TRUE(got.has_value());
  EXPECT_EQ(std::vector<std::string>(got->finding_codes().begin(), got->finding_codes().end()),
            (std::vector<std::string>{"type.mismatch", "av.detected", "archive.encrypted"}));
}

TEST_F(StoreTest, FindingCodeWithSpaceIsRefused) {
  v1::Report report = MakeReport("quarantined", "x");
  AddFinding(report.mutable_item(), "not a code");
  EXPECT_THROW(store_->Record(&report, nullptr), StoreError);
  EXPECT_TRUE(store_->ListQuarantined(0, "").empty());
}

TEST(BlobStoreTest, RejectsNamesThatAreNotDigests) {
  std::string temp = (fs::temp_directory_path() / "mugai-blobs-XXXXXX").string();
  ASSERT_NE(::mkdtemp(temp.data()), nullptr);
  {
    BlobStore blobs(fs::path(temp) / "blobs");
    EXPECT_THROW(blobs.Get("../../etc/passwd"), StoreError);
    EXPECT_THROW(blobs.Get(std::string(64, 'A')), StoreError);
    EXPECT_FALSE(blobs.Get(std::string(64, 'a')).has_value());
    EXPECT_NO_THROW(blobs.Remove(std::string(64, 'a')));
  }
  fs::remove_all(temp);
}

}  // namespace
}  // namespace mugai
