// Owners for GLib's C resources, shared by everything built on GLib
// (Poppler, libvips, gdk-pixbuf, GIO). Header-only: it adds no link
// dependency of its own to sanitizers/core.
#pragma once

#include <glib-object.h>

#include <memory>

namespace mugai {

struct GObjectUnref {
  void operator()(gpointer object) const { g_object_unref(object); }
};
// Any GObject subclass: PopplerDocument, VipsImage, GdkPixbuf, ...
template <typename T>
using GObjectPtr = std::unique_ptr<T, GObjectUnref>;

struct GFree {
  void operator()(gpointer p) const { g_free(p); }
};
// Memory from g_malloc: strings and buffers GLib-based libraries hand over.
template <typename T>
using GMallocPtr = std::unique_ptr<T, GFree>;

// GLib's reference-counted boxed types that are not GObjects.
struct GDateTimeUnref {
  void operator()(GDateTime* date) const { g_date_time_unref(date); }
};
using GDateTimePtr = std::unique_ptr<GDateTime, GDateTimeUnref>;

struct GTimeZoneUnref {
  void operator()(GTimeZone* zone) const { g_time_zone_unref(zone); }
};
using GTimeZonePtr = std::unique_ptr<GTimeZone, GTimeZoneUnref>;

}  // namespace mugai
