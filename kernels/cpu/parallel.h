// Threading for CPU kernels: OpenMP, all cores by default (HPT_NUM_THREADS or set_num_threads).
//
// parallel_for splits [0, n) by the number of threads: use it where every output element is
// computed whole by one thread, so the split cannot change the result. parallel_chunks uses
// fixed chunk boundaries that do not depend on the thread count: use it for reductions that
// combine per-chunk partials (in chunk order), so they give the same bits with 1 thread or 16.
#pragma once
#include <algorithm>
#include <cstdint>

#ifdef _OPENMP
#include <omp.h>
#endif

namespace hpt {

int num_threads();
void set_num_threads(int n);

// Calls f(begin, end) on disjoint ranges covering [0, n), in parallel when n > grain.
template <class F>
void parallel_for(int64_t n, int64_t grain, const F& f) {
    if (n <= 0) return;
    grain = std::max<int64_t>(grain, 1);
#ifdef _OPENMP
    const int nt = num_threads();
    if (n > grain && nt > 1 && !omp_in_parallel()) {
        const int64_t chunks = std::min<int64_t>(nt, (n + grain - 1) / grain);
#pragma omp parallel for num_threads(int(chunks)) schedule(static, 1)
        for (int64_t c = 0; c < chunks; ++c) {
            const int64_t b = n * c / chunks, e = n * (c + 1) / chunks;
            if (b < e) f(b, e);
        }
        return;
    }
#endif
    f(0, n);
}

// Calls f(chunk, begin, end) for fixed chunks of `chunk_size` (the last may be shorter), in
// parallel. Chunk boundaries are independent of the thread count (see above).
template <class F>
void parallel_chunks(int64_t n, int64_t chunk_size, const F& f) {
    if (n <= 0) return;
    const int64_t chunks = (n + chunk_size - 1) / chunk_size;
#ifdef _OPENMP
    if (chunks > 1 && num_threads() > 1 && !omp_in_parallel()) {
#pragma omp parallel for num_threads(num_threads()) schedule(static)
        for (int64_t c = 0; c < chunks; ++c) f(c, c * chunk_size, std::min(n, (c + 1) * chunk_size));
        return;
    }
#endif
    for (int64_t c = 0; c < chunks; ++c) f(c, c * chunk_size, std::min(n, (c + 1) * chunk_size));
}

}  // namespace hpt
