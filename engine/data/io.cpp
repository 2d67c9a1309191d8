#include "engine/data/io.h"

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>

#include "engine/core/error.h"

namespace hpt::data {

namespace {

std::vector<uint8_t> read_some(const std::string& path, size_t max_bytes) {
    struct stat st;
    if (::stat(path.c_str(), &st) != 0) HPT_THROW("cannot open '", path, "': ", std::strerror(errno));
    if (S_ISDIR(st.st_mode)) HPT_THROW("'", path, "' is a directory, not a file");
    FILE* f = std::fopen(path.c_str(), "rb");
    if (!f) HPT_THROW("cannot open '", path, "': ", std::strerror(errno));
    // st_size is only a hint (pipes say 0, files may change under us): read until EOF.
    std::vector<uint8_t> out;
    if (S_ISREG(st.st_mode)) out.reserve(std::min<size_t>(size_t(st.st_size), max_bytes));
    uint8_t buf[1 << 16];
    while (out.size() < max_bytes) {
        const size_t want = std::min(sizeof buf, max_bytes - out.size());
        const size_t got = std::fread(buf, 1, want, f);
        out.insert(out.end(), buf, buf + got);
        if (got < want) break;
    }
    const bool failed = std::ferror(f) != 0;
    std::fclose(f);
    if (failed) HPT_THROW("error reading '", path, "'");
    return out;
}

}  // namespace

std::vector<uint8_t> read_file(const std::string& path) { return read_some(path, SIZE_MAX); }

std::vector<uint8_t> read_file_head(const std::string& path, size_t max_bytes) { return read_some(path, max_bytes); }

void write_file(const std::string& path, const void* data, size_t size) {
    FILE* f = std::fopen(path.c_str(), "wb");
    if (!f) HPT_THROW("cannot create '", path, "': ", std::strerror(errno));
    const bool ok = std::fwrite(data, 1, size, f) == size;
    if (std::fclose(f) != 0 || !ok) HPT_THROW("error writing '", path, "'");
}

}  // namespace hpt::data
