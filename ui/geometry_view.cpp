#include "geometry_view.h"

#include <QAbstractItemView>
#include <QCheckBox>
#include <QComboBox>
#include <QFileInfo>
#include <QHBoxLayout>
#include <QLabel>
#include <QSignalBlocker>
#include <QSaveFile>
#include <QSpinBox>
#include <QTimer>
#include <QTemporaryDir>
#include <QToolTip>
#include <QVBoxLayout>

#include <vtkActor.h>
#include <vtkCamera.h>
#include <vtkCoordinate.h>
#include <vtkProperty.h>
#include <vtkRenderer.h>
#include <vtkSmartPointer.h>
#include <vtkTextActor.h>
#include <vtkTextProperty.h>
#include <vtkUnsignedCharArray.h>

#include <algorithm>
#include <cmath>
#include <functional>
#include <map>
#include <set>
#include <tuple>

#include "class_filter.h"
#include "class_labels.h"
#include "geometry_actors.h"
#include "ltlab/geometry.h"
#include "vtk_widget.h"

namespace ltlab::ui {

GeometryView::GeometryView(QWidget* parent) : AnalysisView(parent) {
    vtk_ = new VtkWidget(this);
    labels_ = std::make_unique<ClassLabels>(vtk_->renderer());
    filter_bar_ = new ClassFilterBar(this);
    // Another set of classes: the camera turns as it was and frames them.
    connect(filter_bar_, &ClassFilterBar::changed, this, [this] { rebuildScene(true); });
    auto* filter_row = new QHBoxLayout; // rows that each fit a narrow view (1280 x 720 beside the docks)
    filter_row->addWidget(filter_bar_);
    filter_row->addStretch(1);
    connect(vtk_, &VtkWidget::clicked, this, [this](QPointF p) { pickAt(p.x(), p.y()); });
    connect(vtk_, &VtkWidget::hovered, this, [this](QPointF p, QPoint global) {
        const int c = classAt(p.x(), p.y());
        if (c >= 0)
            QToolTip::showText(global, classText(c), vtk_);
        else
            QToolTip::hideText();
    });
    info_ = new QLabel(this);
    info_->setWordWrap(true);
    info_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    auto* layout = new QVBoxLayout(this);
    layout->addLayout(makeAxesRow());
    layout->addLayout(makeSceneRow());
    layout->addLayout(filter_row);
    layout->addWidget(vtk_, 1);
    layout->addWidget(info_);
}

// Axes: PCA, or the classifier rows of three classes.
QHBoxLayout* GeometryView::makeAxesRow() {
    axes_ = new QComboBox(this);
    axes_->addItem(tr("PCA of the class means"));
    axes_->addItem(tr("Classifier rows of:"));
    axes_->setToolTip(tr("Project on the top three principal directions of the centred class means, or on the "
                         "normalised classifier rows of three classes (coordinate k = component along w_k/||w_k||)"));
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel(tr("Axes:"), this));
    row->addWidget(axes_);
    for (auto*& combo : axis_class_) {
        combo = new QComboBox(this);
        combo->setToolTip(tr("With classifier axes: the class whose normalised classifier row is this axis"));
        combo->setEnabled(false);
        combo->setMinimumContentsLength(6);
        row->addWidget(combo);
        connect(combo, &QComboBox::currentIndexChanged, this, [this] {
            if (axes_->currentIndex() == 1) emit optionsChanged();
        });
    }
    row->addStretch(1);
    connect(axes_, &QComboBox::currentIndexChanged, this, [this](int index) {
        for (auto* combo : axis_class_) combo->setEnabled(index == 1);
        emit optionsChanged();
    });
    return row;
}

// The sample cloud, the ETF and the labels.
QHBoxLayout* GeometryView::makeSceneRow() {
    samples_ = new QSpinBox(this);
    samples_->setRange(0, 5000);
    samples_->setSingleStep(10);
    samples_->setSpecialValueText(tr("none"));
    samples_->setToolTip(tr("A seeded uniform sample of at most this many feature vectors per class"));
    // The arrows apply at once (typed digits when Enter or the focus leaves:
    // no keyboard tracking); a burst of clicks asks for one new sample.
    samples_->setKeyboardTracking(false);
    auto* samples_timer = new QTimer(this);
    samples_timer->setSingleShot(true);
    samples_timer->setInterval(150);
    connect(samples_, &QSpinBox::valueChanged, samples_timer, qOverload<>(&QTimer::start));
    connect(samples_timer, &QTimer::timeout, this, [this] {
        if (!data_.geometry || data_.geometry->options.samples_per_class != samples_->value()) emit optionsChanged();
    });
    show_etf_ = new QCheckBox(tr("Simplex ETF"), this);
    show_etf_->setToolTip(tr("Draw the simplex ETF that best fits the class means (neural collapse's ideal geometry)"));
    show_etf_->setChecked(true);
    connect(show_etf_, &QCheckBox::toggled, this, [this] { rebuildScene(false); });
    labels_box_ = new QComboBox(this);
    labels_box_->addItems({tr("none"), tr("picked + extremes"), tr("all")});
    labels_box_->setCurrentIndex(static_cast<int>(LabelMode::PickedAndExtremes));
    labels_box_->setToolTip(tr("Class names beside the spheres: none, the picked class and the 3 largest and 3 "
                               "smallest shown classes (by training count), or all (those that fit without overlapping, "
                               "largest first)"));
    connect(labels_box_, &QComboBox::currentIndexChanged, this, [this] { rebuildScene(false); });
    auto* row = new QHBoxLayout;
    row->addWidget(new QLabel(tr("Samples per class:"), this));
    row->addWidget(samples_);
    row->addWidget(show_etf_);
    row->addWidget(new QLabel(tr("Labels:"), this));
    row->addWidget(labels_box_);
    row->addStretch(1);
    return row;
}

GeometryView::~GeometryView() = default;

GeometryOptions GeometryView::options() const {
    GeometryOptions o;
    o.axes = axes_->currentIndex() == 1 ? GeometryAxes::ClassifierRows : GeometryAxes::Pca;
    for (int j = 0; j < 3; ++j) {
        const QVariant c = axis_class_[j]->currentData();
        o.axis_classes[static_cast<std::size_t>(j)] =
            c.isValid() ? c.toInt() : pending_axis_classes_ ? (*pending_axis_classes_)[static_cast<std::size_t>(j)] : j;
    }
    o.samples_per_class = samples_->value();
    return o;
}

void GeometryView::setOptions(const GeometryOptions& o) {
    const GeometryOptions before = options();
    {
        const QSignalBlocker b0(axes_), b1(samples_);
        axes_->setCurrentIndex(o.axes == GeometryAxes::ClassifierRows ? 1 : 0);
        samples_->setValue(static_cast<int>(o.samples_per_class));
        for (int j = 0; j < 3; ++j) {
            const QSignalBlocker b(axis_class_[j]);
            axis_class_[j]->setEnabled(o.axes == GeometryAxes::ClassifierRows);
            const int index = axis_class_[j]->findData(o.axis_classes[static_cast<std::size_t>(j)]);
            if (index >= 0) axis_class_[j]->setCurrentIndex(index);
        }
        // Before a run is shown the class lists are empty: keep the choice for them.
        if (axis_class_[0]->count() == 0) pending_axis_classes_ = o.axis_classes;
    }
    const GeometryOptions after = options();
    if (after.axes != before.axes || after.axis_classes != before.axis_classes ||
        after.samples_per_class != before.samples_per_class)
        emit optionsChanged();
}

void GeometryView::setLabelMode(LabelMode mode) { labels_box_->setCurrentIndex(static_cast<int>(mode)); }

LabelMode GeometryView::labelMode() const { return static_cast<LabelMode>(labels_box_->currentIndex()); }

void GeometryView::setFilter(const ClassFilter& filter) { filter_bar_->setFilter(filter); }

ClassFilter GeometryView::filter() const { return filter_bar_->filter(); }

void GeometryView::fillClassChoices() {
    filter_bar_->setClasses(data_.classes);
    const auto& counts = data_.classes.train_counts;
    if (static_cast<std::size_t>(axis_class_[0]->count()) == counts.size()) return;
    const auto order = classesByCount(counts);
    // Wide enough for the names ("T-shirt/top"), up to 16 characters; the
    // list that opens shows every name whole.
    int longest = 6;
    for (std::size_t c = 0; c < counts.size(); ++c)
        longest = std::max(longest, static_cast<int>(className(data_.classes, static_cast<int>(c)).size()));
    for (int j = 0; j < 3; ++j) {
        const QSignalBlocker block(axis_class_[j]);
        axis_class_[j]->clear();
        for (std::size_t c = 0; c < counts.size(); ++c)
            axis_class_[j]->addItem(className(data_.classes, static_cast<int>(c)), static_cast<int>(c));
        axis_class_[j]->setMinimumContentsLength(std::min(longest, 16));
        axis_class_[j]->view()->setMinimumWidth(axis_class_[j]->view()->sizeHintForColumn(0) + 24);
        // The choice kept from before (settings) when it fits; else head, middle and tail.
        const int kept = pending_axis_classes_ ? (*pending_axis_classes_)[static_cast<std::size_t>(j)] : -1;
        if (kept >= 0 && kept < static_cast<int>(counts.size())) {
            axis_class_[j]->setCurrentIndex(kept);
        } else if (order.size() >= 3) {
            const std::size_t pick[3] = {0, order.size() / 2, order.size() - 1};
            axis_class_[j]->setCurrentIndex(order[pick[j]]);
        }
    }
    pending_axis_classes_.reset();
}

void GeometryView::showData(const ViewData& data) {
    // The camera stays where the user put it while the same run is shown on
    // the same axes (the timeline, live training, picking); it is reset for
    // another run, another class set or other axes.
    const auto axesOf = [](const ViewData& d) {
        return d.geometry ? std::make_tuple(d.geometry->options.axes, d.geometry->options.axis_classes,
                                            d.geometry->classes.size())
                          : std::make_tuple(GeometryAxes::Pca, std::array<int, 3>{}, std::size_t(0));
    };
    const bool reset_camera = data.run_name != data_.run_name || axesOf(data) != axesOf(data_) || sphere_count_ == 0;
    data_ = data;
    rebuildScene(reset_camera);
}

void GeometryView::showComputedOptions() {
    if (!data_.geometry) return; // show what was computed, whatever the controls said meanwhile
    const QSignalBlocker b0(axes_), b1(samples_);
    axes_->setCurrentIndex(data_.geometry->options.axes == GeometryAxes::ClassifierRows ? 1 : 0);
    for (auto* combo : axis_class_) combo->setEnabled(axes_->currentIndex() == 1);
    samples_->setValue(static_cast<int>(data_.geometry->options.samples_per_class));
    if (data_.geometry->options.axes == GeometryAxes::ClassifierRows)
        for (int j = 0; j < 3; ++j) {
            const QSignalBlocker b(axis_class_[j]);
            const int index = axis_class_[j]->findData(data_.geometry->options.axis_classes[static_cast<std::size_t>(j)]);
            if (index >= 0) axis_class_[j]->setCurrentIndex(index);
        }
}

void GeometryView::rebuildScene(bool reset_camera) {
    fillClassChoices();
    showComputedOptions();
    vtkRenderer* renderer = vtk_->renderer();
    labels_->clear();
    renderer->RemoveAllViewProps();
    radii_.clear();
    shown_.clear();
    shown_classes_.clear();
    caption_actor_ = nullptr;
    caption_.clear();
    sphere_count_ = sample_point_count_ = 0;
    if (data_.analysis && data_.geometry && !data_.geometry->means.empty()) {
        const ClassGeometry3D& g = *data_.geometry;
        shown_classes_ = filter_bar_->filter().apply(*data_.analysis, g.classes);
        filter_bar_->setShown(shown_classes_);
        const std::set<int> shown(shown_classes_.begin(), shown_classes_.end());
        for (std::size_t k = 0; k < g.classes.size(); ++k)
            if (shown.count(g.classes[k])) shown_.push_back(k);
        if (!shown.count(picked_)) picked_ = -1;
        drawClasses(g);
        addLabels(g);
        addCaption(g);
        if (reset_camera) vtk_->resetCamera();
        renderer->ResetCameraClippingRange();
    } else {
        picked_ = -1;
        vtk_->setAxisNames({});
    }
    showPicked();
    vtk_->requestRender();
}

// Head (blue) to tail (red) by rank in training count among all classes.
void GeometryView::classColour(int c, unsigned char rgb[3]) const {
    const auto n = rank_.size();
    scene::rankColour(n > 1 ? double(rank_[static_cast<std::size_t>(c)]) / double(n - 1) : 0.0, rgb);
}

// The means, classifier rows, ETF vertices and samples of the shown classes.
void GeometryView::drawClasses(const ClassGeometry3D& g) {
    vtkRenderer* renderer = vtk_->renderer();
    const auto& counts = data_.analysis->per_class.train_count;
    const auto order = classesByCount(counts);
    rank_.assign(counts.size(), 0);
    for (std::size_t r = 0; r < order.size(); ++r) rank_[static_cast<std::size_t>(order[r])] = static_cast<int>(r);
    double extent = 0;
    for (const auto& m : g.means) extent = std::max(extent, m.norm()); // of every class: the scale stays
    const double n_max = double(*std::max_element(counts.begin(), counts.end()));
    const std::size_t K = shown_.size();
    auto colours = vtkSmartPointer<vtkUnsignedCharArray>::New();
    colours->SetName("colours");
    colours->SetNumberOfComponents(3);
    std::vector<Eigen::Vector3d> means, tips, etf;
    std::vector<int> classes;
    std::vector<std::pair<Eigen::Vector3d, Eigen::Vector3d>> weight_lines, etf_edges;
    for (std::size_t k : shown_) {
        const int c = g.classes[k];
        unsigned char rgb[3];
        classColour(c, rgb);
        colours->InsertNextTypedTuple(rgb);
        // Area grows with the count: from 3% (tail) to 8% (head) of the scene;
        // with many classes, smaller, so that they stay apart.
        const double scale = K > 100 ? 0.3 : 1.0;
        radii_.push_back(scale * extent * (0.03 + 0.05 * std::sqrt(std::max(1.0, double(counts[static_cast<std::size_t>(c)])) / n_max)));
        means.push_back(g.means[k]);
        tips.push_back(g.weights[k]);
        etf.push_back(g.etf[k]);
        classes.push_back(c);
        weight_lines.emplace_back(Eigen::Vector3d::Zero(), g.weights[k]);
    }
    drawSamples(g);
    renderer->AddActor(scene::spheres(means, radii_, colours, classes, "mean_class"));
    renderer->AddActor(scene::lines(weight_lines, colours, 2.0));
    // With many classes the heads are small: fewer facets (frame rate under software OpenGL).
    renderer->AddActor(scene::arrowHeads(tips, extent * (K > 100 ? 0.02 : 0.05), colours, K > 100 ? 4 : 12));
    if (show_etf_->isChecked()) {
        auto vertices = scene::spheres(etf, std::vector<double>(K, extent * 0.012), nullptr, classes, "etf_class");
        vertices->GetProperty()->SetColor(0.1, 0.1, 0.1);
        vertices->PickableOff();
        renderer->AddActor(vertices);
        if (K <= 20)
            for (std::size_t i = 0; i < K; ++i)
                for (std::size_t j = i + 1; j < K; ++j) etf_edges.emplace_back(etf[i], etf[j]);
        if (!etf_edges.empty()) renderer->AddActor(scene::lines(etf_edges, nullptr, 1.0));
    }
    const auto picked = std::find(classes.begin(), classes.end(), picked_) - classes.begin();
    if (picked_ >= 0) // a wireframe shell around the picked class
        renderer->AddActor(scene::shell(means[static_cast<std::size_t>(picked)], radii_[static_cast<std::size_t>(picked)] * 1.6));
    sphere_count_ = static_cast<int>(K);
}

void GeometryView::drawSamples(const ClassGeometry3D& g) {
    const std::set<int> shown(shown_classes_.begin(), shown_classes_.end());
    std::vector<Eigen::Vector3d> points;
    std::vector<int> classes;
    for (std::size_t i = 0; i < g.samples.size(); ++i)
        if (shown.count(g.sample_classes[i])) {
            points.push_back(g.samples[i]);
            classes.push_back(g.sample_classes[i]);
        }
    if (points.empty()) return;
    vtk_->renderer()->AddActor(scene::cloud(points, classes, [this](int c, unsigned char rgb[3]) { classColour(c, rgb); }));
    sample_point_count_ = static_cast<int>(points.size());
}

void GeometryView::addLabels(const ClassGeometry3D& g) {
    const LabelMode mode = labelMode();
    std::vector<ClassLabels::Label> labels;
    std::map<int, std::size_t> index; // class -> its place among the shown
    for (std::size_t i = 0; i < shown_.size(); ++i) index[g.classes[shown_[i]]] = i;
    for (int c : labelledClasses(mode, shown_classes_, data_.analysis->per_class.train_count, picked_)) {
        const std::size_t i = index.at(c);
        unsigned char rgb[3];
        classColour(c, rgb);
        labels.push_back({c, className(data_.classes, c), g.means[shown_[i]], radii_[i], QColor(rgb[0], rgb[1], rgb[2]),
                          c == picked_});
    }
    labels_->show(std::move(labels), mode == LabelMode::PickedAndExtremes);
}

// The caption is 2D text (vector text in PDF/SVG exports), one short line per
// fact so that it fits a narrow view; the axis triad names the axes.
void GeometryView::addCaption(const ClassGeometry3D& g) {
    QStringList lines, axis_names;
    if (g.options.axes == GeometryAxes::Pca) {
        lines << tr("PCA of the class means: %1 % of their variance").arg(100.0 * g.explained, 0, 'f', 1);
        axis_names << "PC1" << "PC2" << "PC3";
    } else {
        QStringList names;
        for (int c : g.options.axis_classes) names << className(data_.classes, c);
        lines << tr("Axes: classifier rows of %1").arg(names.join(", "))
              << tr("(%1 % of the means' variance in their span)").arg(100.0 * g.explained, 0, 'f', 1);
        for (const QString& name : names) axis_names << "w(" + name + ")";
    }
    QString shown = filter_bar_->filter().describe(*data_.analysis, shown_classes_.size(), g.classes.size());
    if (sample_point_count_ > 0)
        shown += tr("; %1 samples (at most %2 per class)").arg(sample_point_count_).arg(g.options.samples_per_class);
    lines << shown;
    caption_ = lines.join('\n');
    auto text = vtkSmartPointer<vtkTextActor>::New();
    text->SetInput(caption_.toUtf8().constData());
    text->GetTextProperty()->SetFontSize(14);
    text->GetTextProperty()->SetColor(0.1, 0.1, 0.1);
    text->GetPositionCoordinate()->SetCoordinateSystemToNormalizedViewport();
    text->GetTextProperty()->SetVerticalJustificationToTop();
    text->SetPosition(0.01, 0.985); // top left, clear of the scene
    vtk_->renderer()->AddActor2D(text);
    caption_actor_ = text;
    vtk_->setAxisNames(axis_names);
}

int GeometryView::pickAt(double x, double y) {
    const int picked = classAt(x, y);
    if (picked != picked_) {
        picked_ = picked;
        rebuildScene(false); // redraws the selection shell and the labels
    }
    return picked;
}

int GeometryView::classAt(double x, double y) const {
    // The front-most shown class mean whose sphere covers (x, y) on screen.
    int picked = -1;
    if (data_.geometry && radii_.size() == shown_.size()) {
        const ScreenProjector projector(vtk_->renderer());
        double best_depth = 2.0;
        for (std::size_t i = 0; i < shown_.size(); ++i) {
            const auto d = projector.project(data_.geometry->means[shown_[i]], radii_[i]);
            if (std::hypot(x - d.x, y - d.y) <= std::max(3.0, d.radius) && d.depth < best_depth) {
                best_depth = d.depth;
                picked = data_.geometry->classes[shown_[i]];
            }
        }
    }
    return picked;
}

QString GeometryView::pickedText() const { return classText(picked_); }

QString GeometryView::classText(int picked) const {
    return picked >= 0 && data_.analysis ? classSummary(*data_.analysis, data_.classes, picked) : QString();
}

void GeometryView::showPicked() {
    const QString hint = tr("Class means (spheres, size by training count, blue head to red tail), classifier rows "
                            "(arrows), aligned simplex ETF (black). Drag to rotate, wheel to zoom, double-click to "
                            "reset, click a sphere for its numbers.");
    info_->setText(picked_ >= 0 ? pickedText().replace('\n', "; ") : hint);
}

QString GeometryView::csv() const {
    QString out = "kind,class,x,y,z\n";
    if (!data_.geometry) return out;
    const ClassGeometry3D& g = *data_.geometry;
    auto row = [&](const char* kind, int c, const Eigen::Vector3d& v) {
        out += QStringLiteral("%1,%2,%3,%4,%5\n")
                   .arg(kind)
                   .arg(c)
                   .arg(v[0], 0, 'g', 17)
                   .arg(v[1], 0, 'g', 17)
                   .arg(v[2], 0, 'g', 17);
    };
    // The classes drawn (the filter's), as the figure shows them.
    for (std::size_t k : shown_) {
        row("mean", g.classes[k], g.means[k]);
        row("weight", g.classes[k], g.weights[k]);
        row("etf", g.classes[k], g.etf[k]);
    }
    const std::set<int> shown(shown_classes_.begin(), shown_classes_.end());
    for (std::size_t i = 0; i < g.samples.size(); ++i)
        if (shown.count(g.sample_classes[i])) row("sample", g.sample_classes[i], g.samples[i]);
    return out;
}

bool GeometryView::exportFigure(const QString& path, double dpi) const {
    const QString suffix = QFileInfo(path).suffix().toLower();
    // PNG renders at dpi / 96 times the widget's size; GL2PS's PDF page is the
    // enlarged window. Debian's GL2PS has no zlib, so its raster is stored raw
    // (3 bytes a pixel): PDF at most twice the widget's size (about 8 MB for
    // 1000 x 700). The caption (2D text) grows with the picture.
    const int scale = std::clamp(static_cast<int>(std::lround(dpi / 96.0)), 1, suffix == "png" ? 8 : 2);
    if (suffix != "png" && suffix != "pdf") return suffix == "svg" && saveSvg(path, scale);
    if (caption_actor_) caption_actor_->GetTextProperty()->SetFontSize(14 * scale);
    labels_->setFontScale(scale);
    const bool ok = suffix == "png" ? vtk_->savePng(path, scale) : vtk_->savePdf(path, scale);
    if (caption_actor_) caption_actor_->GetTextProperty()->SetFontSize(14);
    labels_->setFontScale(1);
    vtk_->requestRender();
    return ok;
}

// Debian's GL2PS cannot embed images in SVG, so the SVG is written here: the
// 3D scene as an embedded PNG, the caption as SVG text.
bool GeometryView::saveSvg(const QString& path, int scale) const {
    QTemporaryDir dir;
    const QString png = dir.filePath("scene.png");
    if (caption_actor_) caption_actor_->SetVisibility(false);
    const bool rendered = dir.isValid() && vtk_->savePng(png, scale);
    if (caption_actor_) caption_actor_->SetVisibility(true);
    vtk_->requestRender();
    QFile image(png);
    if (!rendered || !image.open(QIODevice::ReadOnly)) return false;
    const QByteArray base64 = image.readAll().toBase64();
    const int w = vtk_->width(), h = vtk_->height();
    QSaveFile out(path);
    if (!out.open(QIODevice::WriteOnly)) return false;
    QString svg = QStringLiteral("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
                                 "<svg xmlns=\"http://www.w3.org/2000/svg\" "
                                 "xmlns:xlink=\"http://www.w3.org/1999/xlink\" width=\"%1\" height=\"%2\" "
                                 "viewBox=\"0 0 %1 %2\">\n"
                                 "<image x=\"0\" y=\"0\" width=\"%1\" height=\"%2\" xlink:href=\"data:image/png;base64,")
                      .arg(w)
                      .arg(h);
    out.write(svg.toUtf8());
    out.write(base64);
    out.write("\"/>\n");
    const QStringList lines = caption_.split('\n');
    for (int i = 0; i < lines.size(); ++i) // top left, as in the window
        out.write(QStringLiteral("<text x=\"8\" y=\"%1\" font-family=\"sans-serif\" font-size=\"14\" "
                                 "fill=\"#1a1a1a\">%2</text>\n")
                      .arg(20 + 17 * i)
                      .arg(lines[i].toHtmlEscaped())
                      .toUtf8());
    out.write("</svg>\n");
    return out.commit();
}

} // namespace ltlab::ui
