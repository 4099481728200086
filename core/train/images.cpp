// PNG/JPEG decoding and image lists (see images.h).

#include "images.h"

#include <csetjmp>
#include <cstdio>
#include <cstring>
#include <algorithm>
#include <filesystem>
#include <fstream>
#include <memory>
#include <sstream>

#include <jpeglib.h>
#include <png.h>

#include "ltlab/error.h"

namespace ltlab::train {

namespace fs = std::filesystem;

namespace {

// ---- PNG: libpng's simplified API --------------------------------------------------

Image decodePng(const std::string& path, int channels) {
    png_image png;
    std::memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_file(&png, path.c_str()))
        throw InputError(path, "", std::string("not a readable PNG: ") + png.message);
    png.format = channels == 1 ? PNG_FORMAT_GRAY : PNG_FORMAT_RGB;
    Image out{png.height, png.width, channels, {}};
    out.pixels.resize(PNG_IMAGE_SIZE(png));
    const bool ok = png_image_finish_read(&png, nullptr, out.pixels.data(), 0, nullptr);
    const std::string message = png.message;
    png_image_free(&png);
    if (!ok) throw InputError(path, "", "damaged PNG: " + message);
    return out;
}

// ---- JPEG: libjpeg-turbo; its errors long-jump back here ----------------------------

struct JpegError {
    jpeg_error_mgr mgr;
    std::jmp_buf jump;
    char message[JMSG_LENGTH_MAX];
};

extern "C" void onJpegError(j_common_ptr info) {
    auto* err = reinterpret_cast<JpegError*>(info->err);
    (*info->err->format_message)(info, err->message);
    std::longjmp(err->jump, 1);
}

struct FileCloser {
    void operator()(std::FILE* f) const { std::fclose(f); }
};

// Returns false with `message` set when libjpeg failed. No C++ object is
// created between setjmp and the last libjpeg call.
bool readJpeg(std::FILE* file, int channels, Image& out, std::string& message) {
    jpeg_decompress_struct info;
    JpegError err;
    info.err = jpeg_std_error(&err.mgr);
    err.mgr.error_exit = onJpegError;
    if (setjmp(err.jump)) {
        jpeg_destroy_decompress(&info);
        message = err.message;
        return false;
    }
    jpeg_create_decompress(&info);
    jpeg_stdio_src(&info, file);
    jpeg_read_header(&info, TRUE);
    info.out_color_space = channels == 1 ? JCS_GRAYSCALE : JCS_RGB;
    jpeg_start_decompress(&info);
    out.height = info.output_height;
    out.width = info.output_width;
    out.channels = channels;
    out.pixels.resize(static_cast<std::size_t>(out.height * out.width * channels));
    while (info.output_scanline < info.output_height) {
        JSAMPROW row = out.pixels.data() + static_cast<std::size_t>(info.output_scanline) * out.width * channels;
        jpeg_read_scanlines(&info, &row, 1);
    }
    jpeg_finish_decompress(&info);
    jpeg_destroy_decompress(&info);
    return true;
}

Image decodeJpeg(const std::string& path, int channels) {
    std::unique_ptr<std::FILE, FileCloser> file(std::fopen(path.c_str(), "rb"));
    if (!file) throw InputError(path, "", "cannot open: " + std::string(std::strerror(errno)));
    Image out;
    std::string message;
    if (!readJpeg(file.get(), channels, out, message)) throw InputError(path, "", "damaged JPEG: " + message);
    return out;
}

bool isImageFile(const fs::path& p) {
    std::string ext = p.extension().string();
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return std::tolower(c); });
    return ext == ".png" || ext == ".jpg" || ext == ".jpeg";
}

std::vector<fs::path> sortedEntries(const fs::path& dir, bool folders) {
    std::vector<fs::path> out;
    for (const auto& entry : fs::directory_iterator(dir, fs::directory_options::follow_directory_symlink))
        if (folders ? entry.is_directory() : (entry.is_regular_file() && isImageFile(entry.path())))
            out.push_back(entry.path());
    std::sort(out.begin(), out.end());
    return out;
}

} // namespace

Image decodeImage(const std::string& path, int channels) {
    unsigned char magic[8] = {};
    {
        std::ifstream in(path, std::ios::binary);
        if (!in) throw InputError(path, "", "cannot open the image");
        in.read(reinterpret_cast<char*>(magic), sizeof magic);
    }
    if (std::memcmp(magic, "\x89PNG\r\n\x1a\n", 8) == 0) return decodePng(path, channels);
    if (magic[0] == 0xFF && magic[1] == 0xD8) return decodeJpeg(path, channels);
    throw InputError(path, "", "neither PNG nor JPEG");
}

ImageList listImageFolder(const std::string& dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) throw InputError(dir, "", "not a folder");
    ImageList out;
    for (const fs::path& cls : sortedEntries(dir, true)) {
        const auto label = static_cast<std::int32_t>(out.class_names.size());
        out.class_names.push_back(cls.filename().string());
        for (const fs::path& file : sortedEntries(cls, false)) {
            out.paths.push_back(file.string());
            out.labels.push_back(label);
        }
    }
    if (out.class_names.empty()) throw InputError(dir, "", "has no class subfolders (an image folder has one per class)");
    if (out.paths.empty()) throw InputError(dir, "", "has no .png/.jpg/.jpeg images in its class subfolders");
    return out;
}

ImageList readSplitList(const std::string& list_path, const std::string& root) {
    std::ifstream in(list_path);
    if (!in) throw InputError(list_path, "", "cannot read the split list");
    ImageList out;
    std::string line;
    for (std::int64_t number = 1; std::getline(in, line); ++number) {
        if (!line.empty() && line.back() == '\r') line.pop_back();
        const auto last = line.find_last_not_of(" \t");
        if (last == std::string::npos) continue;
        line.erase(last + 1);
        const auto space = line.find_last_of(" \t");
        char* end = nullptr;
        const long label = space == std::string::npos ? -1 : std::strtol(line.c_str() + space + 1, &end, 10);
        if (space == std::string::npos || *end != '\0' || label < 0 || label > 10'000'000)
            throw InputError(list_path, "line " + std::to_string(number), "expected 'relative/path label', got '" + line + "'");
        const std::string rel = line.substr(0, line.find_last_not_of(" \t", space) + 1);
        out.paths.push_back((fs::path(root) / rel).string());
        out.labels.push_back(static_cast<std::int32_t>(label));
    }
    if (out.paths.empty()) throw InputError(list_path, "", "lists no images");
    return out;
}

} // namespace ltlab::train
