// The engine's one exception type and the check macros that build its messages.
//
// Library code never aborts on bad input: it throws hpt::Error whose message names the op, the
// offending shapes/dtypes/devices or file, and where in our source the check sits.
#pragma once
#include <cstdint>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

namespace hpt {

class Error : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Out of memory on a device; a separate type so callers can react (smaller batch, free caches).
class OutOfMemory : public Error {
public:
    using Error::Error;
};

namespace detail {
inline void str_into(std::ostringstream&) {}
template <class T, class... R>
void str_into(std::ostringstream& os, const T& v, const R&... rest) {
    os << v;
    str_into(os, rest...);
}
[[noreturn]] void fail(const char* file, int line, const std::string& msg);
}  // namespace detail

template <class... A>
std::string str(const A&... a) {
    std::ostringstream os;
    detail::str_into(os, a...);
    return os.str();
}

std::string shape_str(const std::vector<int64_t>& s);

}  // namespace hpt

#define HPT_THROW(...) ::hpt::detail::fail(__FILE__, __LINE__, ::hpt::str(__VA_ARGS__))
#define HPT_CHECK(cond, ...)                                          \
    do {                                                              \
        if (!(cond)) ::hpt::detail::fail(__FILE__, __LINE__, ::hpt::str(__VA_ARGS__)); \
    } while (0)
