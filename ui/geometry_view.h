#pragma once
// Class-mean geometry in 3D (VTK): class means as spheres (size by training
// count, colour from head to tail), classifier rows as lines from the origin
// in the same colours, and the ideal simplex ETF aligned to the means
// (Procrustes) as small black vertices with a wireframe (up to 20 classes).
// The projection comes from core (projectClassGeometry).

#include "analysis_view.h"

namespace ltlab::ui {

class VtkWidget;

class GeometryView : public AnalysisView {
    Q_OBJECT
public:
    explicit GeometryView(QWidget* parent = nullptr);
    QString title() const override { return tr("Geometry (3D)"); }
    QString fileStem() const override { return "geometry"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override; // PNG
    VtkWidget* vtkWidget() const { return vtk_; }
    int sphereCount() const { return sphere_count_; }

private:
    VtkWidget* vtk_;
    ViewData data_;
    int sphere_count_ = 0;
};

} // namespace ltlab::ui
