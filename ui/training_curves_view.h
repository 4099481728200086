#pragma once
// The run's /history over epochs: loss and accuracies, neural collapse
// (NC1-NC4), FDR and the cone statistics, each group on its own axes
// (logarithmic where every value is positive and they span decades). The
// other open runs are overlaid with dashed lines of the same colours.

#include "analysis_view.h"

class QCheckBox;
class QComboBox;
class QLabel;

namespace ltlab::ui {

class TrainingCurvesView : public AnalysisView {
    Q_OBJECT
public:
    explicit TrainingCurvesView(QWidget* parent = nullptr);
    QString title() const override { return tr("Training curves"); }
    QString fileStem() const override { return "training_curves"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* plot() const { return plot_; }
    QComboBox* groupBox() const { return group_; }
    QCheckBox* overlayBox() const { return overlay_; }
    // What the train metrics are of, when that is a sample (empty otherwise).
    QString sampleNote() const;

private:
    void redraw();

    QCustomPlot* plot_;
    QComboBox* group_;
    QCheckBox* overlay_;
    QLabel* note_;
    ViewData data_;
};

} // namespace ltlab::ui
