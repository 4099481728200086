#include "class_labels.h"

#include <vtkCallbackCommand.h>
#include <vtkCellArray.h>
#include <vtkFloatArray.h>
#include <vtkImageData.h>
#include <vtkPointData.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper2D.h>
#include <vtkTexture.h>
#include <vtkTexturedActor2D.h>
#include <vtkCamera.h>
#include <vtkCommand.h>
#include <vtkMatrix4x4.h>
#include <vtkRenderer.h>
#include <vtkRenderWindow.h>
#include <vtkStdString.h>
#include <vtkTextRenderer.h>
#include <vtkTextProperty.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <set>

#include "analysis_view.h"

namespace ltlab::ui {

std::vector<int> labelledClasses(LabelMode mode, const std::vector<int>& shown,
                                 const std::vector<std::int64_t>& train_counts, int picked, int extremes) {
    if (mode == LabelMode::None) return {};
    std::vector<std::int64_t> counts(train_counts.size(), -1); // classes not shown sort last
    for (int c : shown) counts[static_cast<std::size_t>(c)] = train_counts[static_cast<std::size_t>(c)];
    std::vector<int> order = classesByCount(counts);
    order.resize(shown.size());
    std::vector<int> out;
    std::set<int> taken;
    auto take = [&](int c) {
        if (taken.insert(c).second) out.push_back(c);
    };
    if (std::find(shown.begin(), shown.end(), picked) != shown.end()) take(picked);
    const auto n = static_cast<std::ptrdiff_t>(order.size()), e = std::min<std::ptrdiff_t>(extremes, n);
    for (std::ptrdiff_t i = 0; i < e; ++i) take(order[static_cast<std::size_t>(i)]);
    for (std::ptrdiff_t i = 0; i < e; ++i) take(order[static_cast<std::size_t>(n - 1 - i)]);
    if (mode == LabelMode::All)
        for (int c : order) take(c);
    return out;
}

ScreenProjector::ScreenProjector(vtkRenderer* renderer) : renderer_(renderer) {
    vtkCamera* camera = renderer->GetActiveCamera();
    matrix_->DeepCopy(camera->GetCompositeProjectionTransformMatrix(renderer->GetTiledAspectRatio(), 0, 1));
    camera->GetViewUp(up_.data());
}

ScreenProjector::~ScreenProjector() = default;

// As vtkRenderer::WorldToDisplay, with the matrix computed once.
Eigen::Vector3d ScreenProjector::toDisplay(const Eigen::Vector3d& p) const {
    const double in[4] = {p[0], p[1], p[2], 1.0};
    double v[4];
    matrix_->MultiplyPoint(in, v);
    const double w = v[3] != 0 ? v[3] : 1.0;
    renderer_->SetViewPoint(v[0] / w, v[1] / w, v[2] / w);
    renderer_->ViewToDisplay();
    Eigen::Vector3d d;
    renderer_->GetDisplayPoint(d.data());
    return d;
}

ScreenProjector::Disc ScreenProjector::project(const Eigen::Vector3d& centre, double world_radius) const {
    const Eigen::Vector3d c = toDisplay(centre), edge = toDisplay(centre + world_radius * up_);
    return {c[0], c[1], c[2], std::hypot(edge[0] - c[0], edge[1] - c[1])};
}

ClassLabels::ClassLabels(vtkRenderer* renderer) : renderer_(renderer) {
    observer_ = vtkSmartPointer<vtkCallbackCommand>::New();
    observer_->SetClientData(this);
    observer_->SetCallback([](vtkObject*, unsigned long, void* self, void*) { static_cast<ClassLabels*>(self)->place(); });
    observer_tag_ = renderer_->AddObserver(vtkCommand::StartEvent, observer_);
}

ClassLabels::~ClassLabels() {
    clear();
    renderer_->RemoveObserver(observer_tag_);
}

void ClassLabels::clear() {
    if (actor_) renderer_->RemoveActor2D(actor_);
    actor_ = nullptr;
    labels_.clear();
    cells_.clear();
    placed_.clear();
}

void ClassLabels::show(std::vector<Label> labels, bool always_shown) {
    clear();
    labels_ = std::move(labels);
    always_shown_ = always_shown;
    if (labels_.empty()) return;
    quads_ = vtkSmartPointer<vtkPolyData>::New();
    atlas_ = vtkSmartPointer<vtkImageData>::New();
    auto texture = vtkSmartPointer<vtkTexture>::New();
    texture->SetInputData(atlas_);
    texture->InterpolateOff(); // pixel for pixel
    auto mapper = vtkSmartPointer<vtkPolyDataMapper2D>::New();
    mapper->SetInputData(quads_);
    mapper->ScalarVisibilityOff();
    actor_ = vtkSmartPointer<vtkTexturedActor2D>::New();
    actor_->SetMapper(mapper);
    actor_->SetTexture(texture);
    actor_->PickableOff();
    renderer_->AddActor2D(actor_);
    setFontScale(scale_);
}

void ClassLabels::setFontScale(int scale) {
    scale_ = scale;
    placed_.assign(labels_.size(), Eigen::Vector2d::Constant(-1));
    if (!labels_.empty()) rasterise();
}

// Each name in black on white in a frame of its class's colour, rendered by
// VTK's text renderer and packed in rows into one RGBA image.
void ClassLabels::rasterise() {
    const int dpi = renderer_->GetRenderWindow() ? renderer_->GetRenderWindow()->GetDPI() : 72;
    std::vector<vtkSmartPointer<vtkImageData>> images;
    cells_.clear();
    const int atlas_width = 2048 * scale_;
    int x = 0, y = 0, row_height = 0;
    for (const Label& label : labels_) {
        auto p = vtkSmartPointer<vtkTextProperty>::New();
        p->SetFontSize(12 * scale_);
        p->SetColor(0.08, 0.08, 0.08);
        p->SetBackgroundColor(1.0, 1.0, 1.0);
        p->SetBackgroundOpacity(1.0); // opaque: grabs and exports show it as drawn
        p->SetFrame(true);
        p->SetFrameWidth(scale_);
        p->SetFrameColor(label.colour.redF(), label.colour.greenF(), label.colour.blueF());
        p->SetBold(label.bold);
        auto image = vtkSmartPointer<vtkImageData>::New();
        int dims[2] = {0, 0};
        vtkTextRenderer::GetInstance()->RenderString(p, vtkStdString(label.text.toUtf8().constData()), image, dims, dpi);
        if (x + dims[0] > atlas_width) { // next row
            x = 0;
            y += row_height;
            row_height = 0;
        }
        cells_.push_back({x, y, dims[0], dims[1]});
        images.push_back(image);
        x += dims[0];
        row_height = std::max(row_height, dims[1]);
    }
    atlas_->SetDimensions(atlas_width, std::max(1, y + row_height), 1);
    atlas_->AllocateScalars(VTK_UNSIGNED_CHAR, 4);
    auto* out = static_cast<unsigned char*>(atlas_->GetScalarPointer());
    std::fill(out, out + std::size_t(4) * atlas_width * std::max(1, y + row_height), 0);
    for (std::size_t i = 0; i < images.size(); ++i) {
        const auto& [cx, cy, w, h] = cells_[i];
        int extent[6];
        images[i]->GetExtent(extent);
        const int stride = extent[1] - extent[0] + 1;
        const auto* in = static_cast<const unsigned char*>(images[i]->GetScalarPointer());
        for (int row = 0; row < h; ++row)
            std::copy(in + std::size_t(4) * row * stride, in + std::size_t(4) * (row * stride + w),
                      out + std::size_t(4) * ((cy + row) * atlas_width + cx));
    }
    atlas_->Modified();
}

std::vector<int> ClassLabels::placedClasses() const {
    std::vector<int> out;
    for (std::size_t i = 0; i < labels_.size(); ++i)
        if (placed_[i].x() >= 0) out.push_back(labels_[i].cls);
    return out;
}

void ClassLabels::place() {
    if (labels_.empty()) return;
    const ScreenProjector projector(renderer_);
    const int* size = renderer_->GetSize();
    const double W = size[0], H = size[1], gap = 3.0 * scale_;
    std::vector<std::array<double, 4>> taken; // x0, y0, x1, y1 of the labels placed
    auto fits = [&](const std::array<double, 4>& r) {
        if (r[0] < 0 || r[1] < 0 || r[2] > W || r[3] > H) return false;
        return std::none_of(taken.begin(), taken.end(), [&](const auto& t) {
            return r[0] < t[2] + gap && t[0] < r[2] + gap && r[1] < t[3] + gap && t[1] < r[3] + gap;
        });
    };
    for (std::size_t i = 0; i < labels_.size(); ++i) {
        const double w = cells_[i][2], h = cells_[i][3];
        const auto d = projector.project(labels_[i].centre, labels_[i].radius);
        const double r = std::max(2.0, d.radius) + gap;
        const std::array<std::array<double, 2>, 4> corners{{{d.x + r, d.y - h / 2}, // right, left, above, below
                                                            {d.x - r - w, d.y - h / 2},
                                                            {d.x - w / 2, d.y + r},
                                                            {d.x - w / 2, d.y - r - h}}};
        int side = -1;
        for (int s = 0; s < 4 && side < 0; ++s) {
            const auto& c = corners[static_cast<std::size_t>(s)];
            if (fits({c[0], c[1], c[0] + w, c[1] + h})) side = s;
        }
        if (side < 0 && always_shown_) side = 0;
        placed_[i] = Eigen::Vector2d::Constant(-1);
        if (d.depth < 0 || d.depth > 1 || side < 0) continue; // behind the camera, or no room
        const auto& c = corners[static_cast<std::size_t>(side)];
        taken.push_back({c[0], c[1], c[0] + w, c[1] + h});
        placed_[i] = {std::round(c[0]), std::round(c[1])}; // whole pixels: the texture is not resampled
    }
    writeQuads();
}

// One textured quad per placed label, in display pixels.
void ClassLabels::writeQuads() {
    auto points = vtkSmartPointer<vtkPoints>::New();
    auto cells = vtkSmartPointer<vtkCellArray>::New();
    auto tcoords = vtkSmartPointer<vtkFloatArray>::New();
    tcoords->SetNumberOfComponents(2);
    int dims[3];
    atlas_->GetDimensions(dims);
    for (std::size_t i = 0; i < labels_.size(); ++i) {
        if (placed_[i].x() < 0) continue;
        const auto& [cx, cy, w, h] = cells_[i];
        const double x = placed_[i].x(), y = placed_[i].y();
        const double corners[4][2] = {{0, 0}, {double(w), 0}, {double(w), double(h)}, {0, double(h)}};
        vtkIdType ids[4];
        for (int k = 0; k < 4; ++k) {
            ids[k] = points->InsertNextPoint(x + corners[k][0], y + corners[k][1], 0.0);
            tcoords->InsertNextTuple2((cx + corners[k][0]) / dims[0], (cy + corners[k][1]) / dims[1]);
        }
        cells->InsertNextCell(4, ids);
    }
    quads_->SetPoints(points);
    quads_->SetPolys(cells);
    quads_->GetPointData()->SetTCoords(tcoords);
}

} // namespace ltlab::ui
