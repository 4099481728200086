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
    // The bars (path) and the confusion matrix (path with "_confusion").
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* accuracyPlot() const { return accuracy_; }
    QCustomPlot* confusionPlot() const { return confusion_; }
    QCheckBox* groupedBox() const { return grouped_; }

private:
    void drawConfusion();

    QCustomPlot *accuracy_, *confusion_;
    QCPColorScale* scale_;
    QCheckBox* grouped_;
    ViewData data_;
};

} // namespace ltlab::ui
