#pragma once
// The Layers tab (issue 10): the layer-wise statistics (`ltlab layers`,
// stored under /layers of a run file; docs/analysis.md "Layer-wise
// analysis") against the layer index, one line per (run, result group) of
// every open run at once: ce vs ce-wd vs wd-fr-etf, trained vs init, images
// vs noise. It draws what readLayerResults returned where the runs were
// opened (ViewData::layer_results); it computes nothing itself. Its Compute
// controls run `ltlab layers RUN.h5 ... --out RUN.h5` in a child process
// (libtorch never loads into the window), and `computed` asks the window to
// re-read the run, whose new group then appears.

#include <QProcess>
#include <QSet>

#include "analysis_view.h"

class QCheckBox;
class QComboBox;
class QLabel;
class QListWidget;
class QPushButton;
class QSpinBox;

namespace ltlab::ui {

class LayersView : public AnalysisView {
    Q_OBJECT
public:
    explicit LayersView(QWidget* parent = nullptr);
    ~LayersView() override;
    QString title() const override { return tr("Layers"); }
    QString fileStem() const override { return "layers"; }
    void showData(const ViewData& data) override;
    // One row per run, group and layer, every statistic (empty where null), and
    // whether the group is shown.
    QString csv() const override;
    bool exportFigure(const QString& path, double dpi) const override;

    // The statistics the chooser offers: (label, stored name of the value,
    // stored name of its spread or nullptr, whether the spread is a variance).
    struct Statistic {
        const char* label;
        const char* axis;       // the y axis' label (short: it must fit a column-wide figure)
        const char* value;
        const char* spread;
        bool spread_is_variance;
        bool log_ok;            // a scale (FDR, traces, variance): logarithmic when it spans decades
    };
    static const std::vector<Statistic>& statistics();
    // Chooses a statistic by its stored name ("fdr"); false if none has it.
    bool setStatistic(const QString& value_name);

    // The legend name of a result group: "ce-wd.h5: noise_trained".
    static QString lineName(const QString& file_name, const std::string& group);

    QCustomPlot* plot() const { return plot_; }
    QComboBox* statisticBox() const { return statistic_; }
    QListWidget* groupList() const { return groups_; } // checkable, one item per (run, group)
    QLabel* noteLabel() const { return note_; }

    // The Compute controls, for the run chosen in runBox (the selected run by default).
    QComboBox* runBox() const { return run_; }
    QComboBox* inputsBox() const { return inputs_; }
    QSpinBox* samplesBox() const { return samples_; }
    QSpinBox* seedBox() const { return seed_; }
    QComboBox* weightsBox() const { return weights_; }
    QCheckBox* blocksBox() const { return blocks_; }
    QCheckBox* standardizeBox() const { return standardize_; }
    QPushButton* computeButton() const { return compute_; }
    QPushButton* cancelButton() const { return cancel_; }
    QLabel* computeStatus() const { return status_; }
    // The command line Compute runs for `path` (its arguments after the executable).
    QStringList computeArguments(const QString& path) const;
    // The ltlab executable that computes (default: this process's own).
    void setExecutable(const QString& path) { executable_ = path; }
    bool computing() const;

public slots:
    void compute();
    void cancelCompute();

signals:
    // `ltlab layers` stored a new group in `path`: re-read the run.
    void computed(const QString& path);
    // exit_code 0: done; 130: cancelled; -1: crashed or did not start; else failed (message says why).
    void computeFinished(const QString& path, int exit_code, const QString& message);

private:
    void rebuildGroups();
    void redraw();
    void finishCompute(int exit_code, bool crashed);
    static QString groupKey(const QString& path, const std::string& group);

    QCustomPlot* plot_;
    QComboBox* statistic_;
    QListWidget* groups_;
    QLabel* note_;
    QComboBox *run_, *inputs_, *weights_;
    QSpinBox *samples_, *seed_;
    QCheckBox *blocks_, *standardize_;
    QPushButton *compute_, *cancel_;
    QLabel* status_;
    ViewData data_;
    QSet<QString> hidden_;     // groups the user unticked (path + group)
    QString last_selected_;    // the selected run of the previous data
    QProcess* process_ = nullptr;
    QString process_path_;
    QByteArray process_errors_;
    bool cancelled_ = false;
    QString executable_;
};

} // namespace ltlab::ui
