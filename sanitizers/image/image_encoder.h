// Trusted side: encodes pixels a worker returned as a PNG or JPEG file with
// libvips. The input is pixels only, so the file holds nothing of the
// original: no EXIF, GPS, XMP, comments or ICC profile (the worker already
// converted the pixels to sRGB), only what the encoder itself writes.
#pragma once

#include <string>

#include "sanitizers/core/pixels.h"

namespace mugai {

// Starts libvips for this process; later calls do nothing. Thread-safe.
// Throws std::runtime_error when libvips cannot start.
void InitVips();

// Lossless PNG of `pixels` (gray, RGB or RGBA as given).
// Throws std::invalid_argument for a malformed view and std::runtime_error
// when libvips fails. InitVips() is called first.
std::string EncodePng(const PixelView& pixels);

// Baseline JPEG of `pixels` (1 or 3 channels; quality 1..100).
// Throws as EncodePng, and std::invalid_argument for 4 channels: JPEG has
// no alpha, and which background to composite onto is the caller's choice.
std::string EncodeJpeg(const PixelView& pixels, int quality);

}  // namespace mugai
