// Names, descriptions and element conversions of checkpoint values.

#include <cmath>
#include <cstring>

#include "ltlab/checkpoint.h"

namespace ltlab::ckpt {

using Kind = Value::Kind;

const char* formatName(Format format) {
    switch (format) {
    case Format::TorchZip: return "pytorch-zip";
    case Format::TorchLegacy: return "pytorch-legacy";
    case Format::Safetensors: return "safetensors";
    case Format::TorchScript: return "torchscript";
    }
    return "?";
}

const char* dtypeName(DType dtype) {
    switch (dtype) {
    case DType::F64: return "float64";
    case DType::F32: return "float32";
    case DType::F16: return "float16";
    case DType::BF16: return "bfloat16";
    case DType::I64: return "int64";
    case DType::I32: return "int32";
    case DType::I16: return "int16";
    case DType::I8: return "int8";
    case DType::U8: return "uint8";
    case DType::Bool: return "bool";
    case DType::Unsupported: return "unsupported";
    }
    return "?";
}

std::size_t itemSize(DType dtype) {
    switch (dtype) {
    case DType::F64:
    case DType::I64: return 8;
    case DType::F32:
    case DType::I32: return 4;
    case DType::F16:
    case DType::BF16:
    case DType::I16: return 2;
    case DType::I8:
    case DType::U8:
    case DType::Bool: return 1;
    case DType::Unsupported: return 0;
    }
    return 0;
}

bool isFloating(DType dtype) {
    return dtype == DType::F64 || dtype == DType::F32 || dtype == DType::F16 || dtype == DType::BF16;
}

const char* kindName(Kind kind) {
    static const char* names[] = {"None",  "bool", "int",    "int",    "float", "str",    "bytes",  "tuple",
                                  "list",  "dict", "set",    "global", "object", "tensor", "storage", "device"};
    return names[static_cast<int>(kind)];
}

std::int64_t TensorRef::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d; // checked against overflow when unpickled
    return n;
}

const Value* Value::get(std::string_view key) const {
    for (const auto& [k, v] : entries)
        if (k->kind == Kind::String && k->text == key) return v;
    return nullptr;
}

static std::string shapeText(const std::vector<std::int64_t>& shape) {
    std::string s = "[";
    for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

std::string describe(const Value& v) {
    switch (v.kind) {
    case Kind::None: return "None";
    case Kind::Bool: return v.boolean ? "bool True" : "bool False";
    case Kind::Int: return "int " + std::to_string(v.integer);
    case Kind::BigInt: return "int (" + std::to_string(v.text.size() * 8) + " bits)";
    case Kind::Float: {
        char buf[40];
        std::snprintf(buf, sizeof buf, "float %.9g", v.real);
        return buf;
    }
    case Kind::String: return "str '" + (v.text.size() > 60 ? v.text.substr(0, 57) + "..." : v.text) + "'";
    case Kind::Bytes: return "bytes (" + std::to_string(v.text.size()) + ")";
    case Kind::Tuple:
    case Kind::List:
    case Kind::Set: return std::string(kindName(v.kind)) + " (" + std::to_string(v.items.size()) + " items)";
    case Kind::Dict: return "dict (" + std::to_string(v.entries.size()) + " entries)";
    case Kind::Global: return "global " + v.text;
    case Kind::Object: return "object " + v.text;
    case Kind::Tensor:
        return std::string("tensor ") + (v.tensor->dtype() == DType::Unsupported ? v.tensor->storage->type_name : dtypeName(v.tensor->dtype())) +
               " " + shapeText(v.tensor->shape);
    case Kind::Storage: return "storage " + v.storage->type_name;
    case Kind::Device: return "device " + v.text;
    }
    return "?";
}

// ---- element conversions ----------------------------------------------------

std::int64_t DenseTensor::numel() const {
    std::int64_t n = 1;
    for (auto d : shape) n *= d;
    return n;
}

static double halfToDouble(std::uint16_t h) {
    const int exponent = (h >> 10) & 0x1F, mantissa = h & 0x3FF;
    const double sign = (h & 0x8000) ? -1.0 : 1.0;
    if (exponent == 0) return sign * std::ldexp(mantissa, -24);
    if (exponent == 31) return mantissa ? std::nan("") : sign * INFINITY;
    return sign * std::ldexp(mantissa + 1024, exponent - 25);
}

static double bf16ToDouble(std::uint16_t b) {
    const std::uint32_t bits = static_cast<std::uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &bits, sizeof f);
    return f;
}

template <typename T>
static T load(const unsigned char* p) {
    T v;
    std::memcpy(&v, p, sizeof v);
    return v;
}

static double elementAsDouble(DType dtype, const unsigned char* p) {
    switch (dtype) {
    case DType::F64: return load<double>(p);
    case DType::F32: return load<float>(p);
    case DType::F16: return halfToDouble(load<std::uint16_t>(p));
    case DType::BF16: return bf16ToDouble(load<std::uint16_t>(p));
    case DType::I64: return static_cast<double>(load<std::int64_t>(p));
    case DType::I32: return load<std::int32_t>(p);
    case DType::I16: return load<std::int16_t>(p);
    case DType::I8: return load<std::int8_t>(p);
    case DType::U8: return *p;
    case DType::Bool: return *p ? 1.0 : 0.0;
    case DType::Unsupported: break;
    }
    return 0;
}

std::vector<double> DenseTensor::toDoubles() const {
    const std::size_t item = itemSize(dtype), n = item ? bytes.size() / item : 0;
    std::vector<double> out(n);
    if (dtype == DType::F32) {
        for (std::size_t i = 0; i < n; ++i) out[i] = load<float>(bytes.data() + i * 4);
        return out;
    }
    for (std::size_t i = 0; i < n; ++i) out[i] = elementAsDouble(dtype, bytes.data() + i * item);
    return out;
}

std::vector<std::int64_t> DenseTensor::toIntegers() const {
    const std::size_t item = itemSize(dtype), n = item ? bytes.size() / item : 0;
    std::vector<std::int64_t> out(n);
    for (std::size_t i = 0; i < n; ++i) {
        const unsigned char* p = bytes.data() + i * item;
        out[i] = dtype == DType::I64 ? load<std::int64_t>(p) : static_cast<std::int64_t>(elementAsDouble(dtype, p));
    }
    return out;
}

} // namespace ltlab::ckpt
