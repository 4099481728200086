#pragma once
// The cone-effect laboratory (issue 9): a seeded random network whose every
// control recomputes, in the background, the per-layer pairwise-cosine
// histograms, the mean cosine with its spread through the layers, and, for
// labelled (spike-and-slab) inputs, same- against different-class cosines and
// FDR. core computes (ltlab/cone_lab.h); this view only draws. A newer change
// cancels the running computation; the UI thread never waits for it.
// It needs no run file: the tab works with nothing open (a classroom demo).

#include <atomic>
#include <memory>

#include "analysis_view.h"
#include "ltlab/cone_lab.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QSlider;
class QSpinBox;
class QTimer;

namespace ltlab::ui {

class ConeLabView : public AnalysisView {
    Q_OBJECT
public:
    explicit ConeLabView(QWidget* parent = nullptr);
    ~ConeLabView() override;
    QString title() const override { return tr("Cone lab"); }
    QString fileStem() const override { return "cone_lab"; }
    void showData(const ViewData&) override {} // independent of the open runs
    QString csv() const override;               // per layer: the statistics
    std::vector<std::pair<QString, QString>> extraCsv() const override; // "_histograms"
    // The layers plot (path) and the histograms (path with "_histograms").
    bool exportFigure(const QString& path, double dpi) const override;

    ConeLabSettings settings() const;
    void setSettings(const ConeLabSettings& s); // updates the controls, recomputes
    void applyPreset(int index);
    const ConeLabResult* result() const { return result_.get(); }
    int computations() const { return computations_; } // finished and shown
    int cancelled() const { return cancelled_; }        // superseded by a newer change
    bool busy() const { return running_ > 0; }
    QCustomPlot* layersPlot() const { return layers_; }
    QCustomPlot* histogramPlot() const { return histograms_; }
    QSlider* gammaStdSlider() const { return gamma_std_slider_; }

signals:
    void resultShown();

protected:
    void showEvent(QShowEvent* event) override;

private:
    void schedule();
    void compute();
    void draw();

    QComboBox *preset_, *input_, *norm_;
    QSpinBox *layers_count_, *width_, *batch_, *seed_, *classes_;
    QSlider *gamma_mean_slider_, *gamma_std_slider_, *beta_std_slider_;
    QLabel *gamma_mean_label_, *gamma_std_label_, *beta_std_label_;
    QDoubleSpinBox *weight_std_;
    QLabel* status_;
    QCustomPlot *histograms_, *layers_;
    QTimer* debounce_;
    std::shared_ptr<const ConeLabResult> result_;
    std::shared_ptr<std::atomic<bool>> cancel_;
    bool labelled_shown_ = false;
    int generation_ = 0, computations_ = 0, cancelled_ = 0, running_ = 0;
    bool shown_once_ = false;
};

} // namespace ltlab::ui
