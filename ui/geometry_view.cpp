#include "geometry_view.h"

#include <QFileInfo>
#include <QLabel>
#include <QVBoxLayout>

#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkCellData.h>
#include <vtkDoubleArray.h>
#include <vtkGlyph3D.h>
#include <vtkPointData.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkRenderer.h>
#include <vtkSmartPointer.h>
#include <vtkSphereSource.h>
#include <vtkUnsignedCharArray.h>

#include <algorithm>
#include <cmath>

#include "ltlab/geometry.h"
#include "vtk_widget.h"

namespace ltlab::ui {

namespace {

// Head (blue) to tail (red) by rank in training count.
void rankColour(double t, unsigned char rgb[3]) {
    rgb[0] = static_cast<unsigned char>(31 + t * (214 - 31));
    rgb[1] = static_cast<unsigned char>(119 + t * (39 - 119));
    rgb[2] = static_cast<unsigned char>(180 + t * (40 - 180));
}

vtkSmartPointer<vtkActor> spheres(const std::vector<Eigen::Vector3d>& centres, const std::vector<double>& radii,
                                  vtkUnsignedCharArray* colours) {
    auto points = vtkSmartPointer<vtkPoints>::New();
    auto radius = vtkSmartPointer<vtkDoubleArray>::New();
    radius->SetName("radius");
    for (std::size_t i = 0; i < centres.size(); ++i) {
        points->InsertNextPoint(centres[i].data());
        radius->InsertNextValue(radii[i]);
    }
    auto data = vtkSmartPointer<vtkPolyData>::New();
    data->SetPoints(points);
    data->GetPointData()->SetScalars(radius);
    if (colours) data->GetPointData()->AddArray(colours);
    auto sphere = vtkSmartPointer<vtkSphereSource>::New();
    sphere->SetThetaResolution(16);
    sphere->SetPhiResolution(12);
    sphere->SetRadius(1.0);
    auto glyph = vtkSmartPointer<vtkGlyph3D>::New();
    glyph->SetInputData(data);
    glyph->SetSourceConnection(sphere->GetOutputPort());
    glyph->SetScaleModeToScaleByScalar();
    glyph->SetScaleFactor(1.0);
    auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
    mapper->SetInputConnection(glyph->GetOutputPort());
    if (colours) {
        mapper->SetScalarModeToUsePointFieldData();
        mapper->SelectColorArray("colours");
        mapper->SetColorModeToDirectScalars();
    } else {
        mapper->ScalarVisibilityOff();
    }
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    return actor;
}

vtkSmartPointer<vtkActor> lines(const std::vector<std::pair<Eigen::Vector3d, Eigen::Vector3d>>& segments,
                                vtkUnsignedCharArray* colours, double width) {
    auto points = vtkSmartPointer<vtkPoints>::New();
    auto cells = vtkSmartPointer<vtkCellArray>::New();
    for (const auto& [a, b] : segments) {
        const vtkIdType ids[2] = {points->InsertNextPoint(a.data()), points->InsertNextPoint(b.data())};
        cells->InsertNextCell(2, ids);
    }
    auto data = vtkSmartPointer<vtkPolyData>::New();
    data->SetPoints(points);
    data->SetLines(cells);
    if (colours) data->GetCellData()->SetScalars(colours);
    auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
    mapper->SetInputData(data);
    if (!colours) mapper->ScalarVisibilityOff();
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    actor->GetProperty()->SetLineWidth(static_cast<float>(width));
    if (!colours) actor->GetProperty()->SetColor(0.3, 0.3, 0.3);
    return actor;
}

} // namespace

GeometryView::GeometryView(QWidget* parent) : AnalysisView(parent) {
    vtk_ = new VtkWidget(this);
    auto* hint = new QLabel(tr("Class means (spheres, size by training count, blue head to red tail), classifier rows "
                               "(lines), aligned simplex ETF (black). Drag to rotate, wheel to zoom, double-click to reset."),
                            this);
    hint->setWordWrap(true);
    auto* layout = new QVBoxLayout(this);
    layout->addWidget(vtk_, 1);
    layout->addWidget(hint);
}

void GeometryView::showData(const ViewData& data) {
    data_ = data;
    vtkRenderer* renderer = vtk_->renderer();
    renderer->RemoveAllViewProps();
    sphere_count_ = 0;
    if (data_.analysis && data_.geometry && !data_.geometry->means.empty()) {
        const ClassGeometry3D& g = *data_.geometry;
        const auto& counts = data_.analysis->per_class.train_count;
        const auto order = classesByCount(counts);
        std::vector<int> rank(counts.size());
        for (std::size_t r = 0; r < order.size(); ++r) rank[static_cast<std::size_t>(order[r])] = static_cast<int>(r);
        double extent = 0;
        for (const auto& m : g.means) extent = std::max(extent, m.norm());
        const double n_max = double(*std::max_element(counts.begin(), counts.end()));
        const std::size_t K = g.classes.size();
        auto colours = vtkSmartPointer<vtkUnsignedCharArray>::New();
        colours->SetName("colours");
        colours->SetNumberOfComponents(3);
        auto line_colours = vtkSmartPointer<vtkUnsignedCharArray>::New();
        line_colours->SetNumberOfComponents(3);
        std::vector<double> radii;
        std::vector<std::pair<Eigen::Vector3d, Eigen::Vector3d>> weight_lines, etf_edges;
        for (std::size_t k = 0; k < K; ++k) {
            const auto c = static_cast<std::size_t>(g.classes[k]);
            unsigned char rgb[3];
            rankColour(order.size() > 1 ? double(rank[c]) / double(order.size() - 1) : 0.0, rgb);
            colours->InsertNextTypedTuple(rgb);
            line_colours->InsertNextTypedTuple(rgb);
            // Area grows with the count: from 3% (tail) to 8% (head) of the scene.
            radii.push_back(extent * (0.03 + 0.05 * std::sqrt(std::max(1.0, double(counts[c])) / n_max)));
            weight_lines.emplace_back(Eigen::Vector3d::Zero(), g.weights[k]);
        }
        renderer->AddActor(spheres(g.means, radii, colours));
        renderer->AddActor(lines(weight_lines, line_colours, 2.0));
        auto etf = spheres(g.etf, std::vector<double>(K, extent * 0.012), nullptr);
        etf->GetProperty()->SetColor(0.1, 0.1, 0.1);
        renderer->AddActor(etf);
        if (K <= 20)
            for (std::size_t i = 0; i < K; ++i)
                for (std::size_t j = i + 1; j < K; ++j) etf_edges.emplace_back(g.etf[i], g.etf[j]);
        if (!etf_edges.empty()) renderer->AddActor(lines(etf_edges, nullptr, 1.0));
        sphere_count_ = static_cast<int>(K);
        renderer->ResetCamera();
    }
    vtk_->update();
}

QString GeometryView::csv() const {
    QString out = "class,mean_x,mean_y,mean_z,weight_x,weight_y,weight_z,etf_x,etf_y,etf_z\n";
    if (!data_.geometry) return out;
    const ClassGeometry3D& g = *data_.geometry;
    for (std::size_t k = 0; k < g.classes.size(); ++k) {
        QStringList row{QString::number(g.classes[k])};
        for (const auto* v : {&g.means[k], &g.weights[k], &g.etf[k]})
            for (int i = 0; i < 3; ++i) row << QString::number((*v)[i], 'g', 17);
        out += row.join(',') + "\n";
    }
    return out;
}

bool GeometryView::exportFigure(const QString& path, double dpi) const {
    if (QFileInfo(path).suffix().toLower() != "png") return false; // 3D: raster only for now
    return vtk_->savePng(path, std::max(1, static_cast<int>(std::lround(dpi / 96.0))));
}

} // namespace ltlab::ui
