#include "engine/ops/registry.h"

#include <cstdint>
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>

namespace hpt {

namespace {
const OpInfo kOps[] = {
#define HPT_OP(name, nin, nout, kind) {#name, nin, nout, OpKind::kind},
#include "engine/ops/ops.def"
#undef HPT_OP
};
static_assert(sizeof(kOps) / sizeof(kOps[0]) == size_t(kNumOps), "op table and OpId out of sync");

KernelFn (&kernel_table())[kNumOps][kNumDeviceTypes] {
    static KernelFn table[kNumOps][kNumDeviceTypes] = {};
    return table;
}

bool is_number(const Tensor& t) { return t.defined() && t.dim() == 0 && t.device().is_cpu(); }

std::string describe(const char* op, const Tensor* ts, size_t n) {
    std::ostringstream os;
    os << "op '" << op << "': tensors are on different devices:";
    for (size_t i = 0; i < n; ++i) {
        if (!ts[i].defined()) continue;
        os << " [" << i << "] " << dtype_name(ts[i].dtype()) << shape_str(ts[i].shape()) << " on "
           << ts[i].device().str() << ';';
    }
    os << " move them with .to(device) first";
    return os.str();
}

Device common_device_impl(const char* op, const Tensor* ts, size_t n) {
    const Tensor* first = nullptr;
    for (size_t i = 0; i < n; ++i) {
        if (ts[i].defined() && !is_number(ts[i])) {
            first = &ts[i];
            break;
        }
    }
    if (!first) return Device::cpu();
    const Device d = first->device();
    for (size_t i = 0; i < n; ++i) {
        if (!ts[i].defined() || is_number(ts[i])) continue;
        if (ts[i].device() != d) HPT_THROW(describe(op, ts, n));
    }
    return d;
}

// HPT_PROFILE=1: time every kernel call (host wall time; on CUDA only meaningful with
// HPT_CUDA_SYNC=1) and print a table per (op, device) when the process exits.
struct Profile {
    bool on = [] {  // "0" and "" are off, as for every other switch
        const char* e = std::getenv("HPT_PROFILE");
        return e && *e && std::string(e) != "0";
    }();
    std::atomic<int64_t> ns[kNumOps][kNumDeviceTypes] = {};
    std::atomic<int64_t> calls[kNumOps][kNumDeviceTypes] = {};
    ~Profile() {
        if (!on) return;
        std::vector<std::pair<int64_t, std::pair<int, int>>> rows;
        int64_t total = 0;
        for (int o = 0; o < kNumOps; ++o)
            for (int d = 0; d < kNumDeviceTypes; ++d)
                if (calls[o][d]) rows.push_back({ns[o][d].load(), {o, d}}), total += ns[o][d];
        std::sort(rows.rbegin(), rows.rend());
        std::fprintf(stderr, "\nhpt kernel profile (HPT_PROFILE): %.3f s in kernels\n%-28s %-5s %10s %10s %7s\n",
                     double(total) * 1e-9, "op", "dev", "calls", "ms", "share");
        for (auto& [t, od] : rows)
            std::fprintf(stderr, "%-28s %-5s %10lld %10.1f %6.1f%%\n", kOps[od.first].name,
                         device_type_name(DeviceType(od.second)), static_cast<long long>(calls[od.first][od.second].load()),
                         double(t) * 1e-6, 100.0 * double(t) / double(std::max<int64_t>(total, 1)));
    }
};
Profile& profile() {
    static Profile p;
    return p;
}

void run_impl(OpId op, const Tensor* in, size_t n_in, const Tensor* out, size_t n_out, const void* attrs) {
    std::vector<Tensor> all(in, in + n_in);
    all.insert(all.end(), out, out + n_out);
    const Device d = common_device_impl(op_name(op), all.data(), all.size());
    KernelFn fn = find_kernel(op, d.type);
    HPT_CHECK(fn, "op '", op_name(op), "' has no kernel for device ", device_type_name(d.type),
              " in this build");
    KernelArgs args{op, in, int(n_in), const_cast<Tensor*>(out), int(n_out), attrs};
    Profile& p = profile();
    if (!p.on) {
        fn(args);
        return;
    }
    const auto t0 = std::chrono::steady_clock::now();
    fn(args);
    p.ns[int(op)][int(d.type)] += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    ++p.calls[int(op)][int(d.type)];
}
}  // namespace

const OpInfo& op_info(OpId op) { return kOps[int(op)]; }

OpId op_from_name(const std::string& name) {
    for (int i = 0; i < kNumOps; ++i)
        if (name == kOps[i].name) return OpId(i);
    HPT_THROW("unknown op '", name, "'");
}

const char* op_kind_name(OpKind k) {
    switch (k) {
        case OpKind::Diff: return "Diff";
        case OpKind::View: return "View";
        case OpKind::NoGrad: return "NoGrad";
        case OpKind::Kernel: return "Kernel";
    }
    return "?";
}

void register_kernel(OpId op, DeviceType dev, KernelFn fn) {
    HPT_CHECK(op_info(op).kind != OpKind::View, "view op '", op_name(op), "' takes no kernel");
    HPT_CHECK(!kernel_table()[int(op)][int(dev)], "two ", device_type_name(dev), " kernels registered for op '",
              op_name(op), "'");
    kernel_table()[int(op)][int(dev)] = fn;
}

KernelFn find_kernel(OpId op, DeviceType dev) { return kernel_table()[int(op)][int(dev)]; }

bool supports(OpId op, DeviceType dev) {
    return op_info(op).kind == OpKind::View || find_kernel(op, dev) != nullptr;
}

void run_kernel(OpId op, std::initializer_list<Tensor> in, std::initializer_list<Tensor> out, const void* attrs) {
    run_impl(op, in.begin(), in.size(), out.begin(), out.size(), attrs);
}

void run_kernel(OpId op, const std::vector<Tensor>& in, const std::vector<Tensor>& out, const void* attrs) {
    run_impl(op, in.data(), in.size(), out.data(), out.size(), attrs);
}

Device common_device(const char* op, std::initializer_list<Tensor> ts) {
    return common_device_impl(op, ts.begin(), ts.size());
}

Device common_device(const char* op, const std::vector<Tensor>& ts) {
    return common_device_impl(op, ts.data(), ts.size());
}

}  // namespace hpt
