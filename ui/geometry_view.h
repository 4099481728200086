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
// Class labels (class_labels.h: the picked and the extreme classes, or all
// that fit), a class filter (class_filter.h: a shot group, the top k by
// training count, a list) and an axis triad naming the axes (PC1-PC3 or
// w(class)); the caption says what is shown ("12 of 100 classes: few-shot").

#include <memory>

#include "analysis_view.h"
#include "label_mode.h"

class QCheckBox;
class QComboBox;
class QHBoxLayout;
class QLabel;
class QSpinBox;
class vtkTextActor;

namespace ltlab::ui {

class ClassFilterBar;
class ClassLabels;
class VtkWidget;
struct ClassFilter;

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

    // Class labels (none, picked + extremes, all) and the class filter; both redraw the scene.
    void setLabelMode(LabelMode mode);
    LabelMode labelMode() const;
    void setFilter(const ClassFilter& filter);
    ClassFilter filter() const;
    ClassFilterBar* filterBar() const { return filter_bar_; }
    QComboBox* labelsBox() const { return labels_box_; }
    // The classes drawn (the filter's), their labels, and the caption.
    const std::vector<int>& shownClasses() const { return shown_classes_; }
    const ClassLabels& classLabels() const { return *labels_; }
    QString caption() const { return caption_; }

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
    QHBoxLayout* makeAxesRow();
    QHBoxLayout* makeSceneRow();
    void rebuildScene(bool reset_camera);
    void showComputedOptions();
    void drawClasses(const ClassGeometry3D& g);
    void drawSamples(const ClassGeometry3D& g);
    void addLabels(const ClassGeometry3D& g);
    void addCaption(const ClassGeometry3D& g);
    void classColour(int c, unsigned char rgb[3]) const;
    void showPicked();
    void fillClassChoices();
    bool saveSvg(const QString& path, int scale) const;

    VtkWidget* vtk_;
    QComboBox* axes_;
    QComboBox* axis_class_[3];
    QSpinBox* samples_;
    QCheckBox* show_etf_;
    QComboBox* labels_box_;
    ClassFilterBar* filter_bar_;
    std::unique_ptr<ClassLabels> labels_;
    QLabel* info_;
    vtkTextActor* caption_actor_ = nullptr;
    QString caption_;
    ViewData data_;
    std::vector<std::size_t> shown_;  // the drawn classes' places in data_.geometry->classes
    std::vector<int> shown_classes_;  // and their class ids
    std::vector<int> rank_;           // of each class by training count (colours)
    std::vector<double> radii_;       // of the drawn class-mean spheres (as shown_), for picking
    std::optional<std::array<int, 3>> pending_axis_classes_; // set before the class lists exist
    int sphere_count_ = 0, sample_point_count_ = 0, picked_ = -1;
};

} // namespace ltlab::ui
