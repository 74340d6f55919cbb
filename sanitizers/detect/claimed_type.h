// Compares what a sender claims (file name, declared Content-Type) with the
// real type. The name's type comes from the shared-mime-info database (GIO),
// not from a table of our own (only a few libmagic type names it lacks are
// bridged); "is a" relations (text/csv is a text/plain) are not mismatches.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace mugai {

// Returns a readable reason when the claimed name or declared type says
// something other than `detected_mime`; nullopt when they agree or when the
// claim is too vague to judge (no extension, application/octet-stream).
std::optional<std::string> DescribeTypeMismatch(std::string_view claimed_name,
                                                std::string_view declared_type,
                                                std::string_view detected_mime);

}  // namespace mugai
