#pragma once
// Per-class accuracy as bars ordered head to tail over many / medium / few
// bands, and the confusion matrix (rows: true class, normalised per row),
// full or grouped by shot group.

#include "analysis_view.h"

class QCheckBox;
class QCPColorScale;

namespace ltlab::ui {

class PerClassView : public AnalysisView {
    Q_OBJECT
public:
    explicit PerClassView(QWidget* parent = nullptr);
    QString title() const override { return tr("Per-class accuracy"); }
    QString fileStem() const override { return "per_class"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    std::vector<std::pair<QString, QString>> extraCsv() const override;
    // The bars (path) and the confusion matrix (path with "_confusion").
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* accuracyPlot() const { return accuracy_; }
    QCustomPlot* confusionPlot() const { return confusion_; }
    QCheckBox* groupedBox() const { return grouped_; }
    // Markers for the per-class accuracy after post-hoc logit adjustment at
    // the engine's sweep index (0: tau = 0, no markers), as the logit-
    // adjustment view's slider says.
    void setLogitAdjustment(int sweep_index, bool multiplicative);
    // Those markers' heights in display order (empty without them), for tests.
    std::vector<double> adjustedValues() const;

private:
    void drawConfusion();
    void drawAdjusted();

    QCustomPlot *accuracy_, *confusion_;
    QCPColorScale* scale_;
    QCheckBox* grouped_;
    ViewData data_;
    int la_index_ = 0;
    bool la_multiplicative_ = false;
};

} // namespace ltlab::ui
