#pragma once
// Per-class classifier weight norms ||w_c|| as bars ordered by training
// count (head to tail, coloured by shot group), with the training counts on a
// logarithmic right axis. Hovering a bar shows that class's numbers. A second
// snapshot is overlaid as markers: one the user chooses from any open run
// (stage 1 vs stage 2, WB vs one-stage), or automatically, for a weight-
// balancing stage-2 snapshot, the end of stage 1.

#include "analysis_view.h"

class QCheckBox;
class QComboBox;

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
    // Overlay marker heights in the same order (empty without an overlay).
    std::vector<double> overlayValues() const;

    // Snapshots the user may overlay: (run path, snapshot name) with labels.
    // Keeps the current choice when it is still offered.
    void setCompareChoices(const QList<QPair<QString, QString>>& choices, const QStringList& labels);
    // The chosen snapshot; empty: automatic.
    QPair<QString, QString> compareChoice() const;
    bool overlayHidden() const; // "none" chosen
    void setOverlayHidden(); // chooses "none"; emits compareChanged
    void setCompareChoice(const QString& path, const QString& snapshot); // emits compareChanged

signals:
    void compareChanged();

private:
    void redraw();

    QCustomPlot* plot_;
    QCheckBox* show_bias_;
    QComboBox* compare_;
    ViewData data_;
    std::vector<int> order_;
};

} // namespace ltlab::ui
