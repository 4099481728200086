#pragma once
// Class-mean geometry in 3D (VTK): class means as spheres (size by training
// count, colour from head to tail), classifier rows as arrows from the origin
// in the same colours, the ideal simplex ETF aligned to the means
// (Procrustes) as small black vertices with a wireframe (its C(C-1)/2 edges
// only up to 20 classes),
// and optionally a sample cloud per class. The axes (PCA of the means, or
// three classes' classifier rows), the projection and the sample all come
// from core (projectClassGeometry, addSampleCloud): changing them asks the
// window for a new analysis. Clicking a sphere shows that class's numbers.

#include "analysis_view.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QSpinBox;
class vtkTextActor;

namespace ltlab::ui {

class VtkWidget;

class GeometryView : public AnalysisView {
    Q_OBJECT
public:
    explicit GeometryView(QWidget* parent = nullptr);
    QSpinBox* samplesBox() const { return samples_; }
    ~GeometryView() override;
    QString title() const override { return tr("Geometry (3D)"); }
    QString fileStem() const override { return "geometry"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override; // PNG, or PDF/SVG through GL2PS
    VtkWidget* vtkWidget() const { return vtk_; }
    int sphereCount() const { return sphere_count_; }
    int samplePointCount() const { return sample_point_count_; }

    // What the user chose; the window passes it to the analysis.
    GeometryOptions options() const;
    void setOptions(const GeometryOptions& options); // emits optionsChanged when it differs

    // Picks the class mean under VTK display coordinates (origin bottom left);
    // returns the class or -1, and shows its numbers.
    int pickAt(double x, double y);
    int pickedClass() const { return picked_; }
    QString pickedText() const;
    // The class under display coordinates (-1: none) and its numbers, for hover.
    int classAt(double x, double y) const;
    QString classText(int c) const;

signals:
    void optionsChanged();

private:
    void rebuildScene(bool reset_camera);
    void showPicked();
    void fillClassChoices();
    bool saveSvg(const QString& path, int scale) const;

    VtkWidget* vtk_;
    QComboBox* axes_;
    QComboBox* axis_class_[3];
    QSpinBox* samples_;
    QCheckBox* show_etf_;
    QLabel* info_;
    vtkTextActor* caption_actor_ = nullptr;
    QString caption_;
    ViewData data_;
    std::vector<double> radii_;       // of the class-mean spheres, for picking
    std::optional<std::array<int, 3>> pending_axis_classes_; // set before the class lists exist
    int sphere_count_ = 0, sample_point_count_ = 0, picked_ = -1;
};

} // namespace ltlab::ui
