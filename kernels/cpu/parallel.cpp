#include "kernels/cpu/parallel.h"

#include <cstdio>
#include <cstdlib>
#include <string>

#include "engine/core/error.h"

namespace hpt {

namespace {
// Runs while the library loads, before main: an exception here would end the program with
// "terminate called", so a bad value is said and left aside instead.
int initial_threads() {
    if (const char* env = std::getenv("HPT_NUM_THREADS")) {
        char* end = nullptr;
        const long n = std::strtol(env, &end, 10);
        if (end != env && *end == '\0' && n >= 1 && n <= 4096) {
#ifdef _OPENMP
            omp_set_num_threads(int(n));
#endif
            return int(n);
        }
        std::fprintf(stderr, "warning: HPT_NUM_THREADS=%s is not a thread count (1 to 4096); using all cores\n", env);
    }
#ifdef _OPENMP
    // All cores, also for the libraries that share OpenMP's pool (oneDNN).
    const int n = omp_get_num_procs();
    omp_set_num_threads(n);
    return n;
#else
    return 1;
#endif
}
int g_threads = initial_threads();
}  // namespace

int num_threads() { return g_threads; }

void set_num_threads(int n) {
    HPT_CHECK(n >= 1, "set_num_threads(", n, ")");
    g_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

}  // namespace hpt
