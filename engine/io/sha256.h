// SHA-256 (FIPS 180-4), for checkpoint lineage: a manifest records its parent's hash.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace hpt::io {

std::string sha256_hex(const void* data, size_t n);
std::string sha256_file(const std::string& path);  // throws naming the path when unreadable

}  // namespace hpt::io
