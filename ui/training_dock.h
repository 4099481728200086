#pragma once
// The Training dock: dataset, model, recipe and its main settings, seed and
// device; presets for the classroom; Start, Pause, Stop; progress and ETA.
//
// On the run open in the window (setOpenRun) it also adjusts the logits
// post hoc (`ltlab train --recipe la --from RUN`, the run's last snapshot that
// is not itself adjusted, into RUN-la.h5 beside it) and resumes or extends it
// (`ltlab train --resume RUN --epochs N`).
//
// Training runs in a child process (`ltlab train --progress-json`), so libtorch
// never loads into the workbench, a crash in training cannot take the window
// down, and pausing (SIGSTOP/SIGCONT) and stopping (SIGINT: finish the batch,
// keep every finished epoch) are immediate. Progress arrives as JSON lines on
// the child's stdout, read by the event loop; the run file is complete between
// epochs, and the window re-reads it after each one.

#include <QDockWidget>
#include <QElapsedTimer>
#include <QProcess>

class QCheckBox;
class QComboBox;
class QDoubleSpinBox;
class QGroupBox;
class QLabel;
class QLineEdit;
class QProgressBar;
class QPushButton;
class QSpinBox;

namespace ltlab::ui {

class TrainingDock : public QDockWidget {
    Q_OBJECT
public:
    explicit TrainingDock(QWidget* parent = nullptr);
    ~TrainingDock() override;

    bool running() const;
    bool paused() const { return paused_; }
    qint64 processId() const; // of the training process (0: none)
    QString outputPath() const { return out_path_; }
    // The command line `Start` runs (for tests and the log).
    QStringList trainArguments(const QString& out_path) const;
    void applyPreset(int index);
    // The ltlab executable to run (default: this process's own, which is ltlab).
    void setExecutable(const QString& path) { executable_ = path; }
    // The form's fields, kept between sessions (QSettings, group "training").
    void saveSettings() const;
    void restoreSettings();
    // Form fields, for tests and scripted demos.
    void setDataset(const QString& dataset, const QString& model);
    void setRecipe(const QString& recipe, int epochs);
    void setOutputPath(const QString& path);

    // The run selected in the window (empty: none) and its recorded training
    // configuration (the run file's config attribute; empty: not from ltlab train).
    void setOpenRun(const QString& path, const QString& config_json);
    QString openRun() const { return open_run_; }
    // The command lines of the open run's two actions, and where la writes.
    QStringList laArguments(const QString& run, const QString& out_path) const;
    QStringList resumeArguments(const QString& run) const;
    static QString laOutputPath(const QString& run);

public slots:
    void start();
    void togglePause();
    void stop();
    // Logit adjustment (la) of the open run; resume / extend the open run.
    void adjustOpenRun();
    void resumeOpenRun();

signals:
    void epochFinished(const QString& path, int epoch, int epochs_total);
    void runFinished(const QString& path, int exit_code, const QString& message);
    // A classroom preset that needs no training: the Cone lab tab with the
    // paper's multi-layer study (cone_lab_preset: ltlab::coneLabPreset's index).
    void coneLabRequested(int cone_lab_preset);

private:
    void readOutput();
    // Runs `ltlab ARGS` (Start, la, resume); the run file it writes is out_path.
    void startProcess(const QStringList& args, const QString& out_path, const QString& what);
    QGroupBox* buildOpenRunBox(QWidget* parent);
    void updateOpenRunBox();

    // The run file a new run goes to: the field's text, or a fresh name under
    // the application's data folder when it is empty.
    QString defaultOutputPath() const;
    void updateEnabled(); // the settings that apply to the chosen recipe

    QComboBox *preset_, *dataset_, *model_, *recipe_, *device_, *la_mode_;
    QLineEdit *data_dir_, *out_;
    QDoubleSpinBox *imbalance_, *lr_, *weight_decay_, *stage2_weight_decay_, *cb_beta_, *maxnorm_factor_, *tau_;
    QSpinBox *epochs_, *stage2_epochs_, *seed_, *snapshot_every_;
    QCheckBox *maxnorm_, *maxnorm_per_epoch_;
    QPushButton *start_, *pause_, *stop_;
    // The open run's box: its name, la, and resume to N (+ M stage-2) epochs.
    QGroupBox* open_box_ = nullptr;
    QLabel* open_label_ = nullptr;
    QPushButton *la_ = nullptr, *resume_ = nullptr;
    QSpinBox *resume_epochs_ = nullptr, *resume_stage2_epochs_ = nullptr;
    QLabel* resume_stage2_label_ = nullptr; // shown with its box for wb runs only
    QString open_run_, open_recipe_; // open_recipe_: a recipe ltlab train can resume, else empty
    QProgressBar* progress_;
    QLabel* status_;
    QProcess* process_ = nullptr;
    QString out_path_;
    QString executable_;
    QElapsedTimer clock_;
    bool paused_ = false;
};

} // namespace ltlab::ui
