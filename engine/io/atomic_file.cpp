#include "engine/io/atomic_file.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "engine/core/error.h"

namespace hpt::io {

namespace {
std::string sys_error() { return std::strerror(errno); }
}  // namespace

AtomicFile::AtomicFile(std::string path) : path_(std::move(path)) {
    namespace fs = std::filesystem;
    HPT_CHECK(!path_.empty(), "cannot write a file with an empty name");
    std::error_code ec;
    // The rename at commit replaces whatever the name is: through a symbolic link, the file it
    // points to is the one to replace (not the link); a device, a FIFO or a folder is refused
    // (as root, writing "to /dev/null" used to replace the device with a regular file).
    if (fs::is_symlink(fs::symlink_status(path_, ec))) {
        const fs::path target = fs::weakly_canonical(path_, ec);
        if (!ec) path_ = target.string();
    }
    const fs::file_status st = fs::status(path_, ec);
    HPT_CHECK(!fs::exists(st) || fs::is_regular_file(st), path_,
              " exists and is not a regular file (a folder, a device or a FIFO): refusing to replace it");
    const fs::path parent = fs::path(path_).parent_path();
    if (!parent.empty()) {
        fs::create_directories(parent, ec);
        HPT_CHECK(!ec, "cannot create folder ", parent.string(), " for ", path_, ": ", ec.message());
    }
    tmp_ = path_ + ".tmp." + std::to_string(::getpid());
    fd_ = ::open(tmp_.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    HPT_CHECK(fd_ >= 0, "cannot create ", tmp_, ": ", sys_error());
}

AtomicFile::~AtomicFile() {
    if (fd_ >= 0) {
        ::close(fd_);
        ::unlink(tmp_.c_str());
    }
}

void AtomicFile::write(const void* data, size_t n) {
    HPT_CHECK(fd_ >= 0, "write to ", path_, " after commit");
    const char* p = static_cast<const char*>(data);
    while (n > 0) {
        const ssize_t w = ::write(fd_, p, n);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            const std::string why = w < 0 ? sys_error() : "no progress";
            ::close(fd_);
            fd_ = -1;
            ::unlink(tmp_.c_str());
            HPT_THROW("writing ", path_, " failed: ", why, " (the previous version, if any, is untouched)");
        }
        p += w;
        n -= size_t(w);
    }
}

void AtomicFile::commit() {
    HPT_CHECK(fd_ >= 0, "commit of ", path_, " twice");
    const bool synced = ::fsync(fd_) == 0;
    const std::string why = synced ? "" : sys_error();
    ::close(fd_);
    fd_ = -1;
    if (!synced) {
        ::unlink(tmp_.c_str());
        HPT_THROW("writing ", path_, " failed at fsync: ", why, " (the previous version, if any, is untouched)");
    }
    if (::rename(tmp_.c_str(), path_.c_str()) != 0) {
        const std::string e = sys_error();
        ::unlink(tmp_.c_str());
        HPT_THROW("cannot rename ", tmp_, " to ", path_, ": ", e);
    }
    // The rename itself must survive a crash too.
    std::string dir = std::filesystem::path(path_).parent_path().string();
    if (dir.empty()) dir = ".";
    const int dfd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        ::fsync(dfd);
        ::close(dfd);
    }
}

void write_file_atomic(const std::string& path, const std::string& content) {
    AtomicFile f(path);
    f.write(content);
    f.commit();
}

void sync_file(const std::string& path) {
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return;
    const bool synced = ::fsync(fd) == 0;
    const std::string why = synced ? "" : sys_error();
    ::close(fd);
    HPT_CHECK(synced, "fsync of ", path, " failed: ", why);
}

std::string read_file(const std::string& path) {
    std::error_code ec;  // a folder opens, and reads as 0 bytes: "not a safetensors file (0 bytes)"
    HPT_CHECK(!std::filesystem::is_directory(path, ec), path, " is a folder, not a file");
    std::ifstream f(path, std::ios::binary);
    HPT_CHECK(f, "cannot open ", path, ": ", sys_error());
    std::ostringstream os;
    os << f.rdbuf();
    HPT_CHECK(!f.bad(), "cannot read ", path);
    return os.str();
}

}  // namespace hpt::io
