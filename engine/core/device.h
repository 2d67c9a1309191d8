// Where a tensor lives. Devices are explicit: no op moves data between them on its own.
#pragma once
#include <cstdint>
#include <string>

namespace hpt {

enum class DeviceType : uint8_t { cpu, cuda };
constexpr int kNumDeviceTypes = 2;

struct Device {
    DeviceType type = DeviceType::cpu;
    int index = 0;

    static Device cpu() { return {DeviceType::cpu, 0}; }
    static Device cuda(int i = 0) { return {DeviceType::cuda, i}; }
    // "cpu", "cuda", "cuda:1". Throws on anything else.
    static Device parse(const std::string& s);

    bool is_cpu() const { return type == DeviceType::cpu; }
    bool is_cuda() const { return type == DeviceType::cuda; }
    std::string str() const;
    bool operator==(const Device& o) const { return type == o.type && index == o.index; }
    bool operator!=(const Device& o) const { return !(*this == o); }
};

const char* device_type_name(DeviceType t);

// Number of CUDA devices visible to this process: 0 when the build has no CUDA or the machine no GPU.
int cuda_device_count();

// Makes cuda:index the calling thread's current device (an error naming it when that fails).
void set_current_cuda_device(int index);

}  // namespace hpt
