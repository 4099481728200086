#include "ltlab/error.h"

namespace ltlab {

static std::string compose(const std::string& file, const std::string& object, const std::string& problem) {
    std::string message = file;
    if (!object.empty()) message += ": " + object;
    return message + ": " + problem;
}

InputError::InputError(std::string file, std::string object, const std::string& problem)
    : std::runtime_error(compose(file, object, problem)), file_(std::move(file)), object_(std::move(object)) {}

} // namespace ltlab
