#include "import_dialog.h"

#include <QCheckBox>
#include <QComboBox>
#include <QDialogButtonBox>
#include <QDir>
#include <QDoubleSpinBox>
#include <QFileDialog>
#include <QFileInfo>
#include <QFormLayout>
#include <QFutureWatcher>
#include <QHBoxLayout>
#include <QLabel>
#include <QLineEdit>
#include <QPushButton>
#include <QSpinBox>
#include <QStandardPaths>
#include <QToolButton>
#include <QVBoxLayout>

#include <QtConcurrent/QtConcurrentRun>

#include <algorithm>
#include <filesystem>

#include "ltlab/checkpoint.h"
#include "ltlab/class_counts.h"
#include "ltlab/datasets.h"
#include "ltlab/error.h"
#include "ltlab/importing.h"

namespace ltlab::ui {

namespace {

const QStringList kBuiltInDatasets = {"fashion-mnist-lt", "fashion-mnist", "cifar10-lt", "cifar10", "cifar100-lt",
                                      "cifar100", "idx-lt", "idx", "gaussian-lt", "gaussian"};
const QString kFolder = QStringLiteral("image folder");
const QString kLists = QStringLiteral("split lists");

QString detectedName(const ckpt::Architecture& a) {
    if (a.name == "unknown") return {};
    const bool imagenet_default = a.name == "resnet18" || a.name == "resnet34" || a.name == "resnet50" || a.name == "resnext50_32x4d";
    if (imagenet_default && a.stem == "cifar") return QString::fromStdString(a.name) + "-cifar";
    if (imagenet_default && a.stem == "imagenet") return QString::fromStdString(a.name) + "-imagenet";
    return QString::fromStdString(a.name);
}

QString sideDataset(const std::optional<std::string>& data_name) {
    if (!data_name) return {};
    const QString name = QString::fromStdString(*data_name).toLower();
    if (name.contains("cifar100")) return "cifar100-lt";
    if (name.contains("cifar10")) return "cifar10-lt";
    if (name.contains("fashion")) return "fashion-mnist-lt";
    return {};
}

// The checkpoint whose weights the preview shows: the first file, or the
// first checkpoint file (by name) in the first folder.
QString firstCheckpointFile(const QStringList& paths) {
    for (const QString& path : paths) {
        const QFileInfo info(path);
        if (info.isFile()) return path;
        if (info.isDir()) {
            QStringList files = QDir(path).entryList(QDir::Files, QDir::Name);
            for (const QString& f : files) {
                const QString p = QDir(path).filePath(f);
                if (ckpt::sniffFile(p.toStdString()) == ckpt::FileKind::Checkpoint) return p;
            }
        }
    }
    return {};
}

} // namespace

QStringList importArguments(const ImportRequest& r) {
    QStringList args{"import"};
    args << r.checkpoints;
    args << "--dataset" << r.dataset << "--out" << r.out;
    if (!r.arch.isEmpty() && r.arch != "auto") args << "--arch" << r.arch;
    if (!r.data_dir.isEmpty()) args << "--data-dir" << r.data_dir;
    if (r.dataset.endsWith("-lt")) args << "--imbalance" << QString::number(r.imbalance);
    args << "--seed" << QString::number(r.seed);
    if (!r.splits.isEmpty()) args << "--splits" << r.splits.join(',');
    if (!r.counts.isEmpty()) args << "--counts" << r.counts;
    if (r.max_per_class > 0) args << "--max-per-class" << QString::number(r.max_per_class);
    if (r.logits) args << "--logits";
    args << "--device" << r.device << "--progress-json";
    return args;
}

CheckpointSummary summarizeCheckpoint(const QString& path) {
    CheckpointSummary s;
    s.path = path;
    const QString name = QFileInfo(path).fileName();
    if (QFileInfo(path).isDir()) {
        s.text = QObject::tr("%1: a folder; every checkpoint in it becomes a snapshot").arg(name);
        const QString first = firstCheckpointFile({path});
        if (first.isEmpty()) {
            s.error = QObject::tr("%1 holds no checkpoint files").arg(path);
            return s;
        }
        CheckpointSummary inner = summarizeCheckpoint(first); // the folder reads as its first checkpoint
        inner.path = path;
        inner.text = s.text + " (" + inner.text + ")";
        return inner;
    }
    try {
        const auto file = ckpt::Checkpoint::open(path.toStdString());
        const ckpt::StateDict sd = ckpt::extractStateDict(*file);
        std::vector<std::string> reasons;
        const auto classifier = ckpt::findClassifier(sd, &reasons);
        const ckpt::Architecture arch = ckpt::detectArchitecture(sd);
        const ckpt::SideArgs side = ckpt::readSideArgs(path.toStdString());
        s.arch = detectedName(arch);
        s.in_channels = arch.in_channels;
        s.side_dataset = sideDataset(side.data_name);
        QStringList parts;
        parts << QString::fromLatin1(ckpt::formatName(file->format()));
        parts << QObject::tr("%1 tensors (%2)").arg(sd.tensors.size()).arg(QString::fromStdString(sd.kind));
        parts << (s.arch.isEmpty() ? QObject::tr("architecture not recognised") : s.arch);
        if (classifier) {
            s.classes = classifier->num_classes;
            s.feature_dim = classifier->feature_dim;
            parts << QObject::tr("classifier %1: %2 classes × %3%4")
                         .arg(QString::fromStdString(classifier->weight_name))
                         .arg(classifier->num_classes)
                         .arg(classifier->feature_dim)
                         .arg(classifier->etf ? QObject::tr(" (ETF head)") : QString());
        } else {
            s.error = QObject::tr("%1: no classifier found (%2)")
                          .arg(name, reasons.empty() ? QObject::tr("no 2-d weight with a matching bias")
                                                     : QString::fromStdString(reasons.front()));
        }
        if (!side.path.empty()) parts << QObject::tr("args.json beside it");
        s.text = name + ": " + parts.join("; ");
    } catch (const std::exception& e) {
        s.error = QString::fromStdString(e.what());
        s.text = name + ": " + s.error;
    }
    return s;
}

QFuture<QList<CheckpointSummary>> summarizeAsync(const QStringList& paths) {
    return QtConcurrent::run([paths] {
        QList<CheckpointSummary> out;
        for (const QString& p : paths) out << summarizeCheckpoint(p);
        return out;
    });
}

ImportPreview importPreview(const ImportRequest& r) {
    ImportPreview p;
    try {
        p.checkpoint = firstCheckpointFile(r.checkpoints);
        if (p.checkpoint.isEmpty()) throw UsageError("no checkpoint file to read");
        const auto file = ckpt::Checkpoint::open(p.checkpoint.toStdString());
        const ckpt::StateDict sd = ckpt::extractStateDict(*file);
        std::vector<std::string> reasons;
        const auto classifier = ckpt::findClassifier(sd, &reasons);
        if (!classifier)
            throw InputError(file->path(), "", "no classifier found" + (reasons.empty() ? std::string() : ": " + reasons.front()));
        const ckpt::ClassifierWeights w = ckpt::readClassifier(*file, sd, *classifier);

        ImportConfig c;
        c.data.dataset = r.dataset.toStdString();
        c.data.data_dir = r.data_dir.toStdString();
        c.data.imbalance = r.imbalance;
        c.data.seed = static_cast<std::uint64_t>(r.seed);
        if (!r.counts.isEmpty()) c.counts = readCounts(r.counts.toStdString());
        const auto classes = importClasses(c, classifier->num_classes);
        if (!classes) {
            p.error = QObject::tr("%1 has no train split to count the classes: the weight views follow the "
                                  "evaluation, or give the counts in a file")
                          .arg(r.dataset);
            return p;
        }
        p.classes.train_counts = classes->train_counts;
        p.classes.names = classes->names;
        const ShotThresholds t = shotThresholds(classes->train_counts);
        p.classes.many_threshold = t.many;
        p.classes.few_threshold = t.few;
        p.counts_source = QString::fromStdString(classes->source);
        AnalysisOptions options;
        options.many_threshold = t.many;
        options.few_threshold = t.few;
        auto analysis = std::make_shared<Analysis>(analyzeWeights({w.weight, w.bias, classes->train_counts}, options));
        analysis->snapshot = QFileInfo(p.checkpoint).fileName().toStdString();
        analysis->split = "weights";
        p.analysis = std::move(analysis);
    } catch (const std::exception& e) {
        p.error = QString::fromStdString(e.what());
    }
    return p;
}

QFuture<ImportPreview> importPreviewAsync(const ImportRequest& request) {
    return QtConcurrent::run([request] { return importPreview(request); });
}

// ---- the dialog ---------------------------------------------------------------------------

ImportDialog::ImportDialog(const QStringList& checkpoints, QWidget* parent) : QDialog(parent), checkpoints_(checkpoints) {
    setWindowTitle(tr("Import checkpoints"));
    setMinimumWidth(560); // the paths and the summary readable
    auto* layout = new QVBoxLayout(this);
    summary_ = new QLabel(tr("Reading %n checkpoint(s)…", nullptr, int(checkpoints.size())), this);
    summary_->setWordWrap(true);
    summary_->setTextInteractionFlags(Qt::TextSelectableByMouse);
    layout->addWidget(summary_);

    auto* form = new QFormLayout;
    arch_ = new QComboBox(this);
    arch_->addItem(tr("auto (from the weights)"), "auto");
    for (const char* a : {"mlp", "cnn", "resnet32", "resnet18-cifar", "resnet18-imagenet", "resnet34-cifar", "resnet34-imagenet",
                          "resnet50-cifar", "resnet50-imagenet", "resnext50_32x4d-cifar", "resnext50_32x4d-imagenet"})
        arch_->addItem(a, a);
    arch_->setToolTip(tr("The network the weights belong to: detected from the keys and shapes, or named"));
    form->addRow(tr("&Architecture:"), arch_);

    dataset_ = new QComboBox(this);
    dataset_->addItems(kBuiltInDatasets);
    dataset_->addItem(kFolder);
    dataset_->addItem(kLists);
    dataset_->setToolTip(tr("The data to evaluate on: a dataset ltlab trains on (with the same long-tailed split), "
                            "an image folder (one subfolder per class; train/, val/, test/ inside when there are "
                            "several splits), or ImageNet-LT style split lists (\"path label\" per line)"));
    form->addRow(tr("&Dataset:"), dataset_);
    auto* location_row = new QHBoxLayout;
    location_ = new QLineEdit(this);
    auto* browse = new QToolButton(this);
    browse->setText(tr("Browse…"));
    location_row->addWidget(location_, 1);
    location_row->addWidget(browse);
    location_label_ = new QLabel(tr("Data &folder:"), this);
    location_label_->setBuddy(location_);
    form->addRow(location_label_, location_row);
    imbalance_ = new QDoubleSpinBox(this);
    imbalance_->setRange(1, 1000);
    imbalance_->setValue(100);
    imbalance_->setToolTip(tr("Long-tailed datasets: n_max / n_min of the train split, as training builds it"));
    form->addRow(tr("&Imbalance factor:"), imbalance_);
    seed_ = new QSpinBox(this);
    seed_->setRange(0, 1 << 30);
    seed_->setToolTip(tr("The long-tailed split's and the sampled images' seed"));
    form->addRow(tr("&Seed:"), seed_);

    auto* splits = new QHBoxLayout;
    train_ = new QCheckBox(tr("train"), this);
    val_ = new QCheckBox(tr("val"), this);
    test_ = new QCheckBox(tr("test"), this);
    for (QCheckBox* b : {train_, val_, test_}) {
        b->setChecked(true);
        splits->addWidget(b);
    }
    splits->addStretch();
    form->addRow(tr("Splits:"), splits);
    max_per_class_ = new QSpinBox(this);
    max_per_class_->setRange(0, 1'000'000);
    max_per_class_->setSpecialValueText(tr("all"));
    max_per_class_->setToolTip(tr("At most this many images per class and split (a seeded choice): a quick look"));
    form->addRow(tr("Images per class:"), max_per_class_);
    auto* counts_row = new QHBoxLayout;
    counts_ = new QLineEdit(this);
    counts_->setPlaceholderText(tr("from the train split"));
    counts_->setToolTip(tr("Class counts (JSON list, text or a run file): needed when the data has no train split"));
    auto* browse_counts = new QToolButton(this);
    browse_counts->setText(tr("Browse…"));
    counts_row->addWidget(counts_, 1);
    counts_row->addWidget(browse_counts);
    form->addRow(tr("Class counts:"), counts_row);
    logits_ = new QCheckBox(tr("store the logits too"), this);
    form->addRow(QString(), logits_);
    device_ = new QComboBox(this);
    device_->addItems({"auto", "cpu", "cuda"});
    form->addRow(tr("De&vice:"), device_);
    auto* out_row = new QHBoxLayout;
    out_ = new QLineEdit(this);
    out_->setToolTip(tr("The run file to write; an existing one gets the new snapshots appended"));
    auto* browse_out = new QToolButton(this);
    browse_out->setText(tr("Browse…"));
    out_row->addWidget(out_, 1);
    out_row->addWidget(browse_out);
    form->addRow(tr("Run file:"), out_row);
    layout->addLayout(form);

    buttons_ = new QDialogButtonBox(QDialogButtonBox::Ok | QDialogButtonBox::Cancel, this);
    buttons_->button(QDialogButtonBox::Ok)->setText(tr("&Import"));
    layout->addWidget(buttons_);
    connect(buttons_, &QDialogButtonBox::accepted, this, &QDialog::accept);
    connect(buttons_, &QDialogButtonBox::rejected, this, &QDialog::reject);
    connect(dataset_, &QComboBox::currentTextChanged, this, &ImportDialog::updateFields);
    connect(out_, &QLineEdit::textChanged, this, &ImportDialog::updateFields);
    connect(location_, &QLineEdit::textChanged, this, &ImportDialog::updateFields);
    connect(browse, &QToolButton::clicked, this, &ImportDialog::browseLocation);
    connect(browse_counts, &QToolButton::clicked, this, [this] {
        const QString f = QFileDialog::getOpenFileName(this, tr("Class counts"), QString(),
                                                       tr("Counts (*.json *.txt *.h5);;All files (*)"));
        if (!f.isEmpty()) counts_->setText(f);
    });
    connect(browse_out, &QToolButton::clicked, this, [this] {
        const QString f = QFileDialog::getSaveFileName(this, tr("Run file"), out_->text(), tr("Run files (*.h5)"), nullptr,
                                                       QFileDialog::DontConfirmOverwrite);
        if (!f.isEmpty()) out_->setText(f.endsWith(".h5") ? f : f + ".h5");
    });

    // The run file: beside the first checkpoint when that folder is writable, else in ltlab's runs folder.
    if (!checkpoints.isEmpty()) {
        const QFileInfo first(checkpoints.front());
        QString folder = first.isDir() ? first.absoluteFilePath() : first.absolutePath();
        if (!QFileInfo(folder).isWritable()) {
            folder = QStandardPaths::writableLocation(QStandardPaths::AppDataLocation) + "/runs";
            QDir().mkpath(folder);
        }
        out_->setText(QDir(folder).filePath((first.isDir() ? first.fileName() : first.completeBaseName()) + ".h5"));
    }
    updateFields();

    auto* watcher = new QFutureWatcher<QList<CheckpointSummary>>(this);
    connect(watcher, &QFutureWatcher<QList<CheckpointSummary>>::finished, this, [this, watcher] {
        showSummaries(watcher->result());
        watcher->deleteLater();
    });
    watcher->setFuture(summarizeAsync(checkpoints));
}

QPushButton* ImportDialog::importButton() const { return buttons_->button(QDialogButtonBox::Ok); }

void ImportDialog::showSummaries(const QList<CheckpointSummary>& summaries) {
    summaries_ = summaries;
    inspected_ = true;
    QStringList lines;
    bool any_ok = false;
    for (const CheckpointSummary& s : summaries) {
        lines << (s.error.isEmpty() ? s.text.toHtmlEscaped() : "<span style='color:#b00020'>" + s.text.toHtmlEscaped() + "</span>");
        any_ok = any_ok || s.error.isEmpty();
    }
    summary_->setText(lines.join("<br>"));
    if (!summaries.isEmpty()) {
        const CheckpointSummary& first = summaries.front();
        if (!first.arch.isEmpty()) arch_->setItemText(0, tr("auto (detected: %1)").arg(first.arch));
        // A dataset that fits the classifier: args.json's, else by class count and input channels.
        QString guess = first.side_dataset;
        if (guess.isEmpty() && first.classes == 100) guess = "cifar100-lt";
        if (guess.isEmpty() && first.classes == 10) guess = first.in_channels == 3 ? "cifar10-lt" : "fashion-mnist-lt";
        if (!guess.isEmpty()) dataset_->setCurrentText(guess);
    }
    if (!any_ok) importButton()->setToolTip(tr("None of the files can be imported"));
    updateFields();
    emit inspectionFinished();
}

void ImportDialog::updateFields() {
    const QString d = dataset_->currentText();
    const bool folder = d == kFolder, lists = d == kLists;
    location_label_->setText(folder ? tr("Image &folder:") : lists ? tr("Split &lists:") : tr("Data &folder:"));
    location_->setPlaceholderText(folder  ? tr("one subfolder per class (or train/, val/, test/)")
                                  : lists ? tr("train=FILE,test=FILE (comma-separated)")
                                  : d.startsWith("fashion-mnist") ? tr("Debian's dataset-fashion-mnist")
                                  : d.startsWith("gaussian")      ? tr("(generated)")
                                                                  : tr("the dataset's binary files (required)"));
    imbalance_->setEnabled(d.endsWith("-lt"));
    const bool needs_location = folder || lists || d.startsWith("cifar") || d.startsWith("idx");
    bool ok = !out_->text().trimmed().isEmpty() && (!needs_location || !location_->text().trimmed().isEmpty());
    if (inspected_) ok = ok && std::any_of(summaries_.begin(), summaries_.end(), [](const auto& s) { return s.error.isEmpty(); });
    importButton()->setEnabled(ok);
}

void ImportDialog::browseLocation() {
    const QString d = dataset_->currentText();
    if (d == kLists) {
        const QStringList files = QFileDialog::getOpenFileNames(this, tr("Split lists"), QString(), tr("Lists (*.txt);;All files (*)"));
        if (!files.isEmpty()) location_->setText(files.join(','));
    } else {
        const QString dir = QFileDialog::getExistingDirectory(this, d == kFolder ? tr("Image folder") : tr("Data folder"));
        if (!dir.isEmpty()) location_->setText(dir);
    }
}

void ImportDialog::setDataset(const QString& dataset, const QString& location) {
    if (dataset.startsWith("folder:")) {
        dataset_->setCurrentText(kFolder);
        location_->setText(dataset.mid(7));
    } else if (dataset.startsWith("list:")) {
        dataset_->setCurrentText(kLists);
        location_->setText(dataset.mid(5));
    } else {
        dataset_->setCurrentText(dataset);
        location_->setText(location);
    }
}

void ImportDialog::setOutput(const QString& path) { out_->setText(path); }
void ImportDialog::setMaxPerClass(int n) { max_per_class_->setValue(n); }

ImportRequest ImportDialog::request() const {
    ImportRequest r;
    r.checkpoints = checkpoints_;
    r.arch = arch_->currentData().toString();
    const QString d = dataset_->currentText();
    const QString location = location_->text().trimmed();
    if (d == kFolder) r.dataset = "folder:" + location;
    else if (d == kLists) r.dataset = "list:" + location;
    else {
        r.dataset = d;
        r.data_dir = location;
    }
    r.imbalance = imbalance_->value();
    r.seed = seed_->value();
    if (!(train_->isChecked() && val_->isChecked() && test_->isChecked()))
        for (QCheckBox* b : {train_, val_, test_})
            if (b->isChecked()) r.splits << b->text();
    r.counts = counts_->text().trimmed();
    r.max_per_class = max_per_class_->value() > 0 ? max_per_class_->value() : -1;
    r.logits = logits_->isChecked();
    r.device = device_->currentText();
    r.out = out_->text().trimmed();
    return r;
}

} // namespace ltlab::ui
