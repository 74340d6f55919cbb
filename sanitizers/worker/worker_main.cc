// mugai-worker: a converter process of the pool. Started by mugaid with the
// job channel on fd 3; never opens the items it converts by path.
#include "sanitizers/worker/builtin_worker.h"

int main(int argc, char** argv) { return mugai::WorkerMain(argc, argv, mugai::MakeBuiltinConverter); }
