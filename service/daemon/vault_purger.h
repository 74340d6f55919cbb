// Enforces the vault's retention in the background: every interval (and
// once at start) it asks the store to expire what has outlived its
// retention and to drop originals nothing refers to. With several replicas
// each runs its own; Purge() is safe to run concurrently.
#pragma once

#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>

#include "service/store/item_store.h"

namespace mugai {

class VaultPurger {
 public:
  VaultPurger(ItemStore& store, std::chrono::seconds interval);
  // Stops the thread, waiting for a purge in progress.
  ~VaultPurger();
  VaultPurger(const VaultPurger&) = delete;
  VaultPurger& operator=(const VaultPurger&) = delete;

 private:
  void Run();

  ItemStore& store_;
  const std::chrono::seconds interval_;
  std::mutex mutex_;
  std::condition_variable wake_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the members above exist
};

}  // namespace mugai
