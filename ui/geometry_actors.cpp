#include "geometry_actors.h"

#include <vtkActor.h>
#include <vtkCellArray.h>
#include <vtkCellData.h>
#include <vtkConeSource.h>
#include <vtkDoubleArray.h>
#include <vtkFloatArray.h>
#include <vtkGlyph3D.h>
#include <vtkIntArray.h>
#include <vtkOpenGLSphereMapper.h>
#include <vtkPointData.h>
#include <vtkPoints.h>
#include <vtkPolyData.h>
#include <vtkPolyDataMapper.h>
#include <vtkProperty.h>
#include <vtkSphereSource.h>
#include <vtkUnsignedCharArray.h>

namespace ltlab::ui::scene {

namespace {

// Each point carries its class (`name`), for tests and exports of the scene.
vtkSmartPointer<vtkIntArray> classIds(const std::vector<int>& classes, const char* name) {
    auto ids = vtkSmartPointer<vtkIntArray>::New();
    ids->SetName(name);
    for (int c : classes) ids->InsertNextValue(c);
    return ids;
}

} // namespace

// Head (blue) to tail (red) by rank in training count.
void rankColour(double t, unsigned char rgb[3]) {
    rgb[0] = static_cast<unsigned char>(31 + t * (214 - 31));
    rgb[1] = static_cast<unsigned char>(119 + t * (39 - 119));
    rgb[2] = static_cast<unsigned char>(180 + t * (40 - 180));
}

// Spheres as imposters (one shaded screen-space quad each, vtkOpenGLSphereMapper):
// a thousand classes stay interactive under software OpenGL, where a
// tessellated glyph per class would cost hundreds of triangles each.
vtkSmartPointer<vtkActor> spheres(const std::vector<Eigen::Vector3d>& centres, const std::vector<double>& radii,
                                  vtkUnsignedCharArray* colours, const std::vector<int>& classes, const char* class_array) {
    auto points = vtkSmartPointer<vtkPoints>::New();
    auto verts = vtkSmartPointer<vtkCellArray>::New();
    auto radius = vtkSmartPointer<vtkFloatArray>::New();
    radius->SetName("radius");
    for (std::size_t i = 0; i < centres.size(); ++i) {
        const vtkIdType id = points->InsertNextPoint(centres[i].data());
        verts->InsertNextCell(1, &id);
        radius->InsertNextValue(static_cast<float>(radii[i]));
    }
    auto data = vtkSmartPointer<vtkPolyData>::New();
    data->SetPoints(points);
    data->SetVerts(verts);
    data->GetPointData()->AddArray(radius);
    data->GetPointData()->AddArray(classIds(classes, class_array));
    auto mapper = vtkSmartPointer<vtkOpenGLSphereMapper>::New();
    mapper->SetInputData(data);
    mapper->SetScaleArray("radius");
    if (colours) {
        data->GetPointData()->SetScalars(colours);
        mapper->SetColorModeToDirectScalars();
    } else {
        mapper->ScalarVisibilityOff();
    }
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    return actor;
}

// Arrow heads: a small cone at the end of each classifier row, pointing along
// it, in the class's colour (`resolution` facets).
vtkSmartPointer<vtkActor> arrowHeads(const std::vector<Eigen::Vector3d>& tips, double length,
                                     vtkUnsignedCharArray* colours, int resolution) {
    auto points = vtkSmartPointer<vtkPoints>::New();
    auto directions = vtkSmartPointer<vtkDoubleArray>::New();
    directions->SetName("direction");
    directions->SetNumberOfComponents(3);
    for (const auto& tip : tips) {
        const Eigen::Vector3d unit = tip.norm() > 0 ? Eigen::Vector3d(tip.normalized()) : Eigen::Vector3d::UnitX();
        const Eigen::Vector3d centre = tip - 0.5 * length * unit; // the cone's tip on the row's end
        points->InsertNextPoint(centre.data());
        directions->InsertNextTuple(unit.data());
    }
    auto data = vtkSmartPointer<vtkPolyData>::New();
    data->SetPoints(points);
    data->GetPointData()->SetVectors(directions);
    data->GetPointData()->SetScalars(colours);
    auto cone = vtkSmartPointer<vtkConeSource>::New();
    cone->SetResolution(resolution);
    cone->SetHeight(length);
    cone->SetRadius(0.35 * length);
    auto glyph = vtkSmartPointer<vtkGlyph3D>::New();
    glyph->SetInputData(data);
    glyph->SetSourceConnection(cone->GetOutputPort());
    glyph->SetVectorModeToUseVector();
    glyph->OrientOn();
    glyph->SetScaleModeToDataScalingOff();
    glyph->SetColorModeToColorByScalar();
    auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
    mapper->SetInputConnection(glyph->GetOutputPort());
    mapper->SetColorModeToDirectScalars();
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    actor->PickableOff();
    return actor;
}

// A wireframe shell (a tessellated sphere) around one point: the selection.
vtkSmartPointer<vtkActor> shell(const Eigen::Vector3d& centre, double radius) {
    auto sphere = vtkSmartPointer<vtkSphereSource>::New();
    sphere->SetCenter(centre.data());
    sphere->SetRadius(radius);
    sphere->SetThetaResolution(16);
    sphere->SetPhiResolution(10);
    auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
    mapper->SetInputConnection(sphere->GetOutputPort());
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    actor->GetProperty()->SetRepresentationToWireframe();
    actor->GetProperty()->SetColor(0.0, 0.0, 0.0);
    actor->GetProperty()->LightingOff();
    actor->PickableOff();
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

// One vertex per sample, in its class's colour lightened towards white.
vtkSmartPointer<vtkActor> cloud(const std::vector<Eigen::Vector3d>& points_in, const std::vector<int>& classes,
                                const std::function<void(int, unsigned char[3])>& class_colour) {
    auto points = vtkSmartPointer<vtkPoints>::New();
    points->SetNumberOfPoints(static_cast<vtkIdType>(points_in.size()));
    auto verts = vtkSmartPointer<vtkCellArray>::New();
    auto colours = vtkSmartPointer<vtkUnsignedCharArray>::New();
    colours->SetNumberOfComponents(3);
    for (std::size_t i = 0; i < points_in.size(); ++i) {
        points->SetPoint(static_cast<vtkIdType>(i), points_in[i].data());
        const vtkIdType id = static_cast<vtkIdType>(i);
        verts->InsertNextCell(1, &id);
        unsigned char rgb[3];
        class_colour(classes[i], rgb);
        for (auto& v : rgb) v = static_cast<unsigned char>(v + 0.45 * (255 - v));
        colours->InsertNextTypedTuple(rgb);
    }
    auto data = vtkSmartPointer<vtkPolyData>::New();
    data->SetPoints(points);
    data->SetVerts(verts);
    data->GetPointData()->SetScalars(colours);
    data->GetPointData()->AddArray(classIds(classes, "sample_class"));
    auto mapper = vtkSmartPointer<vtkPolyDataMapper>::New();
    mapper->SetInputData(data);
    mapper->SetColorModeToDirectScalars();
    auto actor = vtkSmartPointer<vtkActor>::New();
    actor->SetMapper(mapper);
    actor->GetProperty()->SetPointSize(points_in.size() > 5000 ? 2.0f : 3.0f);
    actor->GetProperty()->LightingOff();
    actor->PickableOff();
    return actor;
}

} // namespace ltlab::ui::scene
