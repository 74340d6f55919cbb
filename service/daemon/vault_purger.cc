#include "service/daemon/vault_purger.h"

#include <string>

#include "sanitizers/core/log.h"

namespace mugai {

VaultPurger::VaultPurger(ItemStore& store, std::chrono::seconds interval)
    : store_(store), interval_(interval), thread_([this] { Run(); }) {}

VaultPurger::~VaultPurger() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  thread_.join();
}

void VaultPurger::Run() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    lock.unlock();
    try {
      ItemStore::PurgeResult purged = store_.Purge(std::chrono::system_clock::now());
      if (purged.expired != 0 || purged.blobs_removed != 0) {
        LogInfo("vault purge: " + std::to_string(purged.expired) + " originals expired, " +
                std::to_string(purged.blobs_removed) + " unreferenced originals removed");
      }
    } catch (const StoreError& e) {
      // Retention is late, nothing is lost: the next round tries again.
      LogError(std::string("vault purge failed: ") + e.what());
    }
    lock.lock();
    wake_.wait_for(lock, interval_, [this] { return stopping_; });
  }
}

}  // namespace mugai
