// Files that appear whole or not at all: the content goes to a temporary file in the same folder,
// is fsync'ed, renamed over the target, and the folder is fsync'ed. A process killed at any point
// leaves either the old file or the new one, never a torn one. Errors (a full disk) throw,
// naming the file and the system's reason, and remove the temporary file.
#pragma once
#include <string>

namespace hpt::io {

class AtomicFile {
public:
    explicit AtomicFile(std::string path);
    ~AtomicFile();  // abandons (removes the temporary) unless commit() ran
    AtomicFile(const AtomicFile&) = delete;
    AtomicFile& operator=(const AtomicFile&) = delete;

    void write(const void* data, size_t n);
    void write(const std::string& s) { write(s.data(), s.size()); }
    void commit();

private:
    std::string path_, tmp_;
    int fd_ = -1;
};

// Convenience: the whole file at once.
void write_file_atomic(const std::string& path, const std::string& content);
// Flushes a file that grows by appends (metrics.jsonl) to the disk; nothing when it does not exist.
// Called before a checkpoint, so that after a power loss the lines the checkpoint covers are there.
void sync_file(const std::string& path);
// Reads a whole file; throws naming the path when it cannot.
std::string read_file(const std::string& path);

}  // namespace hpt::io
