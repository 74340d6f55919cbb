// A view of validated pixels, as the trusted side receives them from a
// worker (see Pixels in proto/mugai/v1/worker.proto).
#pragma once

#include <cstdint>
#include <string_view>

namespace mugai {

// Row-major, 8 bits a sample: channels 1 (gray), 3 (RGB) or 4 (RGBA, not
// premultiplied). `data` holds width * height * channels bytes; the daemon's
// RecordValidator has checked that before anything sees a PixelView.
struct PixelView {
  uint32_t width, height, channels;
  std::string_view data;
};

}  // namespace mugai
