// The augmentation rows of bench_kernels: the MoCo v2 / HPT policy (two views per image) at 32x32
// (batch 512) and 224x224 (batch 256), ours next to torchvision's equivalent pipeline
// (tools/peer_augment.py) with the same number of threads / DataLoader workers, in the same run.
// One JSON line per (shape, device): ms per batch, images/s, and ratio = peer_ms / ms (above 1: we
// are faster).
//
// Input: RetinaMNIST's training images (28x28 RGB fundus photos) upscaled bilinearly to the view
// size and rounded to u8, so the content is real; a seeded synthetic u8 batch when the dataset
// is not found (--data, or ../shared/datasets/retinamnist). The views have the input's size.
// On the GPU it reports the achieved bandwidth over the bytes the two kernels must move (u8 input
// read once, both f32 views written, and for blurred views the pre-blur scratch written and read).
#include "bench/augment_bench.h"

#include <cstdint>
#include <cmath>
#include <ctime>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <optional>
#include <regex>
#include <unistd.h>

#include "bench/common.h"
#include "engine/core/device.h"
#include "engine/core/random.h"
#include "engine/data/dataset.h"
#include "kernels/cpu/parallel.h"
#include "ssl/augment.h"

#ifdef HPT_WITH_CUDA
#include "bench/kernels_cuda.h"
#include "kernels/cuda/runtime.h"
#include "ssl/augment_params.h"
#endif

namespace hpt::bench {
namespace {

struct Case {
    int64_t n, size;
    std::string key() const { return std::to_string(n) + "x3x" + std::to_string(size) + "x" + std::to_string(size); }
};

// u8 [n, size, size, 3]: the dataset's images upscaled (bilinear, rounded), cycling through them.
Tensor make_input(const Case& c, const std::string& data_path, std::string& source) {
    const std::string path = data_path.empty() ? source_dir() + "/../shared/datasets/retinamnist" : data_path;
    HPT_CHECK(data_path.empty() || std::filesystem::exists(path), "augmentation bench: --data ", path, " does not exist");
    Tensor out = empty({c.n, c.size, c.size, 3}, DType::u8);
    if (std::filesystem::exists(path)) {
        const data::Dataset ds = data::load_dataset(path);
        const Tensor imgs = ds.train.images;
        HPT_CHECK(imgs.size(3) == 3, "augmentation bench: expected an RGB dataset at ", path);
        ssl::AugmentConfig cfg;
        cfg.out_h = cfg.out_w = int32_t(c.size);
        const int64_t k = std::min(c.n, imgs.size(0));
        const Tensor src = imgs.narrow(0, 0, k).contiguous();
        const std::vector<ssl::ViewParams> ps(size_t(k), ssl::identity_params(int32_t(imgs.size(1)), int32_t(imgs.size(2))));
        const Tensor up = ssl::apply_views(src, ps, cfg);  // [k, 3, s, s] in [0, 1]
        const float* u = up.data<float>();
        uint8_t* o = out.data<uint8_t>();
        const int64_t hw = c.size * c.size;
        for (int64_t i = 0; i < c.n; ++i)
            for (int64_t p = 0; p < hw; ++p)
                for (int ch = 0; ch < 3; ++ch)
                    o[(i * hw + p) * 3 + ch] = uint8_t(std::lrint(255.f * u[((i % k) * 3 + ch) * hw + p]));
        source = "retinamnist train, upscaled from 28x28";
    } else {
        Generator g(5, 1);
        uint8_t* o = out.data<uint8_t>();
        for (int64_t i = 0; i < out.numel(); ++i) o[i] = uint8_t(g.next_u32() >> 24);
        source = "synthetic uniform u8";
    }
    return out;
}

struct Measured {
    Timing t;
    double cpu_ms = NAN;  // process CPU time per batch (all threads): immune to time-sharing
    double gbps = NAN;
};

// Outputs are allocated once and reused, as a training loop's buffers are: the timing is the
// augmentation, not first-touch page faults of fresh 300 MB outputs.
Measured time_cpu(const Tensor& images, const ssl::AugmentConfig& cfg, double min_seconds) {
    std::vector<int64_t> samples(size_t(images.size(0)));
    for (size_t i = 0; i < samples.size(); ++i) samples[i] = int64_t(i);
    const Shape shape = {images.size(0), 3, cfg.out_h, cfg.out_w};
    const Tensor v1 = empty(shape, DType::f32), v2 = empty(shape, DType::f32);
    int64_t epoch = 0;
    Measured m;
    // A new epoch each rep: fresh draws, as in training.
    const std::clock_t c0 = std::clock();
    m.t = time_it([&] { ssl::augment_batch_into(images, samples, cfg, 1, epoch++, v1, v2); }, 2, 5, min_seconds);
    m.cpu_ms = 1e3 * double(std::clock() - c0) / CLOCKS_PER_SEC / double(epoch);
    return m;
}

#ifdef HPT_WITH_CUDA
// The kernels alone (buffers allocated once), timed by bench/kernels_cuda.h's time_cuda on
// the current stream; every call draws a new epoch, as training does.
Measured time_cuda_views(const Tensor& images, const ssl::AugmentConfig& cfg, double min_seconds) {
    const Device dev = Device::cuda(cuda::current_device());
    const int32_t n = int32_t(images.size(0)), h = int32_t(images.size(1)), w = int32_t(images.size(2)), c = 3;
    const Tensor in = images.contiguous().to(dev);
    const Shape view = {n, c, cfg.out_h, cfg.out_w};
    const Tensor v1 = empty(view, DType::f32, dev), v2 = empty(view, DType::f32, dev);
    const Tensor scratch = empty({2, n, c, cfg.out_h, cfg.out_w}, DType::f32, dev);
    const Tensor params = empty({int64_t(2 * size_t(n) * sizeof(ssl::ViewParams))}, DType::u8, dev);
    const Tensor tile_sums = empty({ssl::augment_cuda_tile_sums(n, 2, cfg.out_h, cfg.out_w)}, DType::f64, dev);
    std::vector<int64_t> samples(static_cast<size_t>(n));
    for (int32_t i = 0; i < n; ++i) samples[size_t(i)] = i;
    const Tensor d_samples = from_vector<int64_t>(samples).to(dev);
    const int32_t max_r = ssl::max_blur_radius(cfg);
    const uint64_t seed = 1;
    int64_t epoch = 0;
    Measured m;
    m.t = time_cuda(
        [&] {
            ssl::augment_views_cuda(in.data<uint8_t>(), n, h, w, c, d_samples.data<int64_t>(), nullptr, cfg, seed,
                                    epoch++, 2, max_r, v1.data<float>(), v2.data<float>(), scratch.data<float>(),
                                    static_cast<ssl::ViewParams*>(params.data_ptr()), tile_sums.data<double>(),
                                    cuda::current_stream());
        },
        min_seconds);
    // The bytes moved depend on how many views were blurred: count them over every epoch drawn,
    // with the CPU's draws (the kernel's own, ssl/augment_params.h).
    double blurred = 0;
    for (int64_t e = 0; e < epoch; ++e)
        for (int32_t i = 0; i < n; ++i)
            for (int v = 0; v < 2; ++v)
                blurred += ssl::draw_view_params(seed, e, samples[size_t(i)], v, cfg, h, w).blur_radius > 0;
    const double blurred_views = blurred / double(epoch);
    const double per_view = double(c) * cfg.out_h * cfg.out_w * 4;
    const double bytes = double(images.numel()) + 2.0 * n * per_view + blurred_views * 2 * per_view;
    m.gbps = bytes / (m.t.median_ms * 1e6);
    return m;
}
#endif

const std::vector<Case> kCases = {{512, 32}, {256, 224}};

std::string row_key(const Case& c) { return "augment_two_views " + c.key(); }

}  // namespace

bool augment_bench_wanted(const std::string& filter) {
    const std::regex re(filter);
    for (const Case& c : kCases)
        if (std::regex_search(row_key(c), re)) return true;
    return false;
}

int run_augment_benches(const AugmentBenchOptions& o, Output& out) {
    const Device dev = Device::parse(o.device);
#ifndef HPT_WITH_CUDA
    HPT_CHECK(!dev.is_cuda(), "augmentation bench: --device ", o.device, ": this build has no CUDA backend");
#else
    std::optional<cuda::DeviceGuard> guard;  // time_cuda_views works on the current device
    if (dev.is_cuda()) {
        cuda::check_device_index(dev.index);
        guard.emplace(dev.index);
    }
#endif
    const int threads = num_threads();
    const std::regex re(o.filter);

    struct Row {
        Case c;
        std::string source;
        Measured m;
    };
    std::vector<Row> rows;
    std::string peer_in = "{\"cases\": [";
    std::vector<std::string> files;
    for (const Case& c : kCases) {
        if (!std::regex_search(row_key(c), re)) continue;
        std::string source;
        const Tensor images = make_input(c, o.data, source);
        ssl::AugmentConfig cfg = ssl::augment_policy(o.policy, int32_t(c.size));
        const auto [mean, sd] = data::channel_mean_std({images, Tensor(), 0});
        ssl::set_normalization(cfg, mean, sd);
        std::cerr << "timing augment_two_views " << c.key() << " on " << dev.str() << "\n";
        Measured m;
#ifdef HPT_WITH_CUDA
        m = dev.is_cuda() ? time_cuda_views(images, cfg, o.min_seconds) : time_cpu(images, cfg, o.min_seconds);
#else
        m = time_cpu(images, cfg, o.min_seconds);
#endif
        rows.push_back({c, source, m});
        const std::string file = std::filesystem::temp_directory_path().string() + "/hpt_bench_augment_" +
                                 std::to_string(::getpid()) + "_" + std::to_string(c.size) + ".u8";
        std::ofstream(file, std::ios::binary)
            .write(static_cast<const char*>(images.data_ptr()), std::streamsize(images.numel()));
        files.push_back(file);
        peer_in += std::string(rows.size() > 1 ? ", " : "") + "{\"name\": \"" + c.key() + "\", \"file\": \"" + file +
                   "\", \"n\": " + std::to_string(c.n) + ", \"h\": " + std::to_string(c.size) +
                   ", \"w\": " + std::to_string(c.size) + ", \"c\": 3, \"out\": " + std::to_string(c.size) +
                   ", \"threads\": " + std::to_string(threads) + ", \"min_time\": " +
                   std::to_string(o.min_seconds) + "}";
    }
    peer_in += "]}";

    std::map<std::string, std::map<std::string, std::string>> peer;
    std::string peer_name = "none", peer_error;
    // torchvision has only the policy `full` written out (tools/peer_augment.py).
    if (o.peer && o.policy == "full" && !rows.empty()) {
        std::cerr << "running torchvision (tools/peer_augment.py) on the same batches, " << threads
                  << (threads > 1 ? " DataLoader workers\n" : " thread\n");
        const auto lines = run_peer(source_dir() + "/tools/peer_augment.py", {}, peer_in, peer_error);
        for (const std::string& l : lines) {
            auto m = parse_flat_json(l);
            peer_name = "torchvision " + m["torchvision"] + " (torch " + m["torch"] + ")";
            peer[m["name"]] = m;
        }
        if (!peer_error.empty()) std::cerr << "warning: " << peer_error << "\n";
    }
    for (const std::string& f : files) std::filesystem::remove(f);

    for (const Row& r : rows) {
        JsonLine j;
        j.str("bench", "augment_two_views").str("shape", r.c.key()).str("layer", "two views, policy " + o.policy);
        j.str("policy", o.policy);
        j.str("device", dev.str()).str("input", r.source);
#ifdef HPT_WITH_CUDA
        if (dev.is_cuda()) j.str("gpu", gpu_name(dev.index));
#endif
        j.str("cpu", cpu_model()).integer("threads", threads);
        j.num("ms", r.m.t.median_ms).num("min_ms", r.m.t.min_ms).integer("reps", r.m.t.reps);
        if (!dev.is_cuda()) j.num("cpu_ms", r.m.cpu_ms);
        const double ips = double(r.c.n) / (r.m.t.median_ms * 1e-3);
        j.num("images_per_s", ips).num("images_per_s_per_thread", ips / threads);
        if (dev.is_cuda()) j.num("gbps", r.m.gbps).num("peak_fraction", r.m.gbps / 3350.0).str("peak", "3.35 TB/s HBM3 (H100)");
        auto it = peer.find(r.c.key());
        if (it != peer.end() && it->second.count("ms")) {
            // On a GPU the peer is what a PyTorch user runs instead: torchvision's transforms in
            // DataLoader workers on the host's cores (torchvision has no fused GPU pipeline).
            const double pms = std::stod(it->second.at("ms"));
            const std::string where = dev.is_cuda() ? str(", on the CPU with ", threads, " DataLoader workers") : "";
            j.str("peer", peer_name + where).num("peer_ms", pms).num("ratio", pms / r.m.t.median_ms);
            // The faster of torchvision's tensor path and the PIL path MoCo's reference code takes.
            if (it->second.count("path"))
                j.str("peer_path", it->second.at("path"))
                    .num("peer_tensor_ms", std::stod(it->second.at("tensor_ms")))
                    .num("peer_pil_ms", std::stod(it->second.at("pil_ms")));
            j.num("peer_images_per_s", double(r.c.n) / (pms * 1e-3));
            if (it->second.count("cpu_ms") && it->second.at("cpu_ms") != "null") {
                const double pcpu = std::stod(it->second.at("cpu_ms"));
                j.num("peer_cpu_ms", pcpu).num("cpu_ratio", pcpu / r.m.cpu_ms);
            }
        } else {
            const std::string why = !o.peer ? "disabled" : o.policy != "full" ? "none for policy " + o.policy : "unavailable";
            j.str("peer", why).raw("peer_ms", "null").raw("ratio", "null");
        }
        j.str("git", git_sha()).str("time", timestamp_utc());
        out.emit(j.line());
    }
    return peer_error.empty() ? 0 : 2;
}

}  // namespace hpt::bench
