// What the code under test writes to standard error, for tests of warnings: fd 2 goes to a
// temporary file while the object lives (fprintf and std::cerr both land there).
#pragma once
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

namespace hpt::test {

class StderrCapture {
public:
    StderrCapture() {
        char tmpl[] = "/tmp/hpt_stderr_XXXXXX";
        const int fd = ::mkstemp(tmpl);
        path_ = tmpl;
        std::fflush(stderr);
        std::cerr.flush();
        saved_ = ::dup(2);
        ::dup2(fd, 2);
        ::close(fd);
    }
    ~StderrCapture() {
        restore();
        std::remove(path_.c_str());
    }
    StderrCapture(const StderrCapture&) = delete;
    StderrCapture& operator=(const StderrCapture&) = delete;

    // Everything written so far; stderr is back on its own file from here on.
    std::string text() {
        restore();
        std::ifstream in(path_);
        std::stringstream ss;
        ss << in.rdbuf();
        return ss.str();
    }

private:
    void restore() {
        if (saved_ < 0) return;
        std::fflush(stderr);
        std::cerr.flush();
        ::dup2(saved_, 2);
        ::close(saved_);
        saved_ = -1;
    }
    std::string path_;
    int saved_ = -1;
};

}  // namespace hpt::test
