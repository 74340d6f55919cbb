// SHA-256 (OpenSSL), as lowercase hex: the content address of every blob.
#pragma once

#include <string>
#include <string_view>

namespace mugai {

std::string Sha256Hex(std::string_view bytes);

}  // namespace mugai
