// Encryption of the vault's originals at rest, and the key of the audit
// chain, both from one 32-byte vault key.
//
// A sealed original is
//   "MGV1" | 12-byte random nonce | AES-256-GCM ciphertext | 16-byte tag
// with the original's SHA-256 (lowercase hex) as additional authenticated
// data, so a sealed blob cannot be passed off as another original's. The
// magic names the format version: a later format gets a new magic, and
// Open() refuses what it does not know.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <string>
#include <string_view>

namespace mugai {

inline constexpr size_t kVaultKeySize = 32;

class VaultCipher {
 public:
  // Bytes Seal() adds to an original.
  static constexpr size_t kSealOverhead = 4 + 12 + 16;

  // `key`: kVaultKeySize bytes; StoreError otherwise.
  explicit VaultCipher(std::string_view key);
  ~VaultCipher();  // wipes the keys
  VaultCipher(const VaultCipher&) = delete;
  VaultCipher& operator=(const VaultCipher&) = delete;

  // `sha256`: the original's lowercase hex digest. Throws StoreError.
  std::string Seal(std::string_view sha256, std::string_view original) const;
  // The original, authenticated with `sha256` and checked against it.
  // Throws StoreError on any mismatch (wrong key, tampered or truncated
  // bytes, another original's blob, an unknown format).
  std::string Open(std::string_view sha256, std::string_view sealed) const;

  // Lowercase hex HMAC-SHA-256 of `message` under the audit key,
  // HMAC(vault key, "mugai audit chain v1").
  std::string AuditHash(std::string_view message) const;

 private:
  std::array<unsigned char, kVaultKeySize> key_;
  std::array<unsigned char, kVaultKeySize> audit_key_;
};

// The key in `key_file`: exactly 32 raw bytes, or 64 hex digits optionally
// followed by one newline. Refuses a file other users may read; warns when
// its group may (the usual root:mugai 0640). Throws StoreError.
std::string LoadVaultKey(const std::filesystem::path& key_file);

// LoadVaultKey(<data_dir>/vault.key), creating it first (32 bytes from
// RAND_bytes, mode 0600, durable) when it does not exist. Throws StoreError.
std::string LoadOrCreateVaultKey(const std::filesystem::path& data_dir);

}  // namespace mugai
