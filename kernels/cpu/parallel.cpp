#include "kernels/cpu/parallel.h"

#include <cstdlib>
#include <string>

#include "engine/core/error.h"

namespace hpt {

namespace {
int initial_threads() {
    if (const char* env = std::getenv("HPT_NUM_THREADS")) {
        const int n = std::atoi(env);
        HPT_CHECK(n >= 1 && n <= 4096, "HPT_NUM_THREADS=", env, " is not a thread count");
#ifdef _OPENMP
        omp_set_num_threads(n);
#endif
        return n;
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
