// fuzz_check: the assertion of the fuzz targets. A broken contract prints what broke and aborts,
// which libFuzzer reports as a crash and saves the input (crash-<sha1>) for the regression corpus.
#pragma once

#include <cstdio>
#include <cstdlib>

#define FUZZ_CHECK(cond)                                                                   \
  do {                                                                                     \
    if (!(cond)) {                                                                         \
      std::fprintf(stderr, "FUZZ_CHECK failed at %s:%d: %s\n", __FILE__, __LINE__, #cond); \
      std::abort();                                                                        \
    }                                                                                      \
  } while (false)
