// bench_gemm_libs: the measurement behind the CPU GEMM library choice. Times oneDNN's sgemm and
// OpenBLAS's cblas_sgemm on the GEMM shapes of our networks (same data, same threads) and prints
// one JSON line per shape. Built only when OpenBLAS is installed (tools/install-deps --bench).
#include <cblas.h>
#include <dnnl.h>

#include <iostream>
#include <vector>

#include "bench/common.h"
#include "bench/shapes.h"
#include "kernels/cpu/parallel.h"

using namespace hpt::bench;

int main(int argc, char** argv) {
    const std::string out = argc > 1 ? argv[1] : "";
    Output o(out);
    const int threads = hpt::num_threads();
    openblas_set_num_threads(threads);
    for (const GemmShape& s : gemms_for(resnet18_small_convs(64), 64, 512)) {
        std::vector<float> A(size_t(s.m * s.k), 0.5f), B(size_t(s.k * s.n), 0.25f), C(size_t(s.m * s.n));
        const Timing onednn = time_it([&] {
            dnnl_sgemm('N', 'N', s.m, s.n, s.k, 1.f, A.data(), s.k, B.data(), s.n, 0.f, C.data(), s.n);
        });
        const Timing blas = time_it([&] {
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, int(s.m), int(s.n), int(s.k), 1.f, A.data(),
                        int(s.k), B.data(), int(s.n), 0.f, C.data(), int(s.n));
        });
        JsonLine j;
        j.str("bench", "gemm_library").str("shape", s.key()).str("layer", s.name).str("device", "cpu");
        j.str("cpu", cpu_model()).integer("threads", threads);
        j.num("onednn_ms", onednn.median_ms).num("openblas_ms", blas.median_ms);
        j.num("onednn_gflops", s.flops() / (onednn.median_ms * 1e6));
        j.num("openblas_gflops", s.flops() / (blas.median_ms * 1e6));
        j.str("git", git_sha());
        o.emit(j.line());
    }
    return 0;
}
