// Owners for the cairo objects both halves of the PDF path use.
#pragma once

#include <cairo.h>

#include <memory>

namespace mugai {

struct SurfaceDestroy {
  void operator()(cairo_surface_t* surface) const { cairo_surface_destroy(surface); }
};
using UniqueSurface = std::unique_ptr<cairo_surface_t, SurfaceDestroy>;

struct ContextDestroy {
  void operator()(cairo_t* cr) const { cairo_destroy(cr); }
};
using UniqueContext = std::unique_ptr<cairo_t, ContextDestroy>;

}  // namespace mugai
