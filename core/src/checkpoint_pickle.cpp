// The restricted pickle interpreter (protocols 2-5 opcodes that torch.save
// and ordinary training scripts produce; checkpoint-facts.md section 2).

#include "checkpoint_pickle.h"

#include <cstring>
#include <limits>
#include <unordered_map>

namespace ltlab::ckpt::detail {

using Kind = Value::Kind;

Value* Arena::make(Kind kind) {
    values.push_back(std::make_unique<Value>());
    values.back()->kind = kind;
    return values.back().get();
}

Storage* Arena::storage(const std::string& key, DType dtype, const std::string& type_name, std::int64_t numel,
                        const std::string& location) {
    if (auto it = storage_by_key.find(key); it != storage_by_key.end()) {
        if (it->second->type_name != type_name || it->second->numel != numel)
            throw PickleError("storage '" + key + "' appears with two types or sizes");
        return it->second;
    }
    auto s = std::make_unique<Storage>();
    s->key = key;
    s->dtype = dtype;
    s->type_name = type_name;
    s->numel = numel;
    s->location = location;
    storages.push_back(std::move(s));
    return storage_by_key[key] = storages.back().get();
}

DType storageDType(const std::string& type_name) {
    static const std::map<std::string, DType> types = {
        {"DoubleStorage", DType::F64}, {"FloatStorage", DType::F32},  {"HalfStorage", DType::F16},
        {"BFloat16Storage", DType::BF16}, {"LongStorage", DType::I64}, {"IntStorage", DType::I32},
        {"ShortStorage", DType::I16},  {"CharStorage", DType::I8},    {"ByteStorage", DType::U8},
        {"BoolStorage", DType::Bool}};
    auto it = types.find(type_name);
    return it == types.end() ? DType::Unsupported : it->second;
}

namespace {

enum Op : unsigned char {
    MARK = '(', STOP = '.', POP = '0', POP_MARK = '1', DUP = '2', BINFLOAT = 'G', BININT = 'J', BININT1 = 'K',
    BININT2 = 'M', NONE = 'N', BINPERSID = 'Q', REDUCE = 'R', BINSTRING = 'T', SHORT_BINSTRING = 'U',
    BINUNICODE = 'X', APPEND = 'a', BUILD = 'b', GLOBAL = 'c', DICT = 'd', EMPTY_DICT = '}', APPENDS = 'e',
    BINGET = 'h', LONG_BINGET = 'j', LIST = 'l', EMPTY_LIST = ']', BINPUT = 'q', LONG_BINPUT = 'r', SETITEM = 's',
    TUPLE = 't', EMPTY_TUPLE = ')', SETITEMS = 'u', BINBYTES = 'B', SHORT_BINBYTES = 'C', PROTO = 0x80,
    NEWOBJ = 0x81, TUPLE1 = 0x85, TUPLE2 = 0x86, TUPLE3 = 0x87, NEWTRUE = 0x88, NEWFALSE = 0x89, LONG1 = 0x8a,
    LONG4 = 0x8b, SHORT_BINUNICODE = 0x8c, BINUNICODE8 = 0x8d, BINBYTES8 = 0x8e, EMPTY_SET = 0x8f,
    ADDITEMS = 0x90, FROZENSET = 0x91, NEWOBJ_EX = 0x92, STACK_GLOBAL = 0x93, MEMOIZE = 0x94, FRAME = 0x95,
    BYTEARRAY8 = 0x96,
};

// Checked multiplication for element counts and byte sizes.
bool mulOverflows(std::int64_t a, std::int64_t b, std::int64_t& out) {
    return __builtin_mul_overflow(a, b, &out);
}

class Machine {
public:
    Machine(const unsigned char* data, std::size_t size, std::size_t begin, Arena& arena)
        : data_(data), size_(size), pos_(begin), arena_(arena) {}

    PickleResult run() {
        while (true) {
            op_pos_ = pos_;
            const unsigned char op = byte();
            if (op == STOP) return finish();
            step(op);
        }
    }

private:
    [[noreturn]] void fail(const std::string& problem) const {
        throw PickleError("pickle byte " + std::to_string(op_pos_) + ": " + problem);
    }

    // ---- reading the byte stream ------------------------------------------
    void need(std::uint64_t n) const {
        if (n > size_ - pos_) fail("truncated (needs " + std::to_string(n) + " more bytes)");
    }
    unsigned char byte() {
        need(1);
        return data_[pos_++];
    }
    std::uint64_t unsignedLE(int n) {
        need(static_cast<std::uint64_t>(n));
        std::uint64_t v = 0;
        for (int i = n - 1; i >= 0; --i) v = (v << 8) | data_[pos_ + static_cast<std::size_t>(i)];
        pos_ += static_cast<std::size_t>(n);
        return v;
    }
    std::string bytes(std::uint64_t n) {
        need(n);
        std::string s(reinterpret_cast<const char*>(data_ + pos_), static_cast<std::size_t>(n));
        pos_ += static_cast<std::size_t>(n);
        return s;
    }
    std::string line() {
        const std::size_t start = pos_;
        while (pos_ < size_ && data_[pos_] != '\n') {
            if (pos_ - start > 1000) fail("GLOBAL name longer than 1000 bytes");
            ++pos_;
        }
        need(1);
        ++pos_;
        return std::string(reinterpret_cast<const char*>(data_ + start), pos_ - 1 - start);
    }

    // ---- the stack ------------------------------------------------------------
    void push(Value* v) { stack_.push_back(v); }
    Value* pop() {
        if (stack_.size() <= floor()) fail("stack underflow");
        Value* v = stack_.back();
        stack_.pop_back();
        return v;
    }
    Value* top() {
        if (stack_.size() <= floor()) fail("stack underflow");
        return stack_.back();
    }
    std::size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
    std::vector<Value*> popMark() {
        if (marks_.empty()) fail("no MARK");
        const std::size_t m = marks_.back();
        marks_.pop_back();
        std::vector<Value*> out(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
        stack_.resize(m);
        return out;
    }
    Value* memoGet(std::uint64_t index) {
        auto it = memo_.find(index);
        if (it == memo_.end()) fail("memo entry " + std::to_string(index) + " was never stored");
        return it->second;
    }

    // ---- values ---------------------------------------------------------------
    Value* integer(std::int64_t i) {
        Value* v = arena_.make(Kind::Int);
        v->integer = i;
        return v;
    }
    Value* text(Kind kind, std::string s) {
        Value* v = arena_.make(kind);
        v->text = std::move(s);
        return v;
    }
    Value* sequence(Kind kind, const std::vector<Value*>& items) {
        Value* v = arena_.make(kind);
        v->items.assign(items.begin(), items.end());
        return v;
    }
    Value* longInt(std::uint64_t n) {
        const std::string b = bytes(n);
        if (n == 0) return integer(0);
        if (n <= 8) {
            std::uint64_t u = 0;
            for (std::size_t i = n; i-- > 0;) u = (u << 8) | static_cast<unsigned char>(b[i]);
            if (n < 8 && (static_cast<unsigned char>(b[n - 1]) & 0x80)) u |= ~std::uint64_t{0} << (8 * n);
            std::int64_t s;
            std::memcpy(&s, &u, sizeof s);
            return integer(s);
        }
        return text(Kind::BigInt, b);
    }
    Value* real() {
        const std::uint64_t bits = [&] {
            need(8);
            std::uint64_t v = 0;
            for (int i = 0; i < 8; ++i) v = (v << 8) | data_[pos_ + static_cast<std::size_t>(i)]; // big-endian
            pos_ += 8;
            return v;
        }();
        Value* v = arena_.make(Kind::Float);
        std::memcpy(&v->real, &bits, sizeof bits);
        return v;
    }
    static std::string globalName(std::string module, const std::string& name) {
        if (module == "__builtin__") module = "builtins"; // protocol 2 from Python 2 names
        return module + "." + name;
    }

    void addItems(Value* target, const std::vector<Value*>& items) {
        if (target->kind != Kind::List && target->kind != Kind::Set && target->kind != Kind::Object)
            fail("APPEND/ADDITEMS to a " + std::string(kindName(target->kind)));
        target->items.insert(target->items.end(), items.begin(), items.end());
    }
    void setItems(Value* target, const std::vector<Value*>& kv) {
        if (target->kind != Kind::Dict && target->kind != Kind::Object)
            fail("SETITEM(S) on a " + std::string(kindName(target->kind)));
        if (kv.size() % 2 != 0) fail("SETITEMS with an odd number of values");
        for (std::size_t i = 0; i < kv.size(); i += 2) target->entries.emplace_back(kv[i], kv[i + 1]);
    }

    void step(unsigned char op) {
        switch (op) {
        case PROTO:
            protocol_ = byte();
            if (protocol_ > 5) fail("pickle protocol " + std::to_string(protocol_) + " is newer than 5");
            return;
        case FRAME: unsignedLE(8); return; // a frame's bytes are ordinary opcodes
        case MARK: marks_.push_back(stack_.size()); return;
        case POP: pop(); return;
        case POP_MARK: popMark(); return;
        case DUP: push(top()); return;
        case NONE: push(arena_.make(Kind::None)); return;
        case NEWTRUE:
        case NEWFALSE: {
            Value* v = arena_.make(Kind::Bool);
            v->boolean = op == NEWTRUE;
            push(v);
            return;
        }
        case BININT: push(integer(static_cast<std::int32_t>(static_cast<std::uint32_t>(unsignedLE(4))))); return;
        case BININT1: push(integer(static_cast<std::int64_t>(unsignedLE(1)))); return;
        case BININT2: push(integer(static_cast<std::int64_t>(unsignedLE(2)))); return;
        case LONG1: push(longInt(unsignedLE(1))); return;
        case LONG4: {
            const auto n = static_cast<std::int32_t>(static_cast<std::uint32_t>(unsignedLE(4)));
            if (n < 0) fail("negative LONG4 length");
            push(longInt(static_cast<std::uint64_t>(n)));
            return;
        }
        case BINFLOAT: push(real()); return;
        case SHORT_BINUNICODE: push(text(Kind::String, bytes(unsignedLE(1)))); return;
        case BINUNICODE: push(text(Kind::String, bytes(unsignedLE(4)))); return;
        case BINUNICODE8: push(text(Kind::String, bytes(unsignedLE(8)))); return;
        case SHORT_BINSTRING: push(text(Kind::String, bytes(unsignedLE(1)))); return;
        case BINSTRING: {
            const auto n = static_cast<std::int32_t>(static_cast<std::uint32_t>(unsignedLE(4)));
            if (n < 0) fail("negative BINSTRING length");
            push(text(Kind::String, bytes(static_cast<std::uint64_t>(n))));
            return;
        }
        case SHORT_BINBYTES: push(text(Kind::Bytes, bytes(unsignedLE(1)))); return;
        case BINBYTES: push(text(Kind::Bytes, bytes(unsignedLE(4)))); return;
        case BINBYTES8:
        case BYTEARRAY8: push(text(Kind::Bytes, bytes(unsignedLE(8)))); return;
        case EMPTY_TUPLE: push(arena_.make(Kind::Tuple)); return;
        case TUPLE: push(sequence(Kind::Tuple, popMark())); return;
        case TUPLE1:
        case TUPLE2:
        case TUPLE3: {
            std::vector<Value*> items(static_cast<std::size_t>(op - TUPLE1 + 1));
            for (std::size_t i = items.size(); i-- > 0;) items[i] = pop();
            push(sequence(Kind::Tuple, items));
            return;
        }
        case EMPTY_LIST: push(arena_.make(Kind::List)); return;
        case LIST: push(sequence(Kind::List, popMark())); return;
        case APPEND: {
            Value* item = pop();
            addItems(top(), {item});
            return;
        }
        case APPENDS:
        case ADDITEMS: {
            auto items = popMark();
            addItems(top(), items);
            return;
        }
        case EMPTY_DICT: push(arena_.make(Kind::Dict)); return;
        case DICT: {
            Value* d = arena_.make(Kind::Dict);
            setItems(d, popMark());
            push(d);
            return;
        }
        case SETITEM: {
            Value* value = pop();
            Value* key = pop();
            setItems(top(), {key, value});
            return;
        }
        case SETITEMS: {
            auto kv = popMark();
            setItems(top(), kv);
            return;
        }
        case EMPTY_SET: push(arena_.make(Kind::Set)); return;
        case FROZENSET: push(sequence(Kind::Set, popMark())); return;
        case BINPUT: memo_[unsignedLE(1)] = top(); return;
        case LONG_BINPUT: memo_[unsignedLE(4)] = top(); return;
        case MEMOIZE: memo_[memo_.size()] = top(); return;
        case BINGET: push(memoGet(unsignedLE(1))); return;
        case LONG_BINGET: push(memoGet(unsignedLE(4))); return;
        case GLOBAL: {
            std::string module = line();
            push(text(Kind::Global, globalName(std::move(module), line())));
            return;
        }
        case STACK_GLOBAL: {
            Value* name = pop();
            Value* module = pop();
            if (name->kind != Kind::String || module->kind != Kind::String) fail("STACK_GLOBAL needs two strings");
            push(text(Kind::Global, globalName(module->text, name->text)));
            return;
        }
        case REDUCE: {
            Value* args = pop();
            Value* callable = pop();
            push(reduce(callable, args, 0));
            return;
        }
        case NEWOBJ: {
            Value* args = pop();
            Value* cls = pop();
            push(reduce(cls, args, 0));
            return;
        }
        case NEWOBJ_EX: {
            pop(); // keyword arguments
            Value* args = pop();
            Value* cls = pop();
            push(reduce(cls, args, 0));
            return;
        }
        case BUILD: {
            Value* state = pop();
            top()->state = state;
            return;
        }
        case BINPERSID: push(persistent(pop())); return;
        default: break;
        }
        char hex[8];
        std::snprintf(hex, sizeof hex, "0x%02x", op);
        fail(std::string("unsupported pickle opcode ") + hex);
    }

    PickleResult finish() {
        if (stack_.size() != 1 || !marks_.empty())
            fail("STOP with " + std::to_string(stack_.size()) + " values on the stack");
        return {stack_.back(), protocol_, pos_};
    }

    // ---- the whitelist ----------------------------------------------------------
    Value* reduce(Value* callable, Value* args, int depth) {
        if (callable->kind != Kind::Global || args->kind != Kind::Tuple) return opaque(callable, args);
        const std::string& f = callable->text;
        const auto& a = args->items;
        if (f == "collections.OrderedDict") return orderedDict(a);
        if (f == "torch._utils._rebuild_tensor_v2" || f == "torch._utils._rebuild_tensor") return tensor(a);
        if (f == "torch._utils._rebuild_parameter" || f == "torch._utils._rebuild_parameter_with_state")
            return parameter(a);
        if (f == "torch._tensor._rebuild_from_type_v2" && depth == 0 && a.size() >= 3 && a[2]->kind == Kind::Tuple)
            return reduce(const_cast<Value*>(a[0]), const_cast<Value*>(a[2]), depth + 1);
        if (f == "torch.device") return device(a);
        if (f == "torch.Size" && a.size() == 1 && isSequence(*a[0])) return sequence(Kind::Tuple, mutableItems(*a[0]));
        if ((f == "builtins.set" || f == "builtins.frozenset") && a.size() <= 1)
            return sequence(Kind::Set, a.empty() ? std::vector<Value*>{} : mutableItems(*a[0]));
        if (f == "_codecs.encode" && a.size() == 2 && a[0]->kind == Kind::String && a[1]->kind == Kind::String)
            return encode(a[0]->text, a[1]->text, callable, args);
        return opaque(callable, args);
    }
    static bool isSequence(const Value& v) { return v.kind == Kind::List || v.kind == Kind::Tuple; }
    static std::vector<Value*> mutableItems(const Value& v) {
        std::vector<Value*> out;
        for (const Value* i : v.items) out.push_back(const_cast<Value*>(i));
        return out;
    }
    Value* opaque(Value* callable, Value* args) {
        Value* v = arena_.make(Kind::Object);
        v->text = callable->kind == Kind::Global ? callable->text : "(result of calling a " + std::string(kindName(callable->kind)) + ")";
        if (args->kind == Kind::Tuple) v->args = args->items;
        else v->args = {args};
        return v;
    }
    Value* orderedDict(const std::vector<const Value*>& a) {
        Value* d = arena_.make(Kind::Dict);
        if (!a.empty() && isSequence(*a[0]))
            for (const Value* pair : a[0]->items)
                if (pair->kind == Kind::Tuple && pair->items.size() == 2) d->entries.emplace_back(pair->items[0], pair->items[1]);
        return d;
    }
    Value* device(const std::vector<const Value*>& a) {
        if (a.empty() || a[0]->kind != Kind::String) fail("torch.device without a type");
        std::string name = a[0]->text;
        if (a.size() > 1 && a[1]->kind == Kind::Int) name += ":" + std::to_string(a[1]->integer);
        return text(Kind::Device, name);
    }
    Value* encode(const std::string& s, const std::string& encoding, Value* callable, Value* args) {
        if (encoding == "utf-8" || encoding == "utf8") return text(Kind::Bytes, s);
        if (encoding != "latin1" && encoding != "latin-1") return opaque(callable, args);
        std::string out; // the UTF-8 text of code points 0..255 back to bytes
        for (std::size_t i = 0; i < s.size(); ++i) {
            const auto c = static_cast<unsigned char>(s[i]);
            if (c < 0x80) out += static_cast<char>(c);
            else if ((c & 0xE0) == 0xC0 && c <= 0xC3 && i + 1 < s.size()) out += static_cast<char>(((c & 0x03) << 6) | (static_cast<unsigned char>(s[++i]) & 0x3F));
            else fail("_codecs.encode: not a latin-1 text");
        }
        return text(Kind::Bytes, out);
    }
    Value* parameter(const std::vector<const Value*>& a) {
        if (a.empty() || a[0]->kind != Kind::Tensor) fail("_rebuild_parameter without a tensor");
        const_cast<TensorRef*>(a[0]->tensor)->parameter = true;
        if (a.size() > 1 && a[1]->kind == Kind::Bool) const_cast<TensorRef*>(a[0]->tensor)->requires_grad = a[1]->boolean;
        return const_cast<Value*>(a[0]);
    }

    // ---- storages and tensors -------------------------------------------------
    static std::int64_t nonNegative(const Value* v, const char* what, const Machine& m) {
        if (v->kind != Kind::Int || v->integer < 0) m.fail(std::string("tensor ") + what + " is not a non-negative integer");
        return v->integer;
    }
    std::vector<std::int64_t> dims(const Value* v, const char* what) {
        if (!isSequence(*v)) fail(std::string("tensor ") + what + " is not a tuple");
        std::vector<std::int64_t> out;
        for (const Value* d : v->items) out.push_back(nonNegative(d, what, *this));
        return out;
    }
    Value* persistent(Value* pid) {
        const auto& t = pid->items;
        if (pid->kind != Kind::Tuple || t.size() < 5 || !t[0]->isString("storage") || t[1]->kind != Kind::Global)
            fail("persistent id is not a torch storage");
        const std::string& type = t[1]->text;
        const std::string type_name = type.rfind("torch.", 0) == 0 ? type.substr(6) : type;
        std::string key;
        if (t[2]->kind == Kind::String) key = t[2]->text;
        else if (t[2]->kind == Kind::Int) key = std::to_string(t[2]->integer);
        else fail("storage key is not a string");
        const std::string location = t[3]->kind == Kind::String ? t[3]->text : "";
        const std::int64_t numel = nonNegative(t[4], "storage size", *this);
        Storage* s;
        try {
            s = arena_.storage(key, storageDType(type_name), type_name, numel, location);
        } catch (const PickleError& e) {
            fail(e.what());
        }
        Value* v = arena_.make(Kind::Storage);
        v->storage = s;
        return v;
    }
    Value* tensor(const std::vector<const Value*>& a) {
        if (a.size() < 4 || a[0]->kind != Kind::Storage) fail("_rebuild_tensor without a storage");
        auto t = std::make_unique<TensorRef>();
        t->storage = a[0]->storage;
        t->offset = nonNegative(a[1], "storage offset", *this);
        t->shape = dims(a[2], "size");
        t->stride = dims(a[3], "stride");
        if (a.size() > 4 && a[4]->kind == Kind::Bool) t->requires_grad = a[4]->boolean;
        checkExtent(*t);
        arena_.tensors.push_back(std::move(t));
        Value* v = arena_.make(Kind::Tensor);
        v->tensor = arena_.tensors.back().get();
        return v;
    }
    void checkExtent(const TensorRef& t) const {
        if (t.shape.size() != t.stride.size()) fail("tensor size and stride differ in length");
        std::int64_t numel = 1, last = t.offset;
        for (std::size_t i = 0; i < t.shape.size(); ++i) {
            std::int64_t span;
            if (mulOverflows(numel, t.shape[i], numel) || mulOverflows(t.shape[i] > 0 ? t.shape[i] - 1 : 0, t.stride[i], span) ||
                __builtin_add_overflow(last, span, &last))
                fail("tensor size overflows");
        }
        if (numel > 0 && last >= t.storage->numel)
            fail("tensor reaches element " + std::to_string(last) + " of a storage of " + std::to_string(t.storage->numel));
    }

    const unsigned char* data_;
    std::size_t size_;
    std::size_t pos_;
    std::size_t op_pos_ = 0;
    Arena& arena_;
    int protocol_ = 0;
    std::vector<Value*> stack_;
    std::vector<std::size_t> marks_;
    std::unordered_map<std::uint64_t, Value*> memo_;
};

} // namespace

PickleResult unpickle(const unsigned char* data, std::size_t size, std::size_t begin, Arena& arena) {
    if (begin >= size) throw PickleError("pickle byte " + std::to_string(begin) + ": no data");
    return Machine(data, size, begin, arena).run();
}

} // namespace ltlab::ckpt::detail
