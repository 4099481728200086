#pragma once
// The cone effect: histograms of the pairwise cosine similarity of the
// features, same class against different class (exact over all pairs, or
// over all pairs of a seeded sample of samples, as the title says), and the
// C x C heatmap of cosines between class means (uncentred: the cone the
// means sit in), head to tail. The mean cosines printed are the engine's
// exact all-pairs statistics.

#include "analysis_view.h"

class QLabel;

class QCPColorScale;

namespace ltlab::ui {

class ConeView : public AnalysisView {
    Q_OBJECT
public:
    explicit ConeView(QWidget* parent = nullptr);
    QString title() const override { return tr("Cone effect"); }
    QString fileStem() const override { return "cone"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    std::vector<std::pair<QString, QString>> extraCsv() const override;
    // The histograms (path) and the heatmap (path with "_class_means").
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* histogramPlot() const { return histograms_; }
    QCustomPlot* heatmapPlot() const { return heatmap_; }

private:
    QCustomPlot *histograms_, *heatmap_;
    QCPColorScale* scale_;
    QLabel* numbers_;
    ViewData data_;
};

} // namespace ltlab::ui
