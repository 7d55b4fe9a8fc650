// Read-only memory map of a checkpoint file (zero copy; pages are read as the kernels touch them).
#pragma once
#include <cstddef>
#include <memory>
#include <string>

namespace vr {

class MappedFile {
 public:
  // Throws vr::Error naming the path when the file cannot be opened or mapped.
  static std::shared_ptr<MappedFile> open(const std::string& path);
  ~MappedFile();
  const unsigned char* data() const { return data_; }
  size_t size() const { return size_; }
  const std::string& path() const { return path_; }

 private:
  MappedFile() = default;
  std::string path_;
  unsigned char* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace vr
