#pragma once
// The restricted pickle interpreter of ltlab/checkpoint.h (internal).
// It never calls anything: GLOBAL names a class or function, REDUCE/NEWOBJ
// of a whitelisted name builds the value it stands for, of any other name an
// opaque Object. Every length and index from the bytes is checked.

#include <cstddef>
#include <map>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "ltlab/checkpoint.h"

namespace ltlab::ckpt::detail {

// Malformed or unsupported pickle data; the message names the byte offset.
class PickleError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Owns every value, tensor and storage of a checkpoint.
struct Arena {
    std::vector<std::unique_ptr<Value>> values;
    std::vector<std::unique_ptr<TensorRef>> tensors;
    std::vector<std::unique_ptr<Storage>> storages;
    std::map<std::string, Storage*> storage_by_key;

    Value* make(Value::Kind kind);
    // The storage of a persistent id, shared by key (views share storages).
    Storage* storage(const std::string& key, DType dtype, const std::string& type_name, std::int64_t numel,
                     const std::string& location);
};

struct PickleResult {
    Value* root = nullptr;
    int protocol = 0;
    std::size_t end = 0; // offset just after STOP
};

// Runs the pickle that starts at data[begin] and ends at its STOP.
PickleResult unpickle(const unsigned char* data, std::size_t size, std::size_t begin, Arena& arena);

// dtype of a torch storage class name ("FloatStorage"), Unsupported if unknown.
DType storageDType(const std::string& type_name);

} // namespace ltlab::ckpt::detail
