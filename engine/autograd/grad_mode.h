// Grad mode: whether ops are recorded for backward. Per thread, on by default.
#pragma once

namespace hpt {

bool grad_enabled();
void set_grad_enabled(bool on);

// Disables recording for its lifetime (inference, optimizer steps, backward formulas).
class NoGradGuard {
public:
    NoGradGuard() : prev_(grad_enabled()) { set_grad_enabled(false); }
    ~NoGradGuard() { set_grad_enabled(prev_); }
    NoGradGuard(const NoGradGuard&) = delete;
    NoGradGuard& operator=(const NoGradGuard&) = delete;

private:
    bool prev_;
};

}  // namespace hpt
