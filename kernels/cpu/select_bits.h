// take ? a : b as a mask on the bits, for CPU loops whose condition is data (random signs of
// activations): GCC compiles a plain conditional with stores into a branch, which such data
// mispredicts about half the time. The result is a or b exactly, NaN payloads and signed zeros
// included.
#pragma once
#include <cstdint>
#include <cstring>
#include <type_traits>

namespace hpt {

template <class V>
inline V select_bits(bool take, V a, V b) {
    static_assert(sizeof(V) == 8 || sizeof(V) == 4 || sizeof(V) == 2, "select_bits: 2, 4 or 8-byte values");
    using Bits = std::conditional_t<sizeof(V) == 8, uint64_t, std::conditional_t<sizeof(V) == 4, uint32_t, uint16_t>>;
    Bits x, y;
    std::memcpy(&x, &a, sizeof(V));
    std::memcpy(&y, &b, sizeof(V));
    const Bits r = Bits(y ^ ((x ^ y) & Bits(Bits(0) - Bits(take))));
    V out;
    std::memcpy(&out, &r, sizeof(V));
    return out;
}

}  // namespace hpt
