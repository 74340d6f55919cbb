// The sizes of the SanitizeFile stream, shared by mugaid and the CLI: both
// must agree, or one side refuses what the other sends.
#pragma once

#include <cstddef>

namespace mugai {

// Files and derivatives travel in chunks of this size.
inline constexpr size_t kChunkBytes = 1u << 20;

// The largest gRPC message either side accepts: a chunk, or a report. An
// archive's report lists every member (about 400 bytes each, and
// [archives] max_members is at most 10,000), so it can outgrow a chunk.
inline constexpr int kMaxMessageBytes = 16 << 20;

}  // namespace mugai
