// The restricted unpickler on hand-made pickles, safetensors edge cases,
// element conversions and the implicit logit adjustment. torch.save files
// themselves are tested from Python (tests/python/test_checkpoints.py).

#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <fstream>
#include <string>

#include "../../core/src/checkpoint_pickle.h"
#include "ltlab/checkpoint.h"
#include "ltlab/error.h"
#include "ltlab/implicit_la.h"
#include "test_support.h"

namespace {

using namespace ltlab::ckpt;
using detail::Arena;
using detail::PickleError;
using Kind = Value::Kind;

// A pickle built opcode by opcode.
struct P {
    std::string b = "\x80\x02";
    P& op(char c) { return b += c, *this; }
    P& op(unsigned char c) { return b += static_cast<char>(c), *this; }
    P& raw(const std::string& s) { return b += s, *this; }
    P& u8(unsigned v) { return b += static_cast<char>(v), *this; }
    P& le(std::uint64_t v, int n) {
        for (int i = 0; i < n; ++i) b += static_cast<char>((v >> (8 * i)) & 0xFF);
        return *this;
    }
    P& str(const std::string& s) { return op('X').le(s.size(), 4).raw(s); }
    P& global(const std::string& module, const std::string& name) { return op('c').raw(module + "\n" + name + "\n"); }
    P& stop() { return op('.'); }
};

const Value& run(Arena& arena, const std::string& bytes) {
    return *detail::unpickle(reinterpret_cast<const unsigned char*>(bytes.data()), bytes.size(), 0, arena).root;
}

std::string errorOf(const std::string& bytes) {
    Arena arena;
    try {
        run(arena, bytes);
    } catch (const PickleError& e) {
        return e.what();
    }
    return "";
}

TEST(Unpickler, OneEntryDictOneElementListAndLongInts) {
    Arena a;
    // {"k": [2**31], "n": -5, "f": 1.5, "big": -(2**40)}
    P p;
    p.op('}').str("k").op(']').op('\x8a').u8(5).le(1ull << 31, 5).op('a').op('s');
    p.str("n").op('J').le(static_cast<std::uint32_t>(-5), 4).op('s');
    double f = 1.5;
    std::uint64_t bits;
    std::memcpy(&bits, &f, 8);
    p.str("f").op('G');
    for (int i = 7; i >= 0; --i) p.u8((bits >> (8 * i)) & 0xFF);
    p.op('s').str("big").op('\x8a').u8(6).le(static_cast<std::uint64_t>(-(1ll << 40)), 6).op('s').stop();
    const Value& v = run(a, p.b);
    ASSERT_EQ(v.kind, Kind::Dict);
    ASSERT_EQ(v.get("k")->items.size(), 1u);
    EXPECT_EQ(v.get("k")->items[0]->integer, 1ll << 31);
    EXPECT_EQ(v.get("n")->integer, -5);
    EXPECT_EQ(v.get("f")->real, 1.5);
    EXPECT_EQ(v.get("big")->integer, -(1ll << 40));
}

TEST(Unpickler, MemoTuplesSetsAndProtocol4) {
    Arena a;
    P p;
    p.b = "\x80\x04";
    p.op('\x95').le(0, 8); // FRAME
    p.op('\x8c').u8(1).raw("x").op('\x94');                 // "x", MEMOIZE -> 0
    p.op('h').u8(0).op('\x86');                              // BINGET 0, TUPLE2 -> ("x", "x")
    p.op('\x8f').op('(').op('K').u8(1).op('K').u8(2).op('\x90'); // EMPTY_SET, ADDITEMS {1, 2}
    p.op('(').op('K').u8(3).op('\x91');                     // FROZENSET {3}
    p.op('\x87').stop();                                    // TUPLE3
    const Value& v = run(a, p.b);
    ASSERT_EQ(v.kind, Kind::Tuple);
    ASSERT_EQ(v.items.size(), 3u);
    EXPECT_EQ(v.items[0]->items[1]->text, "x");
    EXPECT_EQ(v.items[0]->items[0], v.items[0]->items[1]); // the memo shares the value
    EXPECT_EQ(v.items[1]->kind, Kind::Set);
    EXPECT_EQ(v.items[1]->items.size(), 2u);
    EXPECT_EQ(v.items[2]->items[0]->integer, 3);
}

TEST(Unpickler, WhitelistedGlobals) {
    Arena a;
    P p;
    p.op('(');
    // OrderedDict() with BUILD state (_metadata) and one item
    p.global("collections", "OrderedDict").op(')').op('R').str("w").op('K').u8(1).op('s').op('}').op('b');
    // _codecs.encode("\xc2\x80\xc3\xbf", "latin1") -> b"\x80\xff"
    p.global("_codecs", "encode").str("\xc2\x80\xc3\xbf").str("latin1").op('\x86').op('R');
    // torch.device("cuda", 0)
    p.global("torch", "device").str("cuda").op('K').u8(0).op('\x86').op('R');
    // builtins.set([1]) written the Python 2 way
    p.global("__builtin__", "set").op(']').op('K').u8(1).op('a').op('\x85').op('R');
    p.op('t').stop();
    const Value& v = run(a, p.b);
    ASSERT_EQ(v.items.size(), 4u);
    EXPECT_EQ(v.items[0]->kind, Kind::Dict);
    EXPECT_EQ(v.items[0]->get("w")->integer, 1);
    EXPECT_EQ(v.items[0]->state->kind, Kind::Dict);
    EXPECT_EQ(v.items[1]->kind, Kind::Bytes);
    EXPECT_EQ(v.items[1]->text, std::string("\x80\xff", 2));
    EXPECT_EQ(v.items[2]->kind, Kind::Device);
    EXPECT_EQ(v.items[2]->text, "cuda:0");
    EXPECT_EQ(v.items[3]->kind, Kind::Set);
}

TEST(Unpickler, UnknownGlobalsBecomeOpaqueObjectsAndRunNothing) {
    Arena a;
    P p;
    p.op('}').str("evil").global("posix", "system").str("touch /tmp/ltlab_never").op('\x85').op('R').op('s');
    p.str("obj").global("lab_models", "Wrapper").op(')').op('\x81').op('}').str("_modules").op('}').op('s').op('b').op('s').stop();
    const Value& v = run(a, p.b);
    EXPECT_EQ(v.get("evil")->kind, Kind::Object);
    EXPECT_EQ(v.get("evil")->text, "posix.system");
    EXPECT_EQ(v.get("evil")->args[0]->text, "touch /tmp/ltlab_never");
    EXPECT_EQ(v.get("obj")->text, "lab_models.Wrapper");
    EXPECT_TRUE(v.get("obj")->state->get("_modules"));
    const auto opaque = opaqueEntries(v);
    ASSERT_EQ(opaque.size(), 2u);
    EXPECT_EQ(opaque[0].path, "evil");
}

P tensorPickle(std::uint64_t numel, std::uint64_t offset, std::vector<std::uint64_t> shape, std::vector<std::uint64_t> stride) {
    P p;
    p.global("torch._utils", "_rebuild_tensor_v2").op('(');
    p.op('(').str("storage").global("torch", "FloatStorage").str("0").str("cuda:0").op('J').le(numel, 4).op('t').op('Q');
    p.op('J').le(offset, 4);
    p.op('(');
    for (auto s : shape) p.op('J').le(s, 4);
    p.op('t').op('(');
    for (auto s : stride) p.op('J').le(s, 4);
    p.op('t').op('\x89').global("collections", "OrderedDict").op(')').op('R').op('t').op('R').stop();
    return p;
}

TEST(Unpickler, TensorsAreViewsOfStorages) {
    Arena a;
    const Value& v = run(a, tensorPickle(12, 2, {2, 3}, {1, 4}).b);
    ASSERT_EQ(v.kind, Kind::Tensor);
    EXPECT_EQ(v.tensor->shape, (std::vector<std::int64_t>{2, 3}));
    EXPECT_EQ(v.tensor->stride, (std::vector<std::int64_t>{1, 4}));
    EXPECT_EQ(v.tensor->offset, 2);
    EXPECT_EQ(v.tensor->storage->location, "cuda:0");
    EXPECT_EQ(v.tensor->dtype(), DType::F32);
    EXPECT_NE(errorOf(tensorPickle(12, 3, {2, 3}, {1, 4}).b).find("storage of 12"), std::string::npos);
    EXPECT_NE(errorOf(tensorPickle(12, 0, {1u << 31, 1u << 31}, {1, 1}).b), "");
}

TEST(Unpickler, MalformedPicklesAreCleanErrors) {
    EXPECT_NE(errorOf(P().op('}').b).find("truncated"), std::string::npos);             // no STOP
    EXPECT_NE(errorOf(P().op('s').stop().b).find("underflow"), std::string::npos);
    EXPECT_NE(errorOf(P().op('h').u8(7).stop().b).find("memo"), std::string::npos);
    EXPECT_NE(errorOf(P().op('I').raw("3\n").stop().b).find("opcode 0x49"), std::string::npos);
    EXPECT_NE(errorOf(std::string("\x80\x06N.", 4)).find("protocol 6"), std::string::npos);
    EXPECT_NE(errorOf(P().op(']').str("k").op('K').u8(1).op('s').stop().b).find("SETITEM"), std::string::npos);
    EXPECT_NE(errorOf(P().op('X').le(1u << 30, 4).raw("ab").stop().b).find("truncated"), std::string::npos);
    EXPECT_NE(errorOf(P().op('N').op('N').stop().b).find("STOP"), std::string::npos);
    EXPECT_NE(errorOf(P().op('N').op('Q').stop().b).find("persistent id"), std::string::npos);
}

TEST(Unpickler, DeepNestingAndCyclesAreHarmless) {
    Arena a;
    P p;
    p.op(']').op('q').u8(0); // a list that contains itself
    p.op('h').u8(0).op('a');
    for (int i = 0; i < 200000; ++i) p.op(']');
    for (int i = 0; i < 200000; ++i) p.op('a');
    p.stop();
    const Value& v = run(a, p.b);
    EXPECT_EQ(v.items[0], &v);
    EXPECT_TRUE(opaqueEntries(v).empty());
}

// ---- safetensors ------------------------------------------------------------------

std::string writeSafetensors(const ltlab::testing::TempDir& dir, const std::string& header, const std::string& data,
                             std::uint64_t declared = 0) {
    const std::string path = dir.file("t.safetensors");
    std::ofstream out(path, std::ios::binary);
    const std::uint64_t n = declared ? declared : header.size();
    for (int i = 0; i < 8; ++i) out.put(static_cast<char>((n >> (8 * i)) & 0xFF));
    out << header << data;
    return path;
}

std::string openError(const std::string& path) {
    try {
        Checkpoint::open(path);
    } catch (const ltlab::InputError& e) {
        return e.what();
    }
    return "";
}

TEST(Safetensors, ReadsF16AndBF16) {
    ltlab::testing::TempDir dir;
    // F16 1.0, -2.0, 65504, 2^-24 (subnormal); BF16 1.0, -3.0
    const std::string data("\x00\x3c\x00\xc0\xff\x7b\x01\x00\x80\x3f\x40\xc0", 12);
    const auto path = writeSafetensors(dir,
        R"({"h":{"dtype":"F16","shape":[4],"data_offsets":[0,8]},"b":{"dtype":"BF16","shape":[2],"data_offsets":[8,12]}})", data);
    const auto ck = Checkpoint::open(path);
    const Value& root = ck->root();
    ASSERT_EQ(root.entries.size(), 2u);
    EXPECT_EQ(ck->read(*root.get("h")->tensor).toDoubles(), (std::vector<double>{1.0, -2.0, 65504.0, std::ldexp(1.0, -24)}));
    EXPECT_EQ(ck->read(*root.get("b")->tensor).toDoubles(), (std::vector<double>{1.0, -3.0}));
}

TEST(Safetensors, BadOffsetsAndHeadersAreRefused) {
    ltlab::testing::TempDir dir;
    const std::string data(16, '\0');
    auto header = [](const std::string& b) {
        return R"({"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":)" + b + "}}";
    };
    EXPECT_NE(openError(writeSafetensors(dir, header("[4,12]"), data)).find("overlap"), std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, header("[8,24]"), data)).find("outside"), std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, header("[12,8]"), data)).find("outside"), std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, header("[8,12]"), data)).find("need 8"), std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, header("[-8,0]"), data)).find("non-negative"), std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, header("[8,16]"), data, 1ull << 50)).find("declares"), std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, R"({"a":{"dtype":"F8_E4M3","shape":[1],"data_offsets":[0,1]}})", "x")).find("not supported"),
              std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, R"({"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,0]}})", "")).find("shape"),
              std::string::npos);
    EXPECT_NE(openError(writeSafetensors(dir, "{\"a\":", "")).find("JSON"), std::string::npos);
    EXPECT_EQ(openError(writeSafetensors(dir, header("[8,16]"), data)), "");
}

TEST(Checkpoints, NonCheckpointsNameTheFile) {
    ltlab::testing::TempDir dir;
    const auto path = dir.file("notes.pt");
    std::ofstream(path) << "hello";
    EXPECT_NE(openError(path).find("notes.pt: not a checkpoint"), std::string::npos);
    std::ofstream(dir.file("zip.pt"), std::ios::binary) << std::string("PK\x03\x04garbage", 11);
    EXPECT_NE(openError(dir.file("zip.pt")).find("zip"), std::string::npos);
    EXPECT_NE(openError(dir.file("absent.pt")).find("absent.pt: no such file"), std::string::npos);
}

TEST(ImplicitLogitAdjustment, SlopeOfLogNormOnMinusLogPrior) {
    // ||w_c|| = pi_c^-0.5 exactly: tau = 0.5; classes with n_c = 0 or ||w|| = 0 are left out.
    const std::vector<std::int64_t> counts{100, 10, 1, 0};
    std::vector<double> norms;
    for (auto n : counts) norms.push_back(n ? std::pow(static_cast<double>(n) / 111.0, -0.5) : 3.0);
    const auto r = ltlab::implicitLogitAdjustment(norms, counts);
    ASSERT_TRUE(r.tau);
    EXPECT_NEAR(*r.tau, 0.5, 1e-12);
    EXPECT_NEAR(*r.intercept, 0.0, 1e-12);
    EXPECT_FALSE(ltlab::implicitLogitAdjustment({1.0, 2.0}, {5, 5}).tau); // equal priors
}

} // namespace
