#pragma once
// Errors that ltlab reports to its users. Every message about input names the
// file, the HDF5 object (when there is one) and what is wrong with it.

#include <stdexcept>
#include <string>

namespace ltlab {

// Unreadable or invalid input: a file, an object in it, or a value.
class InputError : public std::runtime_error {
public:
    InputError(std::string file, std::string object, const std::string& problem);

    const std::string& file() const noexcept { return file_; }
    const std::string& object() const noexcept { return object_; }

private:
    std::string file_;
    std::string object_;
};

// A request that cannot be honoured as asked (a bad option, an unknown snapshot name).
class UsageError : public std::runtime_error {
public:
    using std::runtime_error::runtime_error;
};

// Thrown when a long computation is cancelled through its progress callback.
class Cancelled : public std::runtime_error {
public:
    Cancelled() : std::runtime_error("cancelled") {}
};

} // namespace ltlab
