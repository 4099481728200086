#pragma once
// Logit adjustment, implicit and explicit. Left: log ||w_c|| against
// -log pi_c with the least-squares line whose slope is implicit_la_tau.
// Right: the post-hoc sweep (balanced accuracy against tau, additive and
// multiplicative; many / medium / few for the chosen mode). Below: a tau
// slider and the per-class accuracy at that tau, read from the engine's
// per-class sweep, so moving it is instant; the per-class view shows the
// same accuracies beside the unadjusted ones (tauChanged).

#include "analysis_view.h"

class QCPItemStraightLine;
class QComboBox;
class QLabel;
class QSlider;

namespace ltlab::ui {

class LogitAdjustmentView : public AnalysisView {
    Q_OBJECT
public:
    explicit LogitAdjustmentView(QWidget* parent = nullptr);
    QString title() const override { return tr("Logit adjustment"); }
    QString fileStem() const override { return "logit_adjustment"; }
    void showData(const ViewData& data) override;
    QString csv() const override;
    std::vector<std::pair<QString, QString>> extraCsv() const override;
    // Exports the sweep (path) and the implicit curve (path with "_implicit" before the suffix).
    bool exportFigure(const QString& path, double dpi) const override;

    QCustomPlot* sweepPlot() const { return sweep_; }
    QCustomPlot* implicitPlot() const { return implicit_; }
    QCustomPlot* perClassPlot() const { return per_class_; }
    QSlider* tauSlider() const { return tau_slider_; }
    bool multiplicative() const;
    void setMultiplicative(bool on);

signals:
    // The slider moved (or the mode changed): the index into the engine's sweep.
    void tauChanged(int sweep_index, bool multiplicative);

private:
    void drawImplicit();
    void drawSweep();
    void placeTauMarker(); // the sweep's tau line and label, at the slider
    void drawPerClass();

    QCustomPlot *implicit_, *sweep_, *per_class_;
    QSlider* tau_slider_;
    QComboBox* mode_;
    QLabel* tau_label_;
    QCPItemStraightLine* tau_marker_ = nullptr; // owned by the sweep plot
    ViewData data_;
};

} // namespace ltlab::ui
