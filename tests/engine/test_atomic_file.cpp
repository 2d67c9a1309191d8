// Atomic writes, which checkpoints and every other output go through: what the rename may replace.
#include <catch2/catch.hpp>
#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <string>

#include "engine/io/atomic_file.h"

using namespace hpt;

TEST_CASE("atomic writes replace regular files only, through symbolic links", "[io]") {
    namespace fs = std::filesystem;
    const fs::path dir = fs::temp_directory_path() / ("hpt_atomic_" + std::to_string(::getpid()));
    fs::remove_all(dir);
    fs::create_directories(dir);
    const std::string target = (dir / "target.txt").string(), link = (dir / "link.txt").string();
    io::write_file_atomic(target, "old");
    fs::create_symlink(target, link);
    io::write_file_atomic(link, "new");  // the rename used to replace the link by a regular file
    CHECK(fs::is_symlink(link));
    CHECK(io::read_file(target) == "new");
    const std::string fifo = (dir / "fifo").string();
    REQUIRE(::mkfifo(fifo.c_str(), 0600) == 0);
    CHECK_THROWS_WITH(io::write_file_atomic(fifo, "x"), Catch::Contains("is not a regular file"));
    CHECK(fs::is_fifo(fifo));
    CHECK_THROWS_WITH(io::write_file_atomic(dir.string(), "x"), Catch::Contains("is not a regular file"));
    CHECK_THROWS_WITH(io::write_file_atomic("", "x"), Catch::Contains("empty name"));
    CHECK_THROWS_WITH(io::read_file(dir.string()), Catch::Contains("is a folder, not a file"));
    fs::remove_all(dir);
}
