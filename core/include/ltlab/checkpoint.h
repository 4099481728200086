#pragma once
// Reading users' checkpoints without libtorch (docs/checkpoints.md).
//
// Containers: PyTorch's zip format (torch.save since 1.6, read with libzip),
// the legacy torch.save format, safetensors; TorchScript zips are recognised
// (their tensors are listed, running them needs the training module).
// The pickle inside a torch.save file is read by a restricted interpreter
// that never executes anything: it knows a whitelist of globals (ordered
// dicts, tensor and parameter rebuilds, storages, devices, sets, bytes) and
// turns every other global into an opaque object that is reported by path.
//
// Opening a checkpoint reads the pickle and the container's directory only;
// tensor data is read on request (Checkpoint::read), so listing an 85 MB
// state_dict reads a few kilobytes. Sizes and offsets from the file are
// checked against the file before anything is allocated.

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <Eigen/Core>

namespace ltlab::ckpt {

enum class Format { TorchZip, TorchLegacy, Safetensors, TorchScript };
const char* formatName(Format format); // "pytorch-zip", "pytorch-legacy", "safetensors", "torchscript"

// What a file is by its first bytes (no parsing): for the workbench, which
// opens run files and offers to import checkpoints dropped on it.
enum class FileKind { RunFile, Checkpoint, Unreadable, Other };
FileKind sniffFile(const std::string& path);

enum class DType { F64, F32, F16, BF16, I64, I32, I16, I8, U8, Bool, Unsupported };
const char* dtypeName(DType dtype); // "float32", ...; "unsupported"
std::size_t itemSize(DType dtype);  // bytes per element (0 for Unsupported)
bool isFloating(DType dtype);

// The elements of one storage in the file (a zip record, a legacy block, a
// safetensors byte range). Tensors are views into storages.
struct Storage {
    std::string key;        // zip record data/<key>, legacy key, safetensors tensor name
    DType dtype = DType::Unsupported;
    std::string type_name;  // as written: "FloatStorage", "F32", "ComplexFloatStorage"
    std::int64_t numel = 0;
    std::string location;   // "cpu", "cuda:0", ...: everything is loaded on the CPU
    std::uint64_t file_offset = 0; // legacy and safetensors: where the elements start
};

struct TensorRef {
    const Storage* storage = nullptr;
    std::int64_t offset = 0;           // in elements
    std::vector<std::int64_t> shape;
    std::vector<std::int64_t> stride;  // in elements
    bool requires_grad = false;
    bool parameter = false;            // pickled as an nn.Parameter

    DType dtype() const { return storage->dtype; }
    std::int64_t numel() const;
};

// A pickled value. Values are owned by their Checkpoint (an arena, so that
// shared and even cyclic references are harmless); never keep one longer.
struct Value {
    enum class Kind { None, Bool, Int, BigInt, Float, String, Bytes, Tuple, List, Dict, Set, Global, Object, Tensor, Storage, Device };
    Kind kind = Kind::None;
    bool boolean = false;
    std::int64_t integer = 0;
    double real = 0;
    // String and Bytes: the data; BigInt: little-endian two's complement bytes;
    // Global and Object: "module.name"; Device: "cuda:0".
    std::string text;
    std::vector<const Value*> items;                             // Tuple, List, Set; Object: list items
    std::vector<std::pair<const Value*, const Value*>> entries;  // Dict; Object: dict items
    std::vector<const Value*> args;                              // Object: the constructor's arguments
    const Value* state = nullptr;                                // BUILD state (an object's __dict__)
    const TensorRef* tensor = nullptr;
    const Storage* storage = nullptr;

    // Dict or Object entries: the value under a string key, or null.
    const Value* get(std::string_view key) const;
    bool isString(std::string_view s) const { return kind == Kind::String && text == s; }
};
const char* kindName(Value::Kind kind);
// A one-line description: "int 3", "str 'sgd'", "dict (5 entries)", "tensor float32 [100, 512]".
std::string describe(const Value& value);

// A tensor's elements, contiguous row-major, little-endian, of its own dtype.
struct DenseTensor {
    DType dtype = DType::F32;
    std::vector<std::int64_t> shape;
    std::vector<unsigned char> bytes;

    std::int64_t numel() const;
    std::vector<double> toDoubles() const;          // exact for every dtype but int64 beyond 2^53
    std::vector<std::int64_t> toIntegers() const;   // integer and bool dtypes
};

class Checkpoint {
public:
    // Throws InputError (file, object, problem) for anything unreadable.
    static std::unique_ptr<Checkpoint> open(const std::string& path);
    ~Checkpoint();
    Checkpoint(const Checkpoint&) = delete;
    Checkpoint& operator=(const Checkpoint&) = delete;

    const std::string& path() const;
    Format format() const;
    std::string formatDetail() const;  // "zip archive 'best/', pickle protocol 2"
    // The unpickled object (safetensors: a Dict name -> Tensor, in offset order).
    const Value& root() const;
    const std::map<std::string, std::string>& metadata() const; // safetensors __metadata__
    std::size_t numStorages() const;

    // Reads one tensor's elements (views resolved, any location, on the CPU).
    DenseTensor read(const TensorRef& tensor) const;

    struct Impl;
private:
    explicit Checkpoint(std::unique_ptr<Impl> impl);
    std::unique_ptr<Impl> impl_;
};

// ---- what the file holds as a model ---------------------------------------

struct NamedTensor {
    std::string name;           // normalised: prefixes such as "module." and "encoder." removed
    std::string original_name;  // as in the file
    const TensorRef* tensor = nullptr;
};

struct StateDict {
    // How it was found: "state_dict", "training checkpoint", "pickled module",
    // "torchscript module", "safetensors", or "none".
    std::string kind = "none";
    std::string source;                  // key path in the file ("model"), empty for the root
    std::vector<std::string> prefixes;   // removed or mapped prefixes, in order ("module.", "encoder.")
    std::vector<NamedTensor> tensors;    // file order
    std::vector<std::string> notes;

    const NamedTensor* find(std::string_view name) const;
};

// Finds the model weights: the root dict of tensors, a dict of them under a
// key (state_dict, model, model_state_dict, net, module, ...), or a pickled
// nn.Module's _parameters/_buffers/_modules tree; then normalises the names.
// Holds pointers into `checkpoint`: keep the checkpoint open while it is used.
StateDict extractStateDict(const Checkpoint& checkpoint);

struct Classifier {
    std::string weight_name;   // "fc.weight"; ETF: "fc.weight_vec"
    std::string norm_name;     // ETF only: "fc.weight_norm" (effective W = vec x norm, row by row)
    std::string bias_name;     // empty when there is none
    bool etf = false;
    std::int64_t num_classes = 0, feature_dim = 0;
};

// The last linear layer (C x D weight, optional C bias), or the papers' ETF head.
std::optional<Classifier> findClassifier(const StateDict& state_dict, std::vector<std::string>* reasons = nullptr);

struct ClassifierWeights {
    Eigen::MatrixXd weight; // C x D, effective (ETF: vec x norm)
    Eigen::VectorXd bias;   // C (zeros when there is none)
    bool has_bias = false;
};
// Reads only the classifier's tensors.
ClassifierWeights readClassifier(const Checkpoint& checkpoint, const StateDict& state_dict, const Classifier& classifier);

struct Architecture {
    std::string name = "unknown";     // resnet18, resnet34, resnet50, resnext50_32x4d, resnet32, mlp, unknown
    std::string stem;                 // "cifar" (3x3 stride-1, no max-pool), "imagenet" (7x7, max-pool), ""
    std::string block;                // "basic", "bottleneck", ""
    std::vector<std::int64_t> blocks; // per stage
    std::int64_t in_channels = 0;
    std::int64_t feature_dim = 0;
    std::vector<std::string> reasons; // why unknown, or what is unusual
};
// From the keys and shapes (torchvision's names: conv1, bn1, layer1.0.conv1, ..., fc).
Architecture detectArchitecture(const StateDict& state_dict);

// HN410's args.json beside a checkpoint (peer-code-notes.md 1.1).
struct SideArgs {
    std::string path;  // empty when there is no such file
    std::optional<std::string> model_name, data_name;
    std::optional<std::int64_t> num_classes;
    std::optional<bool> use_etf, additive_logit_adjustment;
    std::optional<double> tau;
    std::vector<std::string> warnings;
};
SideArgs readSideArgs(const std::string& checkpoint_path);
// The architecture an HN410 model name stands for ("ResNet34" -> resnet34, cifar).
std::optional<Architecture> architectureFromModelName(const std::string& model_name, const std::optional<std::string>& data_name);

// Objects of classes outside the whitelist, by path ("best_acc", "(root)").
struct OpaqueEntry {
    std::string path;
    std::string type;
};
std::vector<OpaqueEntry> opaqueEntries(const Value& root, std::size_t limit = 200);

} // namespace ltlab::ckpt
