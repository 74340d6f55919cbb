// The production converter worker (mugai-worker): the converters for text,
// HTML, PDF, images and archives, and its main(). Apart from the job loop
// (worker_loop.h), so a worker with converters of its own (the Office
// worker) links none of these libraries.
#pragma once

#include <memory>
#include <string_view>

#include "sanitizers/worker/worker_loop.h"

namespace mugai {

// The converter for a name ("text", "html", "pdf", "image"), or nullptr.
std::unique_ptr<Converter> MakeBuiltinConverter(std::string_view name);

// main() of the production worker: ConfineAndServe with ConverterPolicy,
// warming every converter up on small samples. `factory` is
// MakeBuiltinConverter, or a test's wrapper of it.
int WorkerMain(int argc, char** argv, const ConverterFactory& factory);

}  // namespace mugai
