// Durable record of every item's outcome; the vault of the originals that
// were changed or held (encrypted at rest, content-addressed by SHA-256,
// verified on read) with their state; and the audit trail of every state
// change and every administrator's call, as a keyed hash chain.
//
// Two backends behind this one interface (see OpenItemStore): SQLite in the
// data directory, for one mugaid; PostgreSQL, shared by several mugaid
// replicas. Originals are kept in the database itself in both, so a row and
// its original commit together, and replicas share nothing but the
// database.
//
// Durability contract: every call that changes something returns only after
// the change and its audit entry are committed (SQLite: WAL with
// synchronous=FULL; PostgreSQL: a committed transaction). A crash leaves
// either no change or the whole change.
//
// Thread-safe, and safe for several processes on one PostgreSQL database.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

#include "mugai/v1/admin.pb.h"
#include "mugai/v1/exchange.pb.h"
#include "mugai/v1/report.pb.h"

namespace mugai {

class StoreError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The [store] and [vault] configuration tables.
struct StoreOptions {
  enum class Backend { kSqlite, kPostgres };
  Backend backend = Backend::kSqlite;
  std::filesystem::path data_dir = "/var/lib/mugai";  // SQLite: <data_dir>/mugai.db
  std::string postgres;  // libpq connection string (key=value or postgresql:// URI)
  unsigned postgres_connections = 4;  // pool size per process
  // 32 random bytes (raw, or 64 hex digits and a newline) that encrypt the
  // originals and key the audit chain. Empty: <data_dir>/vault.key, made on
  // first start (SQLite only: replicas must share one key file).
  std::filesystem::path key_file;
  // Days an original is kept, by the item's outcome; purged after that
  // (state "expired"). An outcome not listed keeps the default.
  unsigned retention_days = 30;
  std::map<std::string, unsigned> retention_days_by_outcome;
  // [exchange]: days an inbox entry waits to be acknowledged, then purged;
  // and whether an acknowledged entry's bytes stay until then (false: they
  // are deleted on acknowledgement).
  unsigned inbox_retention_days = 14;
  bool keep_acknowledged = false;
};

// A submitted file's derivatives for the recipient's inbox, recorded with
// the item's outcome (Record): one entry per derivative.
struct InboxDelivery {
  std::string recipient;  // LGWAN-side identity
  std::string note;       // safe text
  // The sender's idempotency key ("": none). Record() of a key the same
  // sender (summary.sender) recorded before records nothing and returns
  // the earlier report instead.
  std::string submit_key;
  // The bytes of report.item().derivatives(), in order; empty when the item
  // was not delivered (the key is still recorded).
  const std::vector<std::string>* derivatives = nullptr;
};

// Opens (creating and migrating as needed) the configured backend. Throws
// StoreError naming what failed.
class ItemStore;
std::unique_ptr<ItemStore> OpenItemStore(const StoreOptions& options);

// Who did something: an administrator's identity, or "mugaid".
inline constexpr std::string_view kDaemonActor = "mugaid";

struct VaultQuery {
  std::string received_from, received_to;  // RFC 3339; inclusive, exclusive; "" unbounded
  std::string sender, recipient, subject;   // substrings, ASCII case-insensitive
  std::string finding_code, outcome;        // exact
  std::string state;                        // exact, or "vault": any state with the original kept
  size_t limit = 0;                         // 0: 100; at most 1000
  std::string before_id;                    // paging: older than this id
};

class ItemStore {
 public:
  virtual ~ItemStore() = default;

  struct Stamp {
    std::string id;
    std::string received_at;  // RFC 3339 UTC
  };
  // An id (and time) for an item whose derivative must carry its id before
  // it is recorded: a rebuilt message names it in X-Mugai-Id. Ids are
  // unique across processes and increase within one.
  virtual Stamp Reserve() = 0;

  // Records the item's outcome with its summary and, when `original` is not
  // null, keeps the original in the vault in state "held" (audited as
  // "vault.hold"); with `inbox`, the derivatives go to the recipient's inbox
  // in the same transaction. Uses report->item_id and report->received_at
  // as Reserve() gave them or, when item_id is empty, new ones (set in
  // `report`). Returns false, with *report the earlier one, when inbox's
  // submit_key was used before (nothing recorded). Throws StoreError.
  virtual bool Record(v1::Report* report, const std::string* original, const v1::ItemSummary& summary,
                      const InboxDelivery* inbox) = 0;

  // Recorded items matching `query`, newest first, without report, headers
  // or preview.
  virtual std::vector<v1::VaultItem> Search(const VaultQuery& query) = 0;
  // One item with everything: report, summary, release.
  virtual std::optional<v1::VaultItem> Get(std::string_view id) = 0;
  // The original, decrypted and verified against its SHA-256 (StoreError on
  // a mismatch); nullopt when none is kept.
  virtual std::optional<std::string> ReadOriginal(std::string_view id) = 0;

  // State changes. Each checks the state it starts from, and commits the
  // change with its audit entry.
  enum class Refusal {
    kNone,
    kNoSuchItem,
    kWrongState,    // e.g. approving an item nobody asked to release
    kSelfApproval,  // two-person rule: the approver asked for the release
  };
  struct Change {
    Refusal refusal = Refusal::kNone;
    v1::VaultItem item;  // after the change (or as it is, when refused)
  };
  // held -> release_requested.
  virtual Change RequestRelease(std::string_view id, std::string_view actor, std::string_view reason) = 0;
  // release_requested -> released (approve) or held (deny). With
  // `two_person_rule`, the requester cannot decide.
  virtual Change DecideRelease(std::string_view id, std::string_view actor, bool approve, std::string_view reason,
                               bool two_person_rule) = 0;
  // What the delivery path made of a released item (audited
  // "release.delivered" or "release.delivery_failed").
  virtual Change RecordDelivery(std::string_view id, std::string_view actor, bool delivered,
                                std::string_view detail) = 0;
  // held, release_requested or released -> deleted: the original is gone.
  virtual Change Delete(std::string_view id, std::string_view actor, std::string_view reason) = 0;

  // Releases a file original to the inbox of the item's recipient
  // (summary.recipients[0], set by SubmitFile): an entry flagged
  // released_original, and the delivery recorded as by RecordDelivery.
  // Only for a released item; kWrongState otherwise, or when the item has
  // no recipient.
  virtual Change ReleaseToInbox(std::string_view id, std::string_view actor) = 0;

  // The report of the item `sender` submitted with `submit_key`, so that a
  // retried submission is answered without being sanitized again. (Record
  // still decides a race between two at once.)
  virtual std::optional<v1::Report> FindSubmission(std::string_view sender, std::string_view submit_key) = 0;

  // The LGWAN side. Every call names the recipient (the caller's identity)
  // and sees only that inbox; entries acknowledged or purged are gone.
  // Oldest first, after `after_id`; limit 0: 100, at most 1000.
  virtual std::vector<v1::InboxEntry> ListInbox(std::string_view recipient, std::string_view after_id,
                                                size_t limit) = 0;
  struct InboxFile {
    v1::InboxEntry entry;
    std::string bytes;  // decrypted and verified against entry.sha256
  };
  // Marks the entry fetched (the first time). nullopt: no such entry in
  // this inbox.
  virtual std::optional<InboxFile> FetchInbox(std::string_view recipient, std::string_view entry_id) = 0;
  // False when there is no such entry in this inbox (or it was
  // acknowledged already).
  virtual bool AcknowledgeInbox(std::string_view recipient, std::string_view entry_id) = 0;

  struct PurgeResult {
    uint64_t expired = 0;        // items whose original reached its retention
    uint64_t blobs_removed = 0;  // originals no item refers to any more
    uint64_t inbox_expired = 0;  // inbox entries past inbox_retention_days
  };
  // Expires every original older than its retention at `now` (audited
  // "vault.expire") and every inbox entry older than its retention
  // ("inbox.expire"), then removes unreferenced originals.
  virtual PurgeResult Purge(std::chrono::system_clock::time_point now) = 0;

  // Items by day (UTC), outcome and finding code, received in [from, to).
  virtual std::vector<v1::DailyCount> Statistics(std::string_view from, std::string_view to) = 0;

  struct VaultUsage {
    uint64_t items = 0;         // items whose original is kept (held, requested, released)
    uint64_t originals = 0;     // distinct sealed originals (deduplicated by SHA-256)
    uint64_t sealed_bytes = 0;  // their size in the database
  };
  virtual VaultUsage Usage() = 0;

  // Appends an entry for something that changed nothing (an administrator
  // read, downloaded, exported, or was refused).
  virtual void Audit(std::string_view actor, std::string_view action, std::string_view item_id,
                     std::string_view detail) = 0;
  // Entries after `after_seq` (optionally of one item), oldest first.
  virtual std::vector<v1::AuditEntry> ReadAudit(uint64_t after_seq, size_t limit, std::string_view item_id) = 0;
  // Walks the whole chain: every entry's seq follows the previous one, its
  // prev_hash is the previous hash, and its hash is the keyed hash of its
  // contents. Any edited, removed or reordered entry fails it.
  virtual v1::AuditVerification VerifyAudit() = 0;
};

// Every finding code in an item's tree, each once, first occurrence first:
// what the store indexes an item by, and what the metrics count.
std::vector<std::string> FindingCodesOf(const v1::ItemReport& item);

}  // namespace mugai
