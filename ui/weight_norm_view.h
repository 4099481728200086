#pragma once
// Per-class classifier weight norms ||w_c|| as bars ordered by training
// count (head to tail, coloured by shot group), with the training counts on a
// logarithmic right axis. Hovering a bar shows that class's numbers. A second
// snapshot (for weight balancing: the end of stage 1) is overlaid as markers.

#include "analysis_view.h"

class QCheckBox;
class QCPBars;
class QCPGraph;

namespace ltlab::ui {

class WeightNormView : public AnalysisView {
    Q_OBJECT
public:
    explicit WeightNormView(QWidget* parent = nullptr);
    QString title() const override { return tr("Weight norms"); }
    QString fileStem() const override { return "weight_norms"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* plot() const { return plot_; }
    // Bar heights in display order (head first), for tests.
    std::vector<double> barValues() const;

private:
    void redraw();
    void hover(QMouseEvent* event);

    QCustomPlot* plot_;
    QCheckBox* show_bias_;
    ViewData data_;
    std::vector<int> order_;
};

} // namespace ltlab::ui
