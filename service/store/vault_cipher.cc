#include "service/store/vault_cipher.h"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

#include "sanitizers/core/log.h"
#include "sanitizers/core/sha256.h"
#include "sanitizers/core/unique_fd.h"
#include "service/store/item_store.h"  // StoreError
#include "service/store/private_dir.h"

namespace mugai {
namespace {

namespace fs = std::filesystem;

constexpr std::string_view kMagic = "MGV1";
constexpr size_t kNonceSize = 12;
constexpr size_t kTagSize = 16;
constexpr std::string_view kAuditKeyLabel = "mugai audit chain v1";
// Longest file LoadVaultKey reads: 64 hex digits and a newline, plus one
// byte to tell a longer file.
constexpr size_t kMaxKeyFileSize = 2 * kVaultKeySize + 2;

[[noreturn]] void ThrowOpenSsl(std::string_view what) {
  unsigned long code = ERR_get_error();
  std::string message = "vault cipher: " + std::string(what) + " failed";
  if (code != 0) message += std::string(": ") + ERR_error_string(code, nullptr);
  ERR_clear_error();
  throw StoreError(message);
}

struct CipherCtxFree {
  void operator()(EVP_CIPHER_CTX* ctx) const { EVP_CIPHER_CTX_free(ctx); }
};
using CipherCtx = std::unique_ptr<EVP_CIPHER_CTX, CipherCtxFree>;

CipherCtx NewCipherCtx() {
  CipherCtx ctx(EVP_CIPHER_CTX_new());
  if (!ctx) ThrowOpenSsl("EVP_CIPHER_CTX_new");
  return ctx;
}

const unsigned char* Bytes(std::string_view s) { return reinterpret_cast<const unsigned char*>(s.data()); }
unsigned char* Bytes(std::string& s) { return reinterpret_cast<unsigned char*>(s.data()); }

// EVP lengths are int; originals are bounded far below INT_MAX by the store.
int IntLength(size_t size) {
  if (size > static_cast<size_t>(INT32_MAX)) throw StoreError("vault cipher: input too large");
  return static_cast<int>(size);
}

std::string Hex(const unsigned char* bytes, size_t size) {
  static constexpr char kHex[] = "0123456789abcdef";
  std::string hex;
  hex.reserve(size * 2);
  for (size_t i = 0; i < size; ++i) {
    hex.push_back(kHex[bytes[i] >> 4]);
    hex.push_back(kHex[bytes[i] & 0xf]);
  }
  return hex;
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// Wipes a key's bytes however the function leaves.
class WipedString {
 public:
  WipedString() = default;
  WipedString(const WipedString&) = delete;
  WipedString& operator=(const WipedString&) = delete;
  ~WipedString() { OPENSSL_cleanse(value.data(), value.size()); }
  std::string value;
};

std::string ParseKey(std::string_view content, const fs::path& file) {
  if (content.size() == kVaultKeySize) return std::string(content);
  std::string_view hex = content;
  if (hex.size() == 2 * kVaultKeySize + 1 && hex.back() == '\n') hex.remove_suffix(1);
  if (hex.size() == 2 * kVaultKeySize) {
    std::string key(kVaultKeySize, '\0');
    bool valid = true;
    for (size_t i = 0; i < kVaultKeySize && valid; ++i) {
      int high = HexValue(hex[2 * i]);
      int low = HexValue(hex[2 * i + 1]);
      valid = high >= 0 && low >= 0;
      key[i] = static_cast<char>(high << 4 | low);
    }
    if (valid) return key;
    OPENSSL_cleanse(key.data(), key.size());
  }
  throw StoreError("vault key file " + file.string() + " must hold 32 raw bytes or 64 hex digits (and a newline); it has " +
                   std::to_string(content.size()) + " bytes that are neither");
}

}  // namespace

VaultCipher::VaultCipher(std::string_view key) {
  if (key.size() != kVaultKeySize) {
    throw StoreError("vault key must be " + std::to_string(kVaultKeySize) + " bytes, not " + std::to_string(key.size()));
  }
  std::memcpy(key_.data(), key.data(), kVaultKeySize);
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), key_.data(), static_cast<int>(key_.size()), Bytes(kAuditKeyLabel), kAuditKeyLabel.size(),
           audit_key_.data(), &length) == nullptr ||
      length != audit_key_.size()) {
    ThrowOpenSsl("HMAC (audit key)");
  }
}

VaultCipher::~VaultCipher() {
  OPENSSL_cleanse(key_.data(), key_.size());
  OPENSSL_cleanse(audit_key_.data(), audit_key_.size());
}

std::string VaultCipher::Seal(std::string_view sha256, std::string_view original) const {
  std::string sealed(kMagic.size() + kNonceSize + original.size() + kTagSize, '\0');
  std::memcpy(sealed.data(), kMagic.data(), kMagic.size());
  unsigned char* nonce = Bytes(sealed) + kMagic.size();
  unsigned char* ciphertext = nonce + kNonceSize;
  if (RAND_bytes(nonce, kNonceSize) != 1) ThrowOpenSsl("RAND_bytes (nonce)");

  CipherCtx ctx = NewCipherCtx();
  int length = 0;
  if (EVP_EncryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1) {
    ThrowOpenSsl("EVP_EncryptInit_ex");
  }
  if (EVP_EncryptUpdate(ctx.get(), nullptr, &length, Bytes(sha256), IntLength(sha256.size())) != 1) {
    ThrowOpenSsl("EVP_EncryptUpdate (AAD)");
  }
  if (EVP_EncryptUpdate(ctx.get(), ciphertext, &length, Bytes(original), IntLength(original.size())) != 1) {
    ThrowOpenSsl("EVP_EncryptUpdate");
  }
  int final_length = 0;
  if (EVP_EncryptFinal_ex(ctx.get(), ciphertext + length, &final_length) != 1) ThrowOpenSsl("EVP_EncryptFinal_ex");
  if (static_cast<size_t>(length + final_length) != original.size()) throw StoreError("vault cipher: short encryption");
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_GET_TAG, kTagSize, ciphertext + original.size()) != 1) {
    ThrowOpenSsl("EVP_CTRL_GCM_GET_TAG");
  }
  return sealed;
}

std::string VaultCipher::Open(std::string_view sha256, std::string_view sealed) const {
  if (sealed.size() < kSealOverhead || sealed.substr(0, kMagic.size()) != kMagic) {
    throw StoreError("sealed original " + std::string(sha256) + " is not in a known vault format");
  }
  const unsigned char* nonce = Bytes(sealed) + kMagic.size();
  std::string_view ciphertext = sealed.substr(kMagic.size() + kNonceSize, sealed.size() - kSealOverhead);
  // EVP_CTRL_GCM_SET_TAG takes a non-const buffer.
  unsigned char tag[kTagSize];
  std::memcpy(tag, sealed.data() + sealed.size() - kTagSize, kTagSize);

  CipherCtx ctx = NewCipherCtx();
  int length = 0;
  if (EVP_DecryptInit_ex(ctx.get(), EVP_aes_256_gcm(), nullptr, key_.data(), nonce) != 1) {
    ThrowOpenSsl("EVP_DecryptInit_ex");
  }
  if (EVP_DecryptUpdate(ctx.get(), nullptr, &length, Bytes(sha256), IntLength(sha256.size())) != 1) {
    ThrowOpenSsl("EVP_DecryptUpdate (AAD)");
  }
  std::string original(ciphertext.size(), '\0');
  if (EVP_DecryptUpdate(ctx.get(), Bytes(original), &length, Bytes(ciphertext), IntLength(ciphertext.size())) != 1) {
    ThrowOpenSsl("EVP_DecryptUpdate");
  }
  if (EVP_CIPHER_CTX_ctrl(ctx.get(), EVP_CTRL_GCM_SET_TAG, kTagSize, tag) != 1) ThrowOpenSsl("EVP_CTRL_GCM_SET_TAG");
  int final_length = 0;
  if (EVP_DecryptFinal_ex(ctx.get(), Bytes(original) + length, &final_length) != 1) {
    ERR_clear_error();
    throw StoreError("sealed original " + std::string(sha256) +
                     " fails authentication: tampered with, or sealed under another vault key");
  }
  // The tag covers the digest, but the digest must also be the content's.
  if (Sha256Hex(original) != sha256) {
    throw StoreError("original " + std::string(sha256) + " decrypts to content with another SHA-256");
  }
  return original;
}

std::string VaultCipher::AuditHash(std::string_view message) const {
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int length = 0;
  if (HMAC(EVP_sha256(), audit_key_.data(), static_cast<int>(audit_key_.size()), Bytes(message), message.size(),
           digest, &length) == nullptr) {
    ThrowOpenSsl("HMAC (audit chain)");
  }
  return Hex(digest, length);
}

std::string LoadVaultKey(const fs::path& key_file) {
  // Followed if a symlink: secrets are often mounted through one.
  UniqueFd fd(::open(key_file.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd.valid()) throw StoreError(ErrnoText("cannot open vault key file " + key_file.string()));
  struct stat st;
  if (::fstat(fd.get(), &st) != 0) throw StoreError(ErrnoText("cannot stat vault key file " + key_file.string()));
  if (!S_ISREG(st.st_mode)) throw StoreError("vault key file " + key_file.string() + " is not a regular file");
  if ((st.st_mode & S_IROTH) != 0) {
    throw StoreError("vault key file " + key_file.string() +
                     " is readable by every user: anyone could decrypt the vault; chmod o-r it (0600 or 0640)");
  }
  if ((st.st_mode & S_IRGRP) != 0) {
    LogWarn("vault key file " + key_file.string() + " is readable by its group: only mugaid should be in it");
  }
  WipedString content;
  content.value.resize(kMaxKeyFileSize);
  size_t filled = 0;
  while (filled < content.value.size()) {
    ssize_t n = ::read(fd.get(), content.value.data() + filled, content.value.size() - filled);
    if (n == 0) break;
    if (n < 0) {
      if (errno == EINTR) continue;
      throw StoreError(ErrnoText("cannot read vault key file " + key_file.string()));
    }
    filled += static_cast<size_t>(n);
  }
  return ParseKey(std::string_view(content.value).substr(0, filled), key_file);
}

std::string LoadOrCreateVaultKey(const fs::path& data_dir) {
  fs::path file = data_dir / "vault.key";
  if (::access(file.c_str(), F_OK) == 0) return LoadVaultKey(file);
  if (errno != ENOENT) throw StoreError(ErrnoText("cannot access vault key file " + file.string()));

  // Written under a temporary name and linked into place, so the key file
  // is never seen half-written, and a concurrent creator's key wins whole.
  WipedString key;
  key.value.resize(kVaultKeySize);
  if (RAND_bytes(Bytes(key.value), static_cast<int>(key.value.size())) != 1) ThrowOpenSsl("RAND_bytes (vault key)");
  std::string temp = (data_dir / "vault.key.XXXXXX").string();
  UniqueFd fd(::mkostemp(temp.data(), O_CLOEXEC));  // O_EXCL, mode 0600
  if (!fd.valid()) throw StoreError(ErrnoText("cannot create a temporary key file in " + data_dir.string()));
  struct Unlink {
    const std::string& path;
    ~Unlink() { ::unlink(path.c_str()); }
  } unlink_temp{temp};
  if (::write(fd.get(), key.value.data(), key.value.size()) != static_cast<ssize_t>(key.value.size())) {
    throw StoreError(ErrnoText("cannot write " + temp));
  }
  if (::fsync(fd.get()) != 0) throw StoreError(ErrnoText("cannot fsync " + temp));
  if (::link(temp.c_str(), file.c_str()) != 0) {
    if (errno == EEXIST) return LoadVaultKey(file);
    throw StoreError(ErrnoText("cannot create vault key file " + file.string()));
  }
  SyncDirectory(data_dir);
  LogInfo("created vault key " + file.string() + ": back it up, the vault cannot be read without it");
  return key.value;
}

}  // namespace mugai
