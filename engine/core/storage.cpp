#include "engine/core/storage.h"

namespace hpt {

Storage::Storage(size_t nbytes, Device device) : nbytes_(nbytes), device_(device) {
    allocator_ = &allocator_for(device);
    ptr_ = allocator_->allocate(nbytes);
}

Storage::Storage(void* ptr, size_t nbytes, Device device, std::function<void(void*)> release)
    : ptr_(ptr), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
    if (allocator_) {
        allocator_->deallocate(ptr_, nbytes_);
    } else if (release_) {
        release_(ptr_);
    }
}

}  // namespace hpt
