// What every fuzz target shares: the way a broken contract is reported.
#pragma once

// A violated contract, as libFuzzer sees a crash: it stops, keeps the input
// as crash-<sha1> and prints the stack (ASan's deadly-signal handler).
#define FUZZ_ASSERT(condition) \
  do {                         \
    if (!(condition)) __builtin_trap(); \
  } while (false)
