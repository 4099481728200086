#pragma once
// File > Import checkpoint… and checkpoints dropped on the window: a dialog
// that shows what each file holds (read by core's checkpoint reader on a
// worker thread: format, detected architecture, classifier), with the
// architecture and a dataset pre-filled from that, the splits, the class
// counts and the run file to write. What it returns is an ImportRequest: the
// window runs `ltlab import` with it in a child process (libtorch never loads
// into the workbench) and shows the weights at once (importPreview).

#include <QDialog>
#include <QFuture>
#include <QList>
#include <QString>
#include <QStringList>

#include <memory>

#include "ltlab/analysis.h"
#include "ltlab/run_file.h"

class QCheckBox;
class QComboBox;
class QDialogButtonBox;
class QDoubleSpinBox;
class QLabel;
class QLineEdit;
class QSpinBox;

namespace ltlab::ui {

struct ImportRequest {
    QStringList checkpoints;
    QString arch = "auto";
    QString dataset;          // fashion-mnist-lt, ..., folder:DIR, list:FILE[,FILE]
    QString data_dir;         // built-in datasets: their files (empty: the default)
    double imbalance = 100;   // -lt datasets
    int seed = 0;
    QStringList splits;       // empty: every split the dataset has
    QString counts;           // a counts file (empty: the train split)
    int max_per_class = -1;   // -1: every image
    bool logits = false;
    QString device = "auto";
    QString out;              // the run file (appended to when it exists)
};

// `ltlab import` arguments for a request, ending with --progress-json.
QStringList importArguments(const ImportRequest& request);

// What one checkpoint holds, as far as the dialog tells it.
struct CheckpointSummary {
    QString path;
    QString text;             // one line for the dialog
    QString error;            // not a checkpoint, no classifier, ...
    QString arch;             // detected built-in name ("resnet34", "resnet34-imagenet"), empty when unknown
    qint64 classes = 0, feature_dim = 0, in_channels = 0;
    QString side_dataset;     // from args.json beside it ("cifar100-lt"), empty when none
};
CheckpointSummary summarizeCheckpoint(const QString& path);
QFuture<QList<CheckpointSummary>> summarizeAsync(const QStringList& paths);

// The weights-only analysis shown while the import evaluates: per-class
// weight norms, biases and the implicit tau of the first checkpoint, with the
// class counts the import will record (ltlab::importClasses). Never throws.
struct ImportPreview {
    QString checkpoint;
    std::shared_ptr<const Analysis> analysis; // null on error or without counts
    ClassInfo classes;
    QString counts_source;
    QString error;
};
ImportPreview importPreview(const ImportRequest& request);
QFuture<ImportPreview> importPreviewAsync(const ImportRequest& request);

class ImportDialog : public QDialog {
    Q_OBJECT
public:
    explicit ImportDialog(const QStringList& checkpoints, QWidget* parent = nullptr);

    ImportRequest request() const;
    // Becomes true when every checkpoint has been read (summaries()).
    bool inspected() const { return inspected_; }
    const QList<CheckpointSummary>& summaries() const { return summaries_; }
    // Form fields, for tests and scripted demos.
    void setDataset(const QString& dataset, const QString& location = QString());
    void setOutput(const QString& path);
    void setMaxPerClass(int n);
    QComboBox* architectureBox() const { return arch_; }
    QComboBox* datasetBox() const { return dataset_; }
    QPushButton* importButton() const;

signals:
    void inspectionFinished();

private:
    void showSummaries(const QList<CheckpointSummary>& summaries);
    void updateFields();
    void browseLocation();

    QStringList checkpoints_;
    QList<CheckpointSummary> summaries_;
    bool inspected_ = false;
    QLabel* summary_ = nullptr;
    QComboBox *arch_, *dataset_, *device_;
    QLineEdit *location_, *counts_, *out_;
    QLabel* location_label_;
    QDoubleSpinBox* imbalance_;
    QSpinBox *seed_, *max_per_class_;
    QCheckBox *train_, *val_, *test_, *logits_;
    QDialogButtonBox* buttons_;
};

} // namespace ltlab::ui
