// Framing for the job channels (daemon <-> worker, daemon <-> scanner):
// a 4-byte little-endian length, then that many bytes of one serialized
// protobuf message. The reader bounds the length before allocating, so a
// hostile peer cannot make the daemon allocate more than `max_bytes`.
#pragma once

#include <google/protobuf/message_lite.h>

#include <chrono>
#include <cstddef>

namespace mugai {

using Clock = std::chrono::steady_clock;
using Deadline = Clock::time_point;
inline Deadline NoDeadline() { return Deadline::max(); }

enum class FrameStatus {
  kOk,
  kEof,        // peer closed cleanly between frames
  kTruncated,  // peer closed inside a frame
  kTimeout,    // deadline passed
  kTooLarge,   // announced length above max_bytes
  kMalformed,  // bytes do not parse as the expected message
  kIoError,
};

const char* FrameStatusName(FrameStatus status);

// Writes one frame; blocks until all of it is written or the deadline passes.
FrameStatus WriteFrame(int fd, const google::protobuf::MessageLite& message,
                       Deadline deadline = NoDeadline());

// Reads one frame into `message`.
FrameStatus ReadFrame(int fd, size_t max_bytes, Deadline deadline,
                      google::protobuf::MessageLite* message);

}  // namespace mugai
