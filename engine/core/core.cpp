// Small definitions for dtype.h, device.h and error.h.
#include <cstdint>
#include <cstring>
#include <sstream>

#include "engine/core/device.h"
#include "engine/core/dtype.h"
#include "engine/core/error.h"

namespace hpt {

size_t dtype_size(DType t) {
    switch (t) {
        case DType::f32: return 4;
        case DType::f64: return 8;
        case DType::bf16: return 2;
        case DType::u8: return 1;
        case DType::i32: return 4;
        case DType::i64: return 8;
    }
    return 0;
}

const char* dtype_name(DType t) {
    switch (t) {
        case DType::f32: return "f32";
        case DType::f64: return "f64";
        case DType::bf16: return "bf16";
        case DType::u8: return "u8";
        case DType::i32: return "i32";
        case DType::i64: return "i64";
    }
    return "?";
}

bool is_floating(DType t) { return t == DType::f32 || t == DType::f64 || t == DType::bf16; }

void throw_unsupported_dtype(const char* op, DType t) {
    HPT_THROW("op '", op, "' does not support dtype ", dtype_name(t));
}

const char* device_type_name(DeviceType t) { return t == DeviceType::cpu ? "cpu" : "cuda"; }

std::string Device::str() const {
    if (type == DeviceType::cpu) return "cpu";
    return "cuda:" + std::to_string(index);
}

Device Device::parse(const std::string& s) {
    if (s == "cpu") return cpu();
    if (s == "cuda") return cuda(0);
    if (s.rfind("cuda:", 0) == 0) {
        const std::string n = s.substr(5);
        bool digits = !n.empty() && n.size() < 6;
        for (char c : n) digits = digits && c >= '0' && c <= '9';
        if (digits) return cuda(std::stoi(n));
    }
    HPT_THROW("unknown device '", s, "' (expected cpu, cuda or cuda:N)");
}

std::string shape_str(const std::vector<int64_t>& s) {
    std::ostringstream os;
    os << '[';
    for (size_t i = 0; i < s.size(); ++i) os << (i ? ", " : "") << s[i];
    os << ']';
    return os.str();
}

namespace detail {
void fail(const char* file, int line, const std::string& msg) {
    // Keep the path from the project root: ".../engine/ops/conv2d.cpp" -> "engine/ops/conv2d.cpp".
    const char* shown = file;
    for (const char* top : {"/engine/", "/kernels/", "/models/", "/ssl/", "/hpt/", "/bench/", "/tests/"}) {
        const char* p = std::strstr(file, top);
        if (p) {
            shown = p + 1;
            break;
        }
    }
    throw Error(msg + " [" + shown + ":" + std::to_string(line) + "]");
}
}  // namespace detail

}  // namespace hpt
