// PNG/JPEG decoding (see images.h).

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

} // namespace ltlab::train
