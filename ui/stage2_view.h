#pragma once
// The stage-2 sandbox (issue 9): weight balancing's stage 2 retrained on the
// selected snapshot's frozen train features, again whenever a control moves
// (loss, class-balanced beta and reduction, weight decay on a log slider,
// MaxNorm, epochs, learning rate, batch, seed, start, bias). core retrains
// (ltlab::Stage2Trainer, the same loss, schedule and MaxNorm as
// `ltlab train --recipe wb`) and analyses the result; this view draws the
// weight norms against the starting snapshot's, the logit-adjustment sweep,
// the shot-group accuracies and implicit tau, and keeps a table of the
// settings tried. Runs go one at a time through their own worker thread; a
// newer change cancels the running one. "Save as snapshot" writes the result
// into the run file atomically, like training.

#include <QFuture>

#include <atomic>
#include <memory>

#include "analysis_view.h"
#include "ltlab/stage2.h"

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QLabel;
class QPushButton;
class QSlider;
class QSpinBox;
class QTableWidget;
class QThreadPool;
class QTimer;

namespace ltlab::ui {

class Stage2View : public AnalysisView {
    Q_OBJECT
public:
    explicit Stage2View(QWidget* parent = nullptr);
    ~Stage2View() override;
    QString title() const override { return tr("Stage-2 sandbox"); }
    QString fileStem() const override { return "stage2_sandbox"; }
    void showData(const ViewData& data) override; // loads the snapshot's train features when shown
    QString csv() const override;                 // the settings tried and their results
    bool exportFigure(const QString& path, double dpi) const override; // norms (path), sweep (_sweep)

    Stage2Settings settings() const;
    void setSettings(const Stage2Settings& s);    // updates the controls, retrains
    bool ready() const { return trainer_ != nullptr; }
    bool busy() const { return running_ > 0 || loading_; }
    int runs() const { return runs_; }             // finished and shown
    const Stage2Result* result() const { return result_.get(); }
    const Analysis* resultAnalysis() const { return analysis_.get(); }
    QString message() const;
    QTableWidget* triedTable() const { return tried_; }
    QSlider* weightDecaySlider() const { return wd_slider_; }
    QCustomPlot* normsPlot() const { return norms_; }
    // Writes the current result as a snapshot of the run file (a worker thread).
    void saveAsSnapshot();

signals:
    void resultShown();
    void snapshotSaved(const QString& path, const QString& snapshot); // or failed: snapshot empty, message() says why

protected:
    void showEvent(QShowEvent* event) override;

private:
    void load();
    void schedule();
    void retrain();
    void draw();
    void setMessage(const QString& text);
    static double weightDecayAt(int slider);
    static int sliderFor(double weight_decay);

    QComboBox *loss_, *reduction_;
    QDoubleSpinBox *beta_, *maxnorm_factor_, *lr_;
    QSlider* wd_slider_;
    QLabel* wd_label_;
    QCheckBox *maxnorm_, *per_epoch_, *from_zero_, *freeze_bias_;
    QSpinBox *epochs_, *batch_, *seed_;
    QPushButton* save_;
    QLabel *status_, *numbers_;
    QCustomPlot *norms_, *sweep_;
    QTableWidget* tried_;
    QTimer* debounce_;
    QThreadPool* pool_;                          // one thread: runs never overlap on the trainer

    QString path_, snapshot_;                    // what is shown (loaded when the tab is visible)
    QString loaded_path_, loaded_snapshot_;
    std::shared_ptr<const Stage2Source> source_;
    std::shared_ptr<Stage2Trainer> trainer_;
    std::shared_ptr<const Analysis> start_analysis_; // the snapshot's own classifier on the same split
    std::shared_ptr<const Stage2Result> result_;
    std::shared_ptr<const Analysis> analysis_;
    Stage2Settings result_settings_;
    std::shared_ptr<std::atomic<bool>> cancel_;
    int generation_ = 0, runs_ = 0, running_ = 0;
    bool loading_ = false;
};

} // namespace ltlab::ui
