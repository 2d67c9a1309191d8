// Element types of the engine and the switch macros that turn a runtime dtype into a C++ type.
//
// bf16 is a storage type: it converts to and from float (round to nearest even) and the elementwise
// kernels compute it in float. Compute-heavy ops (GEMM, conv) take f32 and f64.
#pragma once
#include <cstddef>
#include <cstdint>
#include <cstring>

#if defined(__CUDACC__)
#define HPT_HD __host__ __device__
#else
#define HPT_HD
#endif

namespace hpt {

enum class DType : uint8_t { f32, f64, bf16, u8, i32, i64 };
constexpr int kNumDTypes = 6;

size_t dtype_size(DType t);
const char* dtype_name(DType t);
bool is_floating(DType t);  // f32, f64, bf16

struct bf16 {
    uint16_t bits = 0;
    bf16() = default;
    HPT_HD explicit bf16(float f) : bits(round(f)) {}
    HPT_HD operator float() const {
        uint32_t u = uint32_t(bits) << 16;
        float f;
        memcpy(&f, &u, 4);
        return f;
    }
    // Round to nearest, ties to even; NaN stays a (quiet) NaN.
    HPT_HD static uint16_t round(float f) {
        uint32_t u;
        memcpy(&u, &f, 4);
        if ((u & 0x7fffffffu) > 0x7f800000u) return uint16_t((u >> 16) | 0x40);
        u += 0x7fffu + ((u >> 16) & 1u);
        return uint16_t(u >> 16);
    }
};

template <class T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::f32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::f64; };
template <> struct dtype_of<bf16> { static constexpr DType value = DType::bf16; };
template <> struct dtype_of<uint8_t> { static constexpr DType value = DType::u8; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::i32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::i64; };

// The type arithmetic is done in: float for bf16, the type itself otherwise.
template <class T> struct compute_type { using type = T; };
template <> struct compute_type<bf16> { using type = float; };

[[noreturn]] void throw_unsupported_dtype(const char* op, DType t);

}  // namespace hpt

#define HPT_DTYPE_CASE(enum_, type_, ...) \
    case ::hpt::DType::enum_: {           \
        using scalar_t = type_;           \
        __VA_ARGS__();                    \
        break;                            \
    }

// HPT_DISPATCH_FLOAT(dtype, "op", [&] { ... scalar_t ... }): f32 and f64.
#define HPT_DISPATCH_FLOAT(dt, opname, ...)                        \
    switch (dt) {                                                  \
        HPT_DTYPE_CASE(f32, float, __VA_ARGS__)                    \
        HPT_DTYPE_CASE(f64, double, __VA_ARGS__)                   \
        default: ::hpt::throw_unsupported_dtype(opname, dt);       \
    }

// f32, f64 and bf16.
#define HPT_DISPATCH_FLOAT_BF16(dt, opname, ...)                   \
    switch (dt) {                                                  \
        HPT_DTYPE_CASE(f32, float, __VA_ARGS__)                    \
        HPT_DTYPE_CASE(f64, double, __VA_ARGS__)                   \
        HPT_DTYPE_CASE(bf16, ::hpt::bf16, __VA_ARGS__)             \
        default: ::hpt::throw_unsupported_dtype(opname, dt);       \
    }

#define HPT_DISPATCH_INDEX(dt, opname, ...)                        \
    switch (dt) {                                                  \
        HPT_DTYPE_CASE(i32, int32_t, __VA_ARGS__)                  \
        HPT_DTYPE_CASE(i64, int64_t, __VA_ARGS__)                  \
        default: ::hpt::throw_unsupported_dtype(opname, dt);       \
    }

#define HPT_DISPATCH_ALL(dt, opname, ...)                          \
    switch (dt) {                                                  \
        HPT_DTYPE_CASE(f32, float, __VA_ARGS__)                    \
        HPT_DTYPE_CASE(f64, double, __VA_ARGS__)                   \
        HPT_DTYPE_CASE(bf16, ::hpt::bf16, __VA_ARGS__)             \
        HPT_DTYPE_CASE(u8, uint8_t, __VA_ARGS__)                   \
        HPT_DTYPE_CASE(i32, int32_t, __VA_ARGS__)                  \
        HPT_DTYPE_CASE(i64, int64_t, __VA_ARGS__)                  \
        default: ::hpt::throw_unsupported_dtype(opname, dt);       \
    }
