#include "sanitizers/worker/frame.h"

#include <errno.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdint>
#include <limits>
#include <string>

namespace mugai {
namespace {

// Milliseconds left until `deadline` for poll(2); -1 waits forever.
int PollTimeout(Deadline deadline) {
  if (deadline == Deadline::max()) return -1;
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return 0;
  return left > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                                : static_cast<int>(left);
}

FrameStatus WaitFor(int fd, short events, Deadline deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int n = ::poll(&p, 1, PollTimeout(deadline));
    if (n > 0) return FrameStatus::kOk;
    if (n == 0) return FrameStatus::kTimeout;
    if (errno != EINTR) return FrameStatus::kIoError;
  }
}

// Reads exactly `size` bytes. `started` says whether part of the frame was
// already read, which turns an EOF into kTruncated.
FrameStatus ReadExactly(int fd, char* data, size_t size, Deadline deadline, bool started) {
  size_t done = 0;
  while (done < size) {
    if (FrameStatus s = WaitFor(fd, POLLIN, deadline); s != FrameStatus::kOk) return s;
    ssize_t n = ::read(fd, data + done, size - done);
    if (n == 0) return (started || done > 0) ? FrameStatus::kTruncated : FrameStatus::kEof;
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return (errno == ECONNRESET) ? FrameStatus::kTruncated : FrameStatus::kIoError;
    }
    done += static_cast<size_t>(n);
  }
  return FrameStatus::kOk;
}

FrameStatus WriteAll(int fd, const char* data, size_t size, Deadline deadline) {
  size_t done = 0;
  while (done < size) {
    if (FrameStatus s = WaitFor(fd, POLLOUT, deadline); s != FrameStatus::kOk) return s;
    // MSG_NOSIGNAL: a dead peer is an error to report, not a SIGPIPE.
    ssize_t n = ::send(fd, data + done, size - done, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR || errno == EAGAIN) continue;
      return FrameStatus::kIoError;
    }
    done += static_cast<size_t>(n);
  }
  return FrameStatus::kOk;
}

}  // namespace

const char* FrameStatusName(FrameStatus status) {
  switch (status) {
    case FrameStatus::kOk: return "ok";
    case FrameStatus::kEof: return "eof";
    case FrameStatus::kTruncated: return "truncated";
    case FrameStatus::kTimeout: return "timeout";
    case FrameStatus::kTooLarge: return "too large";
    case FrameStatus::kMalformed: return "malformed";
    case FrameStatus::kIoError: return "i/o error";
  }
  return "?";
}

FrameStatus WriteFrame(int fd, const google::protobuf::MessageLite& message, Deadline deadline) {
  std::string body;
  if (!message.SerializeToString(&body) || body.size() > std::numeric_limits<uint32_t>::max()) {
    return FrameStatus::kTooLarge;
  }
  uint32_t length = static_cast<uint32_t>(body.size());
  unsigned char header[4] = {static_cast<unsigned char>(length), static_cast<unsigned char>(length >> 8),
                             static_cast<unsigned char>(length >> 16),
                             static_cast<unsigned char>(length >> 24)};
  if (FrameStatus s = WriteAll(fd, reinterpret_cast<const char*>(header), 4, deadline);
      s != FrameStatus::kOk) {
    return s;
  }
  return WriteAll(fd, body.data(), body.size(), deadline);
}

FrameStatus ReadFrame(int fd, size_t max_bytes, Deadline deadline,
                      google::protobuf::MessageLite* message) {
  unsigned char header[4];
  if (FrameStatus s = ReadExactly(fd, reinterpret_cast<char*>(header), 4, deadline, false);
      s != FrameStatus::kOk) {
    return s;
  }
  size_t length = static_cast<size_t>(header[0]) | static_cast<size_t>(header[1]) << 8 |
                  static_cast<size_t>(header[2]) << 16 | static_cast<size_t>(header[3]) << 24;
  if (length > max_bytes) return FrameStatus::kTooLarge;
  std::string body(length, '\0');
  if (FrameStatus s = ReadExactly(fd, body.data(), length, deadline, true); s != FrameStatus::kOk) {
    return s;
  }
  return message->ParseFromString(body) ? FrameStatus::kOk : FrameStatus::kMalformed;
}

}  // namespace mugai
